import Foundation
import Tracking

/// The queue and the counts of one sweep invocation; the single place slots take work from.
actor Scheduler {
    private var pending: [Run]
    private let slots: Int
    private let deadline: Date?
    private let historyMean: Double?
    private let startedAt: Date
    /// Epochs of each trial, by params key.
    private let epochs: [String: Double]
    private let reportSink: (@Sendable (SweepProgress) -> Void)?

    private var durations: [(seconds: Double, epochs: Double?)] = []
    private var launchedAt: [Int64: Date] = [:]
    private var jobs: [Int64: JobHandle] = [:]
    private var active = 0
    private var done: Int
    private var failed: Int
    private(set) var skipped = 0
    private(set) var stopping = false
    /// Runs ended by the early-stop rule or hyperband, and why.
    private(set) var stoppedEarly: [Int64: String] = [:]

    init(
        pending: [Run], slots: Int, deadline: Date?, meanDuration: Double?, startedAt: Date, finishedBefore: Int,
        failedBefore: Int, epochs: [String: Double] = [:], report: (@Sendable (SweepProgress) -> Void)?
    ) {
        self.pending = pending
        self.slots = slots
        self.deadline = deadline
        self.historyMean = meanDuration
        self.startedAt = startedAt
        self.done = finishedBefore
        self.failed = failedBefore
        self.epochs = epochs
        self.reportSink = report
    }

    /// The next trial to start, or nil when there is none or harrow is stopping. With a deadline, a trial
    /// whose estimate would overrun it is passed over (a shorter one may still fit).
    func next() -> Run? {
        while !stopping, !pending.isEmpty {
            let run = pending.removeFirst()
            if admit(run, epochs: run.paramsKey.flatMap { epochs[$0] }) { return run }
        }
        return nil
    }

    /// Trials an adaptive search may still propose (counted as queued); the proposer keeps it current.
    var upcoming = 0
    var accepting: Bool { !stopping }
    func expect(_ n: Int) { upcoming = n }

    /// Starts a trial unless harrow is stopping or its estimate would overrun the deadline.
    func admit(_ run: Run, epochs trialEpochs: Double?) -> Bool {
        guard !stopping else { return false }
        if let deadline, let estimate = estimate(epochs: trialEpochs), Date().addingTimeInterval(estimate) > deadline {
            skipped += 1
            report("\(run.id) not started: it would end after the deadline")
            return false
        }
        active += 1
        return true
    }

    /// A trial admitted before it waited (for a card): still to start unless harrow began stopping meanwhile or
    /// the wait brought it past the deadline; one that may not start leaves the active count.
    func stillAdmitted(_ run: Run, epochs trialEpochs: Double?) -> Bool {
        active -= 1
        return admit(run, epochs: trialEpochs)
    }

    /// Seconds a trial should take: the mean seconds per epoch of finished trials times its epochs,
    /// or the mean duration when epochs are unknown.
    func estimate(epochs trialEpochs: Double?) -> TimeInterval? {
        let perEpoch = durations.compactMap { d in d.epochs.flatMap { $0 > 0 ? d.seconds / $0 : nil } }
        if let trialEpochs, !perEpoch.isEmpty { return perEpoch.reduce(0, +) / Double(perEpoch.count) * trialEpochs }
        if !durations.isEmpty { return durations.map(\.seconds).reduce(0, +) / Double(durations.count) }
        return historyMean
    }

    func launched(_ run: Run, job: JobHandle, executor: String) {
        jobs[run.rowID] = job
        launchedAt[run.rowID] = Date()
        report("\(run.id) started (\(executor == "local" ? "pid" : executor + " job") \(job))")
    }

    func ended(_ run: Run) {
        jobs[run.rowID] = nil
    }

    func finished(_ run: Run, status: RunStatus, epochs trialEpochs: Double?) {
        active -= 1
        if status.isFinished {
            done += 1
            if let start = launchedAt[run.rowID] { durations.append((Date().timeIntervalSince(start), trialEpochs)) }
        } else if status == .failed || status == .timed_out {
            failed += 1
        }
        report("\(run.id) \(status.rawValue)")
    }

    /// A run taken over from a harrow that is gone counts as running.
    func adopted(_ run: Run) {
        active += 1
    }

    /// Another harrow claimed the run first.
    func lost(_ run: Run) {
        active -= 1
        report("\(run.id) is run by another harrow")
    }

    /// Stop launching; returns the jobs to cancel.
    func stop() -> [JobHandle] {
        stopping = true
        pending.removeAll()
        report("stopping: no new trials; running trainers were sent SIGTERM")
        return Array(jobs.values)
    }

    /// The first store failure that stopped the sweep.
    private(set) var storeFailure: String?
    var abandoned: Bool { storeFailure != nil }

    /// Stops the sweep because its store cannot be written; returns the jobs to cancel.
    func abandon(because reason: String) -> [JobHandle] {
        guard storeFailure == nil else { return [] }
        storeFailure = reason
        stopping = true
        pending.removeAll()
        report("stopping: the store cannot be written (\(reason))")
        return Array(jobs.values)
    }

    var runningJobs: [JobHandle] { Array(jobs.values) }

    /// Marks a run as ended by the early-stop rule or hyperband; returns its job.
    func stopEarly(_ run: Int64, because reason: String) -> JobHandle? {
        guard let job = jobs[run], stoppedEarly[run] == nil else { return nil }
        stoppedEarly[run] = reason
        report("run stopped early: \(reason)")
        return job
    }

    func report(_ event: String?) {
        guard let reportSink else { return }
        var p = SweepProgress()
        p.done = done
        p.failed = failed
        // Running: trainers started. A trial admitted but still waiting (for room on a card) counts as queued.
        p.running = jobs.count
        p.queued = pending.count + upcoming + max(0, active - jobs.count)
        p.skipped = skipped
        p.elapsed = Date().timeIntervalSince(startedAt)
        if let mean = estimate(epochs: nil) {
            p.eta = mean * Double(pending.count + upcoming + active) / Double(max(1, slots))
        }
        p.event = event
        reportSink(p)
    }
}

/// SIGINT/SIGTERM while a sweep runs: stop launching, SIGTERM every job, SIGKILL after the grace period; a
/// second signal kills at once.
final class SignalWatch: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(scheduler: Scheduler, executor: any Executor, grace: Double) {
        let count = Counter()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                let n = count.increment()
                Task {
                    let jobs = n == 1 ? await scheduler.stop() : await scheduler.runningJobs
                    await withTaskGroup(of: Void.self) { group in
                        for job in jobs { group.addTask { await executor.cancel(job, signal: n == 1 ? SIGTERM : SIGKILL, grace: grace) } }
                    }
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        for sig in [SIGINT, SIGTERM] { signal(sig, SIG_DFL) }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func increment() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    }
}
