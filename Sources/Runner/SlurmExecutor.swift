import Foundation
import Subprocess
import Sweep
import SystemPackage

/// Trials as Slurm job arrays. Harrow submits, watches and cancels; Slurm schedules. Ready trials go out together
/// as one `sbatch --array=0-(n-1)%N`; each task runs its trial's `slurm-task.sh` in the trial's run folder, which
/// runs the trainer as an argv and writes its exit status there (`exit_status`), so the final state is on the
/// shared filesystem even without accounting (`sacct`). The job's comment names the array's manifest of run
/// folders, so a restarted harrow finds its jobs again and never submits a trial twice.
///
/// The queue is read with one `squeue` per poll for all jobs of the sweep, at an interval that backs off while
/// nothing changes (as submitit does), so hundreds of trials do not load the controller.
public final class SlurmExecutor: Executor {
    public let kind = "slurm"
    let settings: Experiment.ExecutorSettings
    /// `.harrow/slurm`: manifests, the array script, the tasks' own output.
    let stateDirectory: String
    let workingDirectory: String
    let jobName: String
    /// sbatch's `--time`: the executor's, else the trainer's timeout in whole minutes.
    let timeLimit: String?
    let submitter: SlurmSubmitter
    let queue: SlurmQueue

    public init(settings: Experiment.ExecutorSettings, stateDirectory: String, workingDirectory: String, sweep: String, timeout: Double?) {
        self.settings = settings
        self.stateDirectory = stateDirectory
        self.workingDirectory = workingDirectory
        self.jobName = "harrow-" + sweep
        self.timeLimit = settings.time ?? timeout.map { SlurmTime.limit(seconds: $0) }
        var args = ["--job-name=\(jobName)", "--chdir=\(workingDirectory)", "--output=\(stateDirectory)/%A_%a.out"]
        if let p = settings.partition { args.append("--partition=\(p)") }
        if let t = timeLimit {
            args.append("--time=\(t)")
            // A warning before the limit, so the trainer can save and the run is recorded as timed out.
            if let minutes = SlurmTime.minutes(t), minutes > 0 {
                args.append("--signal=B:USR2@\(Slurm.warningSeconds(limitMinutes: minutes))")
            }
        }
        if let c = settings.cpusPerTask { args.append("--cpus-per-task=\(c)") }
        if let m = settings.mem { args.append("--mem=\(m)") }
        if let g = settings.gres { args.append("--gres=\(g)") }
        submitter = SlurmSubmitter(
            stateDirectory: stateDirectory, arguments: args + settings.extraArgs, throttle: settings.arrayParallelism)
        queue = SlurmQueue(jobName: jobName, maxInterval: settings.poll ?? 30)
    }

    public func inFlight(slots: Int, pending: Int) -> Int { max(slots, pending) }

    public func launch(_ job: Job) async throws -> JobHandle {
        var env = job.environment
        env["CUDA_VISIBLE_DEVICES"] = nil  // Slurm sets it from --gres
        for key in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"] { env[key] = nil }
        let script = Slurm.taskScript(
            argv: job.argv, environment: env, workingDirectory: job.workingDirectory, runDir: job.runDir,
            stdout: job.stdoutPath, stderr: job.stderrPath, stdin: job.stdinPath, runID: job.runID)
        let path = job.runDir + "/" + Slurm.taskScriptName
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        for stale in [Slurm.exitStatusName, Slurm.timedOutName, Slurm.jobFileName] {
            try? FileManager.default.removeItem(atPath: job.runDir + "/" + stale)
        }
        let handle = try await submitter.submit(
            runDir: job.runDir, request: SlurmRequest.request(job.memoryEstimate, settings: settings).arguments)
        try? (handle.id + "\n").write(toFile: job.runDir + "/" + Slurm.jobFileName, atomically: true, encoding: .utf8)
        await queue.follow(handle, runDir: job.runDir)
        return handle
    }

    public func poll(_ job: JobHandle) async -> JobState {
        await queue.state(job)
    }

    public func wait(_ job: JobHandle) async -> JobState {
        while true {
            let state = await queue.state(job)
            if state.isOver { return state }
            try? await Task.sleep(for: .seconds(await queue.interval))
        }
    }

    /// `scancel --signal` to the batch script and the trainer (the script passes it on and records the exit),
    /// then, if the task is still queued or running after the grace period, `scancel`.
    public func cancel(_ job: JobHandle, signal: Int32, grace: Double) async {
        if signal == SIGKILL {
            _ = try? await Slurm.command(["scancel", job.id])
            return
        }
        _ = try? await Slurm.command(["scancel", "--signal=\(signal)", "--full", job.id])
        let queue = self.queue
        Task {
            try? await Task.sleep(for: .seconds(grace))
            if await !queue.state(job).isOver { _ = try? await Slurm.command(["scancel", job.id]) }
        }
    }

    /// The job of a run whose harrow died: its id from the store or the run folder, or, when harrow died between
    /// `sbatch` and writing either, from the queue (the array's manifest names the folder). Queued, running, or
    /// finished with its exit status on disk: handed back to be watched.
    public func reclaim(runDir: String, job: String?) async -> JobHandle? {
        let recorded =
            job
            ?? (try? String(contentsOfFile: runDir + "/" + Slurm.jobFileName, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var handle: JobHandle?
        if let recorded, !recorded.isEmpty, Slurm.isTaskID(recorded) {
            handle = JobHandle(recorded)
        } else {
            handle = await queue.find(runDir: runDir)
        }
        guard let handle else { return nil }
        await queue.follow(handle, runDir: runDir)
        switch await queue.state(handle) {
        case .queued, .running, .ended, .timedOut: return handle
        case .vanished: return nil
        }
    }

    /// Slurm ends a task's processes itself.
    public func cleanUp(runDir: String) async {}
}

/// Collects the trials launched within a moment of each other into one job array for each request (trials whose
/// estimates ask for different cards or memory go in separate arrays).
actor SlurmSubmitter {
    let stateDirectory: String
    let arguments: [String]
    let throttle: Int?
    private var waiting: [(runDir: String, request: [String], continuation: CheckedContinuation<JobHandle, any Error>)] = []
    private var scheduled = false
    private var arrays = 0
    /// Arrays submitted and tasks in them, for figures and tests.
    private(set) var submitted: [(id: String, tasks: Int)] = []

    init(stateDirectory: String, arguments: [String], throttle: Int?) {
        self.stateDirectory = stateDirectory
        self.arguments = arguments
        self.throttle = throttle
    }

    /// `request`: this trial's own sbatch options (`SlurmRequest`), after the executor's.
    func submit(runDir: String, request: [String] = []) async throws -> JobHandle {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((runDir, request, continuation))
            guard !scheduled else { return }
            scheduled = true
            Task {
                try? await Task.sleep(for: .milliseconds(300))
                await self.flush()
            }
        }
    }

    private func flush() async {
        let all = waiting
        waiting = []
        scheduled = false
        var requests: [[String]] = []
        for entry in all where !requests.contains(entry.request) { requests.append(entry.request) }
        for request in requests { await submitArray(all.filter { $0.request == request }, request: request) }
    }

    private func submitArray(
        _ batch: [(runDir: String, request: [String], continuation: CheckedContinuation<JobHandle, any Error>)],
        request: [String]
    ) async {
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            let script = stateDirectory + "/" + Slurm.arrayScriptName
            if (try? String(contentsOfFile: script, encoding: .utf8)) != Slurm.arrayScript {
                try Slurm.arrayScript.write(toFile: script, atomically: true, encoding: .utf8)
            }
            arrays += 1
            let manifest = stateDirectory + "/array-\(Int(Date().timeIntervalSince1970 * 1000))-\(arrays).runs"
            try (batch.map(\.runDir).joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
            let range = "0-\(batch.count - 1)" + (throttle.map { "%\($0)" } ?? "")
            let argv = ["sbatch", "--parsable", "--array=\(range)", "--comment=\(manifest)"] + arguments + request + [script, manifest]
            let result = try await Slurm.command(argv)
            guard result.status == 0,
                let id = result.stdout.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }),
                !id.isEmpty, id.allSatisfy(\.isNumber)
            else {
                throw ExecutorError(
                    "sbatch failed (exit \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            submitted.append((id, batch.count))
            for (i, entry) in batch.enumerated() { entry.continuation.resume(returning: JobHandle("\(id)_\(i)")) }
        } catch {
            for entry in batch { entry.continuation.resume(throwing: error) }
        }
    }
}

/// What Slurm says of the sweep's jobs: one `squeue` for all of them per poll, and one `scontrol` for each
/// task once it has left the queue.
actor SlurmQueue {
    let jobName: String
    let maxInterval: Double
    private(set) var interval: Double = 1
    private var snapshot: [String: Slurm.QueueEntry] = [:]
    private var takenAt = Date.distantPast
    private var followedAt: [JobHandle: Date] = [:]
    private var runDirs: [JobHandle: String] = [:]
    private var finals: [JobHandle: JobState] = [:]
    /// squeue calls made, for figures and tests.
    private(set) var polls = 0

    init(jobName: String, maxInterval: Double) {
        self.jobName = jobName
        self.maxInterval = max(1, maxInterval)
    }

    func follow(_ job: JobHandle, runDir: String) {
        runDirs[job] = runDir
        followedAt[job] = Date()
        finals[job] = nil
        interval = 1
    }

    func state(_ job: JobHandle) async -> JobState {
        if let final = finals[job] { return final }
        // A snapshot older than the job knows nothing of it.
        var fresh = followedAt[job].map { takenAt > $0 } ?? true
        if !fresh || Date().timeIntervalSince(takenAt) >= interval {
            await refresh()
            fresh = followedAt[job].map { takenAt > $0 } ?? true
            // squeue failed (a busy controller): say nothing final until it answers.
            if !fresh { return snapshot[job.id].flatMap(Slurm.liveState) ?? .queued("waiting for squeue") }
        }
        if let entry = snapshot[job.id], let state = Slurm.liveState(entry) { return state }
        let final = await finalState(job)
        finals[job] = final
        return final
    }

    /// A task of this sweep whose array manifest lists the run folder.
    func find(runDir: String) async -> JobHandle? {
        await refresh()
        var manifests: [String: [String]] = [:]
        for (id, entry) in snapshot.sorted(by: { $0.key < $1.key }) {
            guard let (array, index) = Slurm.splitTaskID(id), entry.comment.hasSuffix(".runs") else { continue }
            if manifests[entry.comment] == nil {
                manifests[entry.comment] = ((try? String(contentsOfFile: entry.comment, encoding: .utf8)) ?? "").split(separator: "\n").map(
                    String.init)
            }
            if let dirs = manifests[entry.comment], index < dirs.count, dirs[index] == runDir { return JobHandle("\(array)_\(index)") }
        }
        return nil
    }

    private func refresh() async {
        polls += 1
        guard
            let result = try? await Slurm.query(["squeue", "--me", "--noheader", "--array", "--name=\(jobName)", "--format=%i|%T|%r|%k"]),
            result.status == 0
        else { return }  // a busy controller: keep the last snapshot, try again next poll
        let next = Slurm.parseQueue(result.stdout)
        interval = next == snapshot ? min(maxInterval, interval * 1.5) : 1
        snapshot = next
        takenAt = Date()
    }

    private func finalState(_ job: JobHandle) async -> JobState {
        let runDir = runDirs[job]
        var record: Slurm.JobRecord?
        if let r = try? await Slurm.query(["scontrol", "--oneliner", "show", "job", job.id]), r.status == 0 {
            record = Slurm.parseJobRecord(r.stdout)
        }
        // A shared filesystem may show the exit status a moment after Slurm reports the end.
        var files = runDir.map(Slurm.RunFiles.read) ?? Slurm.RunFiles()
        if files.exitStatus == nil, record.map({ ["COMPLETED", "FAILED"].contains($0.state) }) ?? false, let runDir {
            for _ in 0..<20 where files.exitStatus == nil {
                try? await Task.sleep(for: .milliseconds(250))
                files = Slurm.RunFiles.read(runDir)
            }
        }
        return Slurm.finalState(record: record, files: files)
    }
}

/// Slurm's texts, read and written: pure, so they are tested without a cluster.
public enum Slurm {
    static let taskScriptName = "slurm-task.sh"
    static let arrayScriptName = "array.sh"
    static let exitStatusName = "exit_status"
    static let timedOutName = "timed_out"
    static let jobFileName = "slurm_job"

    /// Seconds of warning before the time limit (Slurm may send it up to a minute early).
    static func warningSeconds(limitMinutes: Double) -> Int {
        Int(min(120, max(10, limitMinutes * 60 / 4)))
    }

    /// Line N+1 of the manifest (the script's argument) is task N's run folder.
    static let arrayScript = """
        #!/bin/sh
        # A task of a harrow job array: line SLURM_ARRAY_TASK_ID+1 of the manifest ($1) names its run folder.
        dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
        [ -n "$dir" ] && [ -f "$dir/\(taskScriptName)" ] || { echo "no run folder for task $SLURM_ARRAY_TASK_ID in $1" >&2; exit 97; }
        echo "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" > "$dir/\(jobFileName)"
        exec /bin/sh "$dir/\(taskScriptName)"

        """

    /// One trial's task: its trainer argv, run in the working directory with its environment, its output in the
    /// run folder; SIGTERM is passed on to it; USR2 (the time-limit warning) marks the run timed out and stops it;
    /// the exit status is written last, atomically.
    public static func taskScript(
        argv: [String], environment: [String: String], workingDirectory: String, runDir: String,
        stdout: String, stderr: String, stdin: String? = nil, runID: String
    ) -> String {
        let dir = quote(runDir)
        var lines = [
            "#!/bin/sh",
            "# harrow run \(runID): its trainer as a Slurm task. Written by harrow; runs again if the task is requeued.",
            "cd \(quote(workingDirectory)) || exit 96",
            "rm -f \(dir)/\(exitStatusName) \(dir)/\(timedOutName)"
        ]
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) where isName(k) { lines.append("export \(k)=\(quote(v))") }
        lines += [
            "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\" OPENBLAS_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"",
            argv.map(quote).joined(separator: " ") + " < \(quote(stdin ?? "/dev/null")) > \(quote(stdout)) 2> \(quote(stderr)) &",
            "child=$!",
            "trap 'kill -TERM $child 2>/dev/null' TERM INT",
            "trap 'touch \(dir)/\(timedOutName); kill -TERM $child 2>/dev/null' USR2",
            // `wait` returns early when a trap runs: wait again until the trainer is gone.
            "while :; do wait $child; code=$?; kill -0 $child 2>/dev/null || break; done",
            "echo $code > \(dir)/\(exitStatusName).tmp && mv \(dir)/\(exitStatusName).tmp \(dir)/\(exitStatusName)",
            "exit $code"
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func isName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || CharacterSet.letters.contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    static func isTaskID(_ s: String) -> Bool { splitTaskID(s) != nil }

    static func splitTaskID(_ s: String) -> (array: String, index: Int)? {
        let parts = s.split(separator: "_")
        guard parts.count == 2, parts[0].allSatisfy(\.isNumber), let i = Int(parts[1]) else { return nil }
        return (String(parts[0]), i)
    }

    public struct QueueEntry: Sendable, Equatable {
        public var state: String
        public var reason: String
        public var comment: String
    }

    /// `squeue --array --format=%i|%T|%r|%k` lines, by task id. Pending tasks not yet split off an array show as
    /// `12_[3-5%2]` and are expanded.
    public static func parseQueue(_ text: String) -> [String: QueueEntry] {
        var out: [String: QueueEntry] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3 else { continue }
            let entry = QueueEntry(state: f[1], reason: f[2], comment: f.count > 3 ? f[3] : "")
            for id in expand(f[0]) { out[id] = entry }
        }
        return out
    }

    /// `12_7` → [12_7]; `12_[3-5,8%2]` → [12_3, 12_4, 12_5, 12_8].
    static func expand(_ id: String) -> [String] {
        guard let open = id.firstIndex(of: "["), id.hasSuffix("]") else { return [id] }
        let array = id[..<open].dropLast()  // the `_`
        var body = id[id.index(after: open)..<id.index(before: id.endIndex)]
        if let percent = body.firstIndex(of: "%") { body = body[..<percent] }
        var ids: [String] = []
        for part in body.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            guard let lo = bounds.first else { continue }
            let hi = bounds.count > 1 ? bounds[1] : lo
            guard hi >= lo, hi - lo < 100_000 else { continue }
            ids += (lo...hi).map { "\(array)_\($0)" }
        }
        return ids
    }

    /// A task still in the queue: queued (pending, requeued after a preemption or node failure) or running; nil
    /// for the states of a task on its way out.
    static func liveState(_ e: QueueEntry) -> JobState? {
        switch e.state {
        case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED", "RESIZING":
            return .queued(e.reason == "None" ? e.state.lowercased() : e.reason)
        case "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT":
            return .running
        default:
            return nil
        }
    }

    public struct JobRecord: Sendable, Equatable {
        public var state: String
        public var exitCode: Int32?
        public var signal: Int32?
        public var reason: String
    }

    /// `scontrol --oneliner show job ID`: `JobState=`, `ExitCode=code:signal`, `Reason=`.
    public static func parseJobRecord(_ text: String) -> JobRecord? {
        guard let line = text.split(separator: "\n").first else { return nil }
        var fields: [String: String] = [:]
        for token in line.split(separator: " ") {
            guard let eq = token.firstIndex(of: "=") else { continue }
            fields[String(token[..<eq])] = String(token[token.index(after: eq)...])
        }
        guard let state = fields["JobState"] else { return nil }
        let exit = fields["ExitCode"]?.split(separator: ":").map { Int32($0) }
        return JobRecord(
            state: state, exitCode: exit?.first ?? nil, signal: exit.flatMap { $0.count > 1 ? $0[1] : nil },
            reason: fields["Reason"] ?? "")
    }

    /// What the task left in its run folder.
    public struct RunFiles: Sendable, Equatable {
        public var exitStatus: Int32?
        public var timedOut = false
        public init(exitStatus: Int32? = nil, timedOut: Bool = false) {
            self.exitStatus = exitStatus
            self.timedOut = timedOut
        }

        static func read(_ runDir: String) -> RunFiles {
            let text = try? String(contentsOfFile: runDir + "/" + exitStatusName, encoding: .utf8)
            return RunFiles(
                exitStatus: text.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
                timedOut: FileManager.default.fileExists(atPath: runDir + "/" + timedOutName))
        }
    }

    /// How a task that left the queue ended. Slurm's record decides while it has one (a cancelled or failed node
    /// is not the trainer's fault: `vanished`, the run goes again); after MinJobAge it is forgotten, and the exit
    /// status the task wrote is the record.
    public static func finalState(record: JobRecord?, files: RunFiles) -> JobState {
        let exited = files.exitStatus.map { Termination.exited($0) }
        if files.timedOut { return .timedOut(exited) }
        guard let record else {
            return exited.map { .ended($0) } ?? .vanished("the Slurm job left the queue without an exit status")
        }
        switch record.state {
        case "TIMEOUT":
            return .timedOut(exited)
        case "COMPLETED", "FAILED", "OUT_OF_MEMORY":
            if let exited { return .ended(exited) }
            if let s = record.signal, s != 0 { return .ended(.signaled(s)) }
            return .ended(.exited(record.exitCode ?? (record.state == "COMPLETED" ? 0 : 1)))
        case "CANCELLED":
            return .vanished("the Slurm job was cancelled")
        case "NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "DEADLINE", "REVOKED":
            return .vanished("Slurm: \(record.state.lowercased().replacingOccurrences(of: "_", with: " "))")
        case "PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED":
            return liveState(QueueEntry(state: record.state, reason: record.reason, comment: "")) ?? .running
        default:
            return exited.map { .ended($0) } ?? .vanished("Slurm job state \(record.state)")
        }
    }

    /// Runs a Slurm command and collects its output.
    /// A query (`squeue`, `scontrol show`) that has not answered after `timeout` seconds is given up on (the caller
    /// asks again at its next poll) instead of holding the sweep: a query that never returned once left a sweep
    /// waiting for a task Slurm had long finished. The abandoned query is left to end by itself.
    static func query(_ argv: [String], timeout: Double = 30) async throws -> (status: Int32, stdout: String, stderr: String) {
        let answer = Answer()
        return try await withCheckedThrowingContinuation { continuation in
            Task {
                do {
                    let r = try await command(argv)
                    await answer.give { continuation.resume(returning: r) }
                } catch {
                    await answer.give { continuation.resume(throwing: error) }
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                await answer.give {
                    continuation.resume(throwing: ExecutorError("\(argv[0]) did not answer in \(String(format: "%g", timeout)) s"))
                }
            }
        }
    }

    /// Resumes a continuation once, whichever of the query and its deadline comes first.
    actor Answer {
        private var given = false
        func give(_ resume: () -> Void) {
            guard !given else { return }
            given = true
            resume()
        }
    }

    static func command(_ argv: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try await Subprocess.run(
            .name(argv[0]), arguments: Arguments(Array(argv.dropFirst())),
            output: .string(limit: 1 << 24), error: .string(limit: 1 << 20))
        let status: Int32
        switch result.terminationStatus {
        case .exited(let c): status = c
        case .signaled(let s): status = 128 + s
        }
        return (status, result.standardOutput ?? "", result.standardError ?? "")
    }
}
