import Foundation
import Sweep
import Subprocess
import SystemPackage

/// One trainer (or scorer) to run for a run folder.
public struct Job: Sendable {
    public var argv: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    public var stdoutPath: String
    public var stderrPath: String
    /// The run folder the job belongs to: where a cluster job writes its exit status, and how strays are found.
    public var runDir: String
    public var runID: String
    /// Seconds before the job is stopped and recorded `timed_out`.
    public var timeout: Double?
    /// A file for its stdin (a batch scorer's requests); nil means none.
    public var stdinPath: String?
    /// The trial's memory estimate, from which a cluster job asks for cards and host memory (`SlurmRequest`).
    public var memoryEstimate: MemoryEstimate.Estimate?

    public init(
        argv: [String], environment: [String: String], workingDirectory: String, stdoutPath: String, stderrPath: String,
        runDir: String, runID: String, timeout: Double? = nil, stdinPath: String? = nil
    ) {
        self.stdinPath = stdinPath
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.runDir = runDir
        self.runID = runID
        self.timeout = timeout
    }
}

public enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
}

/// What an executor calls a job: a process group on this machine, `12345_7` under Slurm.
public struct JobHandle: Sendable, Hashable, CustomStringConvertible {
    public let id: String
    public init(_ id: String) { self.id = id }
    public var description: String { id }
}

public enum JobState: Sendable, Equatable {
    /// Waiting in a cluster's queue (with the scheduler's reason), or requeued after a preemption.
    case queued(String)
    case running
    case ended(Termination)
    /// Stopped at its time limit.
    case timedOut(Termination?)
    /// Gone without finishing through no fault of the trainer (a node failed, someone cancelled the job):
    /// the run is `interrupted` and runs again.
    case vanished(String)

    public var isOver: Bool {
        switch self {
        case .queued, .running: false
        case .ended, .timedOut, .vanished: true
        }
    }
}

/// Launches, watches and cancels trials. The runner knows jobs only by handle; processes, queues and
/// nodes are the executor's business.
public protocol Executor: Sendable {
    /// `local` or `slurm`, for messages and the store.
    var kind: String { get }
    /// Trials to keep in flight: slots on this machine; on a cluster, every ready trial (its queue throttles them).
    func inFlight(slots: Int, pending: Int) -> Int
    func launch(_ job: Job) async throws -> JobHandle
    func poll(_ job: JobHandle) async -> JobState
    /// Returns once the job is over.
    func wait(_ job: JobHandle) async -> JobState
    /// Sends `signal`; if the job still runs after `grace` seconds, kills it.
    func cancel(_ job: JobHandle, signal: Int32, grace: Double) async
    /// A job a harrow that is gone left for this run folder. A cluster job still queued, running, or finished
    /// with its status on disk is handed back to be watched; otherwise nil, after stopping whatever is left.
    func reclaim(runDir: String, job: String?) async -> JobHandle?
    /// After a job is over, nothing it started may hold cores, memory or a GPU.
    func cleanUp(runDir: String) async
}

extension Executor {
    public func inFlight(slots: Int, pending: Int) -> Int { slots }

    public func wait(_ job: JobHandle) async -> JobState {
        while true {
            let state = await poll(job)
            if state.isOver { return state }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// Subprocess slots on this machine. Each trainer gets its own session and process group, so a signal
/// reaches its children; a timeout is enforced here with SIGTERM, then SIGKILL after the grace period.
public final class LocalExecutor: Executor {
    public let kind = "local"
    let grace: Double
    private let jobs = LocalJobs()

    public init(grace: Double = 10) { self.grace = grace }

    public func launch(_ job: Job) async throws -> JobHandle {
        let out = try FileDescriptor.open(
            FilePath(job.stdoutPath), .writeOnly, options: [.create, .truncate],
            permissions: [.ownerReadWrite, .groupRead, .otherRead])
        let err: FileDescriptor, input: FileDescriptor
        do {
            err = try FileDescriptor.open(
                FilePath(job.stderrPath), .writeOnly, options: [.create, .truncate],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            try? out.close()
            throw error
        }
        do {
            input = try FileDescriptor.open(FilePath(job.stdinPath ?? "/dev/null"), .readOnly)
        } catch {
            try? out.close()
            try? err.close()
            throw error
        }
        var options = PlatformOptions()
        // Its own session and process group, so a timeout or Ctrl-C reaches the trainer's children too.
        options.createSession = true
        var env: [Environment.Key: String?] = [:]
        for (k, v) in job.environment { env[Environment.Key(stringLiteral: k)] = v }
        let executable: Executable = job.argv[0].contains("/") ? .path(FilePath(job.argv[0])) : .name(job.argv[0])
        let (pids, pidSink) = AsyncStream.makeStream(of: Int32.self)
        let process = Task { () throws -> Termination in
            defer { pidSink.finish() }  // a spawn that throws reports no pid
            let result = try await Subprocess.run(
                executable, arguments: Arguments(Array(job.argv.dropFirst())), environment: .inherit.updating(env),
                workingDirectory: FilePath(job.workingDirectory), platformOptions: options,
                input: .fileDescriptor(input, closeAfterSpawningProcess: true),
                output: .fileDescriptor(out, closeAfterSpawningProcess: true),
                error: .fileDescriptor(err, closeAfterSpawningProcess: true)
            ) { execution in
                pidSink.yield(execution.processIdentifier.value)
                pidSink.finish()
            }
            switch result.terminationStatus {
            case .exited(let code): return .exited(code)
            case .signaled(let s): return .signaled(s)
            }
        }
        // The spawn either reports a pid or throws (no such program, not executable).
        var iterator = pids.makeAsyncIterator()
        guard let pid = await iterator.next() else {
            _ = try await process.value
            throw ExecutorError("the trainer did not start")
        }
        let handle = JobHandle(String(pid))
        await jobs.add(handle, process: process)
        if let timeout = job.timeout {
            Task { [jobs, grace] in
                try? await Task.sleep(for: .seconds(timeout))
                guard await jobs.markTimedOut(handle) else { return }
                kill(-pid, SIGTERM)
                try? await Task.sleep(for: .seconds(grace))
                if await jobs.isRunning(handle) { kill(-pid, SIGKILL) }
            }
        }
        return handle
    }

    public func poll(_ job: JobHandle) async -> JobState {
        await jobs.state(job)
    }

    public func wait(_ job: JobHandle) async -> JobState {
        await jobs.wait(job)
    }

    public func cancel(_ job: JobHandle, signal: Int32, grace: Double) async {
        guard let pid = Int32(job.id), pid > 0, await jobs.isRunning(job) else { return }
        kill(-pid, signal)
        guard signal != SIGKILL else { return }
        Task { [jobs] in
            try? await Task.sleep(for: .seconds(grace))
            if await jobs.isRunning(job) { kill(-pid, SIGKILL) }
        }
    }

    /// A trainer of a harrow that is gone cannot be waited for (it is not our child, and its exit status is
    /// lost), so it is stopped and its run starts again.
    public func reclaim(runDir: String, job: String?) async -> JobHandle? {
        await cleanUp(runDir: runDir)
        return nil
    }

    /// Kills trainers still running for a run folder, found by HARROW_RUN_DIR in their environment — not by a
    /// stored pid (it may have been reused since) nor by run id (ids come from trial content, so another store
    /// may run the same id) — and waits until they are gone (zombies count as gone).
    public func cleanUp(runDir: String) async {
        // Scanned again each round: a child calling setsid() between a scan and the kill has left the group that
        // was killed and is found in its own.
        for _ in 0..<250 {
            let groups = processGroups(withEnvironment: "HARROW_RUN_DIR", value: runDir)
            if groups.isEmpty { return }
            for group in groups { kill(-group, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The local executor's children: running, ended, and which of them hit their timeout.
actor LocalJobs {
    private var processes: [JobHandle: Task<Termination, any Error>] = [:]
    private var ended: [JobHandle: Termination] = [:]
    private var timedOut: Set<JobHandle> = []

    func add(_ job: JobHandle, process: Task<Termination, any Error>) {
        processes[job] = process
        Task { _ = await self.wait(job) }
    }

    func isRunning(_ job: JobHandle) -> Bool { processes[job] != nil && ended[job] == nil }

    /// Marks a running job as past its timeout; false when it already ended.
    func markTimedOut(_ job: JobHandle) -> Bool {
        guard isRunning(job) else { return false }
        timedOut.insert(job)
        return true
    }

    func state(_ job: JobHandle) -> JobState {
        guard let termination = ended[job] else { return processes[job] == nil ? .vanished("unknown job \(job)") : .running }
        return timedOut.contains(job) ? .timedOut(termination) : .ended(termination)
    }

    func wait(_ job: JobHandle) async -> JobState {
        guard let process = processes[job] else { return state(job) }
        if ended[job] == nil {
            // A failure to wait (not to start: launch saw the pid) reads as the signal that ended it.
            let termination = (try? await process.value) ?? .signaled(SIGKILL)
            ended[job] = termination
        }
        return state(job)
    }
}

public struct ExecutorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Process groups on this machine whose processes carry `NAME=value` in their environment: trainers of a
/// run, found even when the harrow that started them died before it could record their pid.
public func processGroups(withEnvironment name: String, value: String) -> Set<Int32> {
    let needle = Array("\(name)=\(value)".utf8)
    var groups = Set<Int32>()
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), pid != getpid(), let environ = readProcFile("/proc/\(entry)/environ") else { continue }
        if environ.split(separator: 0).contains(where: { Array($0) == needle }) {
            let group = getpgid(pid)
            if group > 0 { groups.insert(group) }
        }
    }
    return groups
}

/// Reads a /proc file to its end. They report a size of 0, so readers that trust the size read nothing.
func readProcFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

/// Is a process alive on this machine? EPERM means it exists under another user; a zombie (exited, not yet
/// reaped by its parent) counts as gone.
public func processIsAlive(_ pid: Int32) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let bytes = readProcFile("/proc/\(pid)/stat"), let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return true }
    // The state letter follows ") ": Z is a zombie.
    return bytes.dropFirst(close + 1).first { $0 != UInt8(ascii: " ") } != UInt8(ascii: "Z")
}
