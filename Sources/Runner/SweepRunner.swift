import Diagnosis
import Foundation
import HarrowCore
import Logging
import Sweep
import Tracking

public struct RunnerOptions: Sendable {
    /// Trials at once on CPU slots (overrides the experiment's `resources`).
    public var parallel: Int?
    /// One trial per GPU, through CUDA_VISIBLE_DEVICES (overrides the experiment's `resources`).
    public var gpus: [Int]?
    /// Start no trial whose estimated duration would overrun this moment.
    public var deadline: Date?
    /// Extra attempts after a failure or timeout (overrides `trainer.retries`).
    public var retries: Int?
    /// Also run trials that failed or timed out in an earlier invocation.
    public var rerunFailed = false
    /// Where trainers start and relative paths resolve: the directory harrow was started in.
    public var workingDirectory = FileManager.default.currentDirectoryPath
    /// Seconds between SIGTERM and SIGKILL when a trial is stopped.
    public var killGrace: Double = 10
    /// Seconds between metrics reads.
    public var pollInterval: Double = 0.5
    /// Where run folders go; nil means `runs/` beside the store.
    public var runsDirectory: String?
    /// Where `harrow-train` is looked for before PATH (the folder of the running harrow).
    public var toolDirectory: String?
    /// Receives one line of progress after every change.
    public var progress: (@Sendable (SweepProgress) -> Void)?
    /// Handle SIGINT/SIGTERM: stop launching, forward SIGTERM to trainers, mark their runs interrupted.
    public var handleSignals = true
    /// What a finished run must share with a trial to be reused.
    public var reuse: ReuseRule = .identity
    /// Receives a line for each trial that runs again although its parameters ran before, saying why.
    public var notice: (@Sendable (String) -> Void)?
    /// Receives each run that ended failed or timed out after its last attempt.
    public var failed: (@Sendable (Run) -> Void)?
    /// A trial's memory estimate (`harrow plan --memory`), for packing trials onto GPUs by `gpu_memory` (none: a
    /// whole card) and for what a Slurm job asks for.
    public var memoryEstimate: (@Sendable (Trial) -> MemoryEstimate.Estimate?)?

    public init() {}
}

public struct SweepProgress: Sendable {
    public var done = 0, failed = 0, running = 0, queued = 0, skipped = 0
    public var elapsed: TimeInterval = 0
    public var eta: TimeInterval?
    public var event: String?
}

public struct SweepOutcome: Sendable {
    public var runs: [Run]
    /// Finished before this invocation (skipped).
    public var alreadyFinished: Int
    /// Not started because the deadline would have been overrun.
    public var notStarted: Int
    public var interrupted: Bool
    /// Why trials ran again although runs with their parameters were in the store.
    public var reruns: [String] = []
    /// Why the sweep stopped when its store could not be written (a full disk).
    public var storeFailure: String?

    /// docs/DESIGN.md: 0 every trial finished, 1 any failed or timed out (or the store could not be written),
    /// 130 interrupted.
    public var exitCode: Int32 {
        if interrupted { return 130 }
        if storeFailure != nil { return 1 }
        return runs.contains { $0.status == .failed || $0.status == .timed_out } ? 1 : 0
    }
}

/// Runs a planned sweep: claims each unfinished trial, starts its trainer in a slot, streams its metrics
/// into the store, and records how it ended. Running the same sweep again resumes it.
public final class SweepRunner: Sendable {
    let store: Store
    let plan: Plan
    let spec: String
    let options: RunnerOptions
    let executor: any Executor
    let owner = Owner()
    let logger = Logger(label: "harrow.runner")

    public init(store: Store, plan: Plan, spec: String, options: RunnerOptions, executor: (any Executor)? = nil) {
        self.store = store
        self.plan = plan
        self.spec = spec
        self.options = options
        self.executor = executor ?? LocalExecutor(grace: options.killGrace)
    }

    var gpuIDs: [Int]? { options.gpus ?? { if case .gpus(let g)? = plan.experiment.resources { g } else { nil } }() }

    /// Cards shared by memory, or several to a trial: trials take their cards from a pool as they start.
    var pool: GPUPool? {
        let packing = plan.experiment.gpuPacking
        guard let ids = gpuIDs, packing.memory != nil || packing.perTrial > 1 else { return nil }
        // Without a card size, a trial takes its cards whole: the "size" is one trial's worth.
        return GPUPool(ids: ids, bytesPerCard: packing.memory ?? Int.max / 2)
    }

    /// At most this many trials share one card.
    static let trialsPerCard = 4

    var slots: [Slot] {
        let packing = plan.experiment.gpuPacking
        if let ids = gpuIDs, packing.memory != nil || packing.perTrial > 1 {
            let workers = packing.memory != nil ? ids.count * Self.trialsPerCard / packing.perTrial : max(1, ids.count / packing.perTrial)
            return (0..<workers).map { _ in Slot(gpu: nil, threads: max(1, ProcessInfo.processInfo.activeProcessorCount / workers)) }
        }
        if let gpus = gpuIDs {
            return gpus.map { Slot(gpu: $0, threads: max(1, ProcessInfo.processInfo.activeProcessorCount / gpus.count)) }
        }
        let n = options.parallel ?? { if case .parallel(let p)? = plan.experiment.resources { p } else { 1 } }()
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / n)
        return (0..<n).map { _ in Slot(gpu: nil, threads: threads) }
    }

    struct Slot: Sendable {
        var gpu: Int?
        var threads: Int
        /// Cards a pool lent the trial now running in this slot.
        var gpus: [Int] = []
    }

    public func run() async throws -> SweepOutcome {
        let started = Date()
        // Runs a dead harrow left `running`: a cluster job still queued, running or finished is watched again;
        // otherwise what is left of their trainers is stopped, and they run again.
        var reclaimed: [(Run, JobHandle)] = []
        var lost: [Run] = []
        for run in try store.abandoned(owner: owner, isAlive: processIsAlive) {
            let previous = run.ownerPID.map { Owner(pid: $0, host: run.ownerHost ?? "") }
            if let dir = run.runDir, let job = await executor.reclaim(runDir: dir, job: run.job) {
                guard try store.adopt(run: run.rowID, from: previous, owner: owner) else { continue }
                reclaimed.append((run, job))
                options.notice?("run \(run.id) was left by a harrow that is gone; watching its \(executor.kind) job \(job) again")
            } else {
                lost.append(run)
                logger.warning("run \(run.id) was left running by a harrow that is gone; it will run again")
            }
        }
        try store.interrupt(lost)

        let e = plan.experiment
        let runsRoot =
            options.runsDirectory ?? ((store.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("runs")
        let code = GitProvenance.capture(at: (absolute(e.file) as NSString).deletingLastPathComponent)
        let provenance = try store.record(code)
        let identities = IdentityBuilder(
            store: store, experiment: e, workingDirectory: options.workingDirectory,
            toolDirectory: options.toolDirectory, code: code)
        // An adaptive search (or a random sweep with no bound) registers its earlier proposals again, in order, and
        // proposes the rest as it goes.
        let proposing = Planner.proposesAsItRuns(e)
        let earlier = proposing ? try Proposer.earlier(e, store: store) : []
        let planned = proposing ? earlier.map(\.trial) : plan.trials
        let records = planned.enumerated().map { i, trial in
            TrialRecord(
                identity: identities.identity(of: trial), paramsJSON: trial.parametersJSON, command: e.trainer.command,
                proposal: proposing ? earlier[i].explanation : nil)
        }
        let registration = try store.register(
            sweep: e.name, file: e.file, method: e.method.rawValue, spec: spec,
            objective: e.metric.map { Objective(metric: $0.name, goal: $0.goal) }, trials: records,
            runsRoot: absolute(runsRoot), reuse: options.reuse)
        let runs = registration.runs
        let reruns = registration.reruns.map { explain($0, code: code) }
        for line in reruns { options.notice?(line) }

        var claimable: Set<RunStatus> = [.queued, .interrupted]
        if options.rerunFailed { claimable.formUnion([.failed, .timed_out]) }
        let pending = runs.filter { claimable.contains($0.status) }
        let alreadyFinished = runs.filter(\.status.isFinished).count
        let trials = Dictionary(planned.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })  // by params key
        let proposer =
            proposing
            ? Proposer(
                store: store, experiment: e, identities: identities, earlier: planned, runsRoot: absolute(runsRoot), reuse: options.reuse,
                notice: options.notice)
            : nil
        let history = try store.sweeps().first { $0.name == e.name }?.meanDuration

        let epochs = trials.compactMapValues { $0["epochs"]?.number }
        let slots = slots
        let scheduler = Scheduler(
            pending: pending, slots: slots.count, deadline: options.deadline, meanDuration: history,
            startedAt: started, finishedBefore: alreadyFinished,
            failedBefore: runs.count - pending.count - alreadyFinished - reclaimed.count, epochs: epochs, report: options.progress)
        if let proposer { await scheduler.expect(await proposer.remaining ?? 0) }
        let hyperband = e.earlyTerminate.flatMap(Hyperband.init).flatMap { rule in
            e.metric.map { MetricsPump.HyperbandWatch(rule: rule, metric: $0.name, maximize: $0.goal == .maximize) }
        }
        let pump = MetricsPump(
            store: store, earlyStop: e.earlyStop.map { EarlyStop(patience: $0.patience, minDelta: $0.minDelta) },
            hyperband: hyperband)
        await pump.loadHistories(runs: runs.map(\.rowID))
        let signals = options.handleSignals ? SignalWatch(scheduler: scheduler, executor: executor, grace: options.killGrace) : nil
        defer { signals?.cancel() }

        let context = TrialContext(
            store: store, experiment: e, trials: trials, proposer: proposer, scheduler: scheduler, pump: pump,
            executor: executor, owner: owner, provenance: provenance, options: options, claimable: claimable,
            logger: logger, pool: pool)
        await scheduler.report(nil)
        await context.concludeUnfinishedBusiness(runs)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(self.options.pollInterval))
                    do {
                        for (run, reason) in try await pump.tick() {
                            guard let job = await scheduler.stopEarly(run, because: reason) else { continue }
                            await self.executor.cancel(job, signal: SIGTERM, grace: self.options.killGrace)
                        }
                    } catch {
                        self.logger.error("cannot store metrics: \(error)")
                        if let e = error as? StoreError, e.cannotWrite { await context.abandon(e) }
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { workers in
                // Jobs a harrow that is gone left queued or running: watched to their end, never submitted again.
                for (run, job) in reclaimed {
                    workers.addTask { await context.finishReclaimed(run, job: job) }
                }
                // On a cluster every ready trial is submitted at once and its queue throttles them.
                let inFlight = executor.inFlight(slots: slots.count, pending: pending.count)
                for i in 0..<max(1, inFlight) { workers.addTask { try await context.work(in: slots[i % slots.count]) } }
                try await workers.waitForAll()
            }
            group.cancelAll()
        }

        let final = try store.runs(sweep: e.name)
        let storeFailure = await scheduler.storeFailure
        let interrupted = await scheduler.stopping && storeFailure == nil
        return SweepOutcome(
            runs: final, alreadyFinished: alreadyFinished, notStarted: await scheduler.skipped, interrupted: interrupted,
            reruns: reruns, storeFailure: storeFailure)
    }

    /// "run ab12cd34 runs again: code changed since run k3x9a2pq (succeeded): commit a1b2c3d → d4e5f6a (train.py)".
    func explain(_ rerun: Rerun, code: Provenance) -> String {
        var committed: [String]?
        if let repo = code.repository, let old = rerun.earlierIdentity?.commit, let new = rerun.identity.commit, old != new {
            committed = GitProvenance.changedFiles(at: repo, from: old, to: new)
        }
        return "run \(rerun.run) runs again; since run \(rerun.earlier) (\(rerun.earlierStatus.rawValue)) "
            + rerun.identity.changes(since: rerun.earlierIdentity, committedFiles: committed)
    }

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : options.workingDirectory + "/" + path
    }
}

/// Everything a slot needs to run trials.
struct TrialContext: Sendable {
    let store: Store
    let experiment: Experiment
    let trials: [String: Trial]
    /// Proposes the trials of a bayes or tpe sweep once the registered ones are taken.
    let proposer: Proposer?
    let scheduler: Scheduler
    let pump: MetricsPump
    let executor: any Executor
    let owner: Owner
    let provenance: Int64
    let options: RunnerOptions
    let claimable: Set<RunStatus>
    let logger: Logger
    let pool: GPUPool?

    var retries: Int { options.retries ?? experiment.trainer.retries }

    func work(in shared: SweepRunner.Slot) async throws {
        while let run = try await nextRun() {
            guard let key = run.paramsKey, var trial = await trial(key) else { continue }
            var slot = shared
            var lease: (ids: [Int], need: Int)?
            if let pool {
                let need = options.memoryEstimate?(trial)?.total ?? pool.usable
                guard need <= pool.usable else {
                    await refuse(run, trial: trial, need: need, usable: pool.usable)
                    continue
                }
                let ids = await pool.acquire(need: need, count: experiment.gpuPacking.perTrial)
                // Ctrl-C or the deadline may have come while it waited for room on a card.
                guard await scheduler.stillAdmitted(run, epochs: trial["epochs"]?.number) else {
                    await pool.release(ids, need: need)
                    continue
                }
                lease = (ids, need)
                slot.gpus = ids
            }
            var statuses = claimable
            var tries = 0, vanished = 0, shrunk = 0
            while true {
                guard let attempt = try store.claim(run: run.rowID, from: statuses, owner: owner, sweep: experiment.name) else {
                    await scheduler.lost(run)  // another harrow took it
                    break
                }
                let (status, gone) = await execute(run, trial: trial, attempt: attempt, slot: slot)
                // A job lost to a node failure or cancelled from outside runs again (a few times), without using a retry.
                if gone, vanished < Self.maxVanished, await !scheduler.stopping {
                    vanished += 1
                    logger.notice("run \(run.id) was interrupted outside harrow; it runs again")
                    statuses = [.interrupted]
                    continue
                }
                // Out of memory: again at half the micro-batch and twice the accumulation (the same training), without
                // using a retry, while the micro-batch halves exactly.
                if status == .failed, shrunk < Self.maxShrinks, await !scheduler.stopping,
                    let cause = (try? store.run(run.id))??.failure?.cause, cause == .outOfMemoryGPU || cause == .outOfMemoryHost,
                    let shrink = MicroBatch.halved(
                        trial, profile: experiment.trainer.profile,
                        config: experiment.trainer.baseConfig(workingDirectory: options.workingDirectory))
                {
                    shrunk += 1
                    trial = shrink.trial
                    try? store.note(run: run.rowID, attempt: attempt, "\(cause.label): again at \(shrink.change)")
                    logger.notice("run \(run.id) ran out of memory; again at \(shrink.change)")
                    statuses = [.failed]
                    continue
                }
                tries += 1
                let retry = (status == .failed || status == .timed_out) && tries <= retries
                guard retry, await !scheduler.stopping else {
                    if status == .failed || status == .timed_out, let ended = try? store.run(run.id) { options.failed?(ended) }
                    await scheduler.finished(run, status: status, epochs: trial["epochs"]?.number)
                    break
                }
                logger.info("run \(run.id) \(status.rawValue); attempt \(attempt + 1) of \(retries + 1)")
                statuses = [.failed, .timed_out]
            }
            if let pool, let lease { await pool.release(lease.ids, need: lease.need) }
        }
    }

    static let maxVanished = 3

    /// A trial whose estimate exceeds a card never starts: it fails at once, saying by how much.
    func refuse(_ run: Run, trial: Trial, need: Int, usable: Int) async {
        guard let attempt = try? store.claim(run: run.rowID, from: claimable, owner: owner, sweep: experiment.name) else {
            await scheduler.lost(run)
            return
        }
        func gib(_ b: Int) -> String { String(format: "%.2f GiB", Double(b) / 0x1p30) }
        let why =
            "needs about \(gib(need)) by its memory estimate (`harrow plan --memory`); a card has \(gib(usable)) "
            + "(gpu_memory less a tenth): not started"
        let status = await record(run, attempt, .failed, nil, why, RunFolder(path: run.runDir ?? ""))
        if let ended = try? store.run(run.id) { options.failed?(ended) }
        await scheduler.finished(run, status: status, epochs: trial["epochs"]?.number)
    }
    /// Halvings of the micro-batch after out-of-memory failures: 16 → 2 at most.
    static let maxShrinks = 3

    /// A registered trial still to run, else a new proposal of an adaptive search.
    func nextRun() async throws -> Run? {
        if let run = await scheduler.next() { return run }
        do {
            return try await proposer?.next(scheduler)
        } catch let error as StoreError {
            if error.cannotWrite { await abandon(error) }
            logger.error("cannot record the next proposal: \(error)")
            return nil
        } catch {
            logger.error("cannot propose the next trial: \(error)")
            return nil
        }
    }

    func trial(_ key: String) async -> Trial? {
        if let trial = trials[key] { return trial }
        return await proposer?.trial(key)
    }

    /// A run whose job outlived its harrow: its curves continue from the stored offset, and it ends as any other.
    func finishReclaimed(_ run: Run, job: JobHandle) async {
        await scheduler.adopted(run)
        let (status, gone) = await watch(
            run, job: job, attempt: run.attempt, folder: RunFolder(path: run.runDir ?? ""), offset: run.metricsOffset)
        await scheduler.finished(run, status: status, epochs: await trial(run.paramsKey ?? "")?["epochs"]?.number)
        if gone { logger.warning("run \(run.id) was interrupted outside harrow; run the sweep again to run it again") }
    }

    /// Runs one attempt; returns its status and whether its job vanished (interrupted outside harrow).
    func execute(_ run: Run, trial: Trial, attempt: Int, slot: SweepRunner.Slot) async -> (RunStatus, Bool) {
        let folder = RunFolder(path: run.runDir ?? "")
        var expansion: CommandTemplate.Expansion
        if let profile = experiment.trainer.profile {
            // A tool run unchanged: its config (LLaMA-Factory's YAML, read now so an edit reaches the next trial) or
            // flags carry the trial's parameters under its own names.
            do {
                let base = try profile.config.map { path in
                    try String(contentsOfFile: path.hasPrefix("/") ? path : options.workingDirectory + "/" + path, encoding: .utf8)
                }
                expansion = try profile.expand(trial: trial, runDir: folder.path, baseConfig: base)
            } catch {
                return (
                    await record(run, attempt, .failed, nil, "cannot prepare the \(profile.kind.rawValue) trainer: \(error)", folder), false
                )
            }
        } else {
            expansion = CommandTemplate.expand(
                experiment.trainer.command, trial: trial, program: experiment.program,
                configPath: folder.trialJSON, runDir: folder.path,
                environment: ProcessInfo.processInfo.environment, paths: experiment.parameterPaths)
        }
        // A W&B script reads its parameters through `wandb.config`, from the config file W&B's agent would write.
        let wandb =
            experiment.isWandb
            ? WandbAgent.environment(
                sweep: experiment.name, run: run.id, runDir: folder.path, inherited: ProcessInfo.processInfo.environment)
            : [:]
        if let path = wandb["WANDB_SWEEP_PARAM_PATH"] {
            expansion.files[path] = WandbAgent.configYAML(WandbAgent.config(trial, paths: experiment.parameterPaths))
        }
        // A harrow killed between marking a run interrupted and stopping its trainer leaves that trainer
        // writing into this folder: no new attempt starts beside it.
        if attempt > 1 { await executor.cleanUp(runDir: folder.path) }
        do {
            try folder.prepare(attempt: attempt, trial: trial, files: expansion.files)
            for input in Inputs.files(of: trial, workingDirectory: options.workingDirectory) {
                let digest = store.digest(ofFile: input.path)
                try store.recordArtifact(
                    run: run.rowID, role: "input:\(input.role)", path: input.path, sha256: digest?.hex, size: digest?.size)
            }
        } catch {
            if let e = error as? StoreError, e.cannotWrite { await abandon(e) }
            return (await record(run, attempt, .failed, nil, "cannot prepare \(folder.path): \(error)", folder), false)
        }

        var env = [
            "HARROW_RUN_ID": run.id, "HARROW_RUN_DIR": folder.path, "HARROW_METRICS": folder.metrics,
            "OMP_NUM_THREADS": String(slot.threads), "OPENBLAS_NUM_THREADS": String(slot.threads), "PYTHONUNBUFFERED": "1"
        ]
        if !slot.gpus.isEmpty {
            env["CUDA_VISIBLE_DEVICES"] = slot.gpus.map(String.init).joined(separator: ",")
        } else if let gpu = slot.gpu {
            env["CUDA_VISIBLE_DEVICES"] = String(gpu)
        }
        env.merge(wandb) { _, w in w }
        var argv = expansion.argv
        if !argv[0].contains("/"), let tools = options.toolDirectory, FileManager.default.isExecutableFile(atPath: tools + "/" + argv[0]) {
            argv[0] = tools + "/" + argv[0]
        }
        var job = Job(
            argv: argv, environment: env, workingDirectory: options.workingDirectory, stdoutPath: folder.stdout,
            stderrPath: folder.stderr, runDir: folder.path, runID: run.id, timeout: experiment.trainer.timeout)
        job.memoryEstimate = options.memoryEstimate?(trial)
        let handle: JobHandle
        do {
            handle = try await executor.launch(job)
        } catch {
            return (await record(run, attempt, .failed, nil, "cannot start \(argv[0]): \(error)", folder), false)
        }
        return await watch(run, job: handle, attempt: attempt, folder: folder, offset: 0, threads: slot.threads)
    }

    /// Follows a launched (or reclaimed) job to its end, streaming its metrics, and records how it ended.
    func watch(_ run: Run, job: JobHandle, attempt: Int, folder: RunFolder, offset: Int64, threads: Int? = nil) async -> (RunStatus, Bool) {
        try? store.started(run: run.rowID, job: job.id, executor: executor.kind, provenance: provenance)
        await scheduler.launched(run, job: job, executor: executor.kind)
        // The trainer's own log when it names one (relative to the run folder, its output directory).
        let source =
            experiment.trainerLog.map { log in
                MetricsSource(
                    format: log.format, path: log.format == .hf ? folder.path : folder.path + "/" + log.path, keys: log.keys,
                    metricsLines: log.format == .hf || log.format == .wandb ? folder.metrics : nil)
            } ?? .harrow(folder.metrics)
        await pump.watch(run: run.rowID, source: source, offset: offset)
        // The kernel's OOM kills so far: a local trainer ended by SIGKILL while the count rose was its OOM killer's.
        let killsBefore = executor.kind == "local" ? KernelLog.oomKills() : nil
        let state = await executor.wait(job)
        // What the trainer left running (a data loader, a logger it forked) ends with it.
        await executor.cleanUp(runDir: folder.path)
        await scheduler.ended(run)
        do { try await pump.finish(run: run.rowID) } catch { logger.error("cannot store metrics of \(run.id): \(error)") }

        let status: RunStatus
        var termination: Termination?, note: String?, vanished = false
        switch state {
        case .ended(let t): termination = t
        case .timedOut(let t): termination = t
        case .vanished(let why): note = why
        case .queued, .running: break
        }
        if let reason = await scheduler.stoppedEarly[run.rowID] {
            status = .stopped_early
            note = reason
        } else if await scheduler.stopping {
            status = .interrupted
        } else if case .timedOut = state {
            status = .timed_out
        } else if case .vanished = state {
            status = .interrupted
            vanished = true
        } else {
            status = termination == .exited(0) ? .succeeded : .failed
        }
        if status == .failed, killsBefore != nil, termination == .signaled(SIGKILL) || termination == .exited(137) {
            var signal: Int32?, code: Int32?
            if case .signaled(let s)? = termination { signal = s }
            if case .exited(let c)? = termination { code = c }
            note =
                OOMKiller.note(
                    signal: signal, exitCode: code, killsBefore: killsBefore, killsAfter: KernelLog.oomKills(),
                    kernelLines: KernelLog.killLines(), pid: Int32(job.id)) ?? note
        }
        let recorded = await record(run, attempt, status, termination, note, folder)
        if recorded == .succeeded { await checkMetricArrived(run) }
        if status != .interrupted, await !scheduler.abandoned, let updated = try? store.run(run.id) {
            await conclude(updated, diagnose: true, evaluate: recorded.isFinished, threads: threads)
        }
        return (recorded, vanished)
    }

    /// A sweep whose metric a finished run never logged is searching on nothing: said once, with the keys that did
    /// arrive (a script that logs `val/loss` for a sweep on `val_loss`, or forgot `wandb.log`).
    func checkMetricArrived(_ run: Run) async {
        guard let metric = experiment.metric?.name, let keys = try? store.metricKeys(run: run.rowID), !keys.contains(metric),
            await pump.firstMissingMetric()
        else { return }
        let logged = keys.isEmpty ? "it logged nothing" : "it logged " + keys.sorted().joined(separator: ", ")
        let where_ = experiment.isWandb ? " (read from its .wandb file; is `wandb.log` called with that key?)" : ""
        let message =
            "the sweep's metric \(metric) was never logged by \(run.id); \(logged)\(where_). "
            + "Searches and hyperband see no result for such runs"
        if let notice = options.notice { notice(message) } else { logger.warning("\(message)") }
    }

    /// What follows a run's end: its diagnosis and, when it finished, its evaluation (in the run's slot: a local
    /// scorer gets the slot's thread count, as the trainer did).
    func conclude(_ run: Run, diagnose wantsDiagnosis: Bool, evaluate: Bool, threads: Int? = nil) async {
        if wantsDiagnosis {
            do { _ = try diagnose(run: run, store: store, thresholds: experiment.diagnosis) } catch {
                logger.error("cannot diagnose \(run.id): \(error)")
            }
        }
        guard evaluate, let e = experiment.evaluation else { return }
        await scheduler.report("\(run.id) evaluating on \(e.evalsets.count) evalset\(e.evalsets.count == 1 ? "" : "s")")
        var evaluation = RunEvaluation(
            workingDirectory: options.workingDirectory, toolDirectory: options.toolDirectory, scorer: e.scorer,
            timeout: e.timeout)
        // On a cluster the evaluation runs as a job there too.
        if executor.kind != "local" {
            evaluation.executor = executor
        } else if let threads {
            evaluation.environment = ["OMP_NUM_THREADS": String(threads), "OPENBLAS_NUM_THREADS": String(threads)]
        }
        for result in await evaluation.run(run, evalsets: e.evalsets, store: store) where result.status != "succeeded" {
            logger.error("evaluation of \(run.id) on \(result.evalset) failed: \(result.error ?? "")")
        }
    }

    /// Finished runs whose diagnosis or evaluation a harrow killed in between never stored: done now.
    func concludeUnfinishedBusiness(_ runs: [Run]) async {
        for run in runs where run.status.isFinished {
            let undiagnosed = ((try? store.diagnosis(run: run.rowID)) ?? nil) == nil
            let unevaluated = experiment.evaluation.map { ((try? store.evals(run: run.rowID).count) ?? 0) < $0.evalsets.count } ?? false
            guard undiagnosed || unevaluated, await !scheduler.stopping else { continue }
            await conclude(run, diagnose: undiagnosed, evaluate: unevaluated)
        }
    }

    /// Records how an attempt ended. A store that cannot be written stops the sweep: the run stays
    /// `running` in the store, and the next harrow finds it abandoned and runs it again.
    func record(
        _ run: Run, _ attempt: Int, _ status: RunStatus, _ termination: Termination?, _ error: String?,
        _ folder: RunFolder
    ) async -> RunStatus {
        do {
            return try write(run, attempt, status, termination, error, folder)
        } catch {
            logger.error("cannot record the end of \(run.id): \(error)")
            if let e = error as? StoreError, e.cannotWrite { await abandon(e) }
            return status
        }
    }

    /// Stops the sweep because the store cannot be written: nothing new starts, running jobs are cancelled.
    func abandon(_ error: StoreError) async {
        let jobs = await scheduler.abandon(because: error.message)
        await withTaskGroup(of: Void.self) { group in
            for job in jobs { group.addTask { await executor.cancel(job, signal: SIGTERM, grace: options.killGrace) } }
        }
    }

    private func write(
        _ run: Run, _ attempt: Int, _ status: RunStatus, _ termination: Termination?, _ error: String?,
        _ folder: RunFolder
    ) throws -> RunStatus {
        var exitCode: Int32?, signal: Int32?
        switch termination {
        case .exited(let c)?: exitCode = c
        case .signaled(let s)?: signal = s
        case nil: break
        }
        let tail = status == .succeeded ? nil : (error.map { $0 + "\n" } ?? "") + (folder.stderrTail() ?? "")
        try store.finish(
            run: run.rowID, attempt: attempt, status: status, exitCode: exitCode, signal: signal,
            stderrTail: tail?.isEmpty == true ? nil : tail, error: error)
        return status
    }
}
