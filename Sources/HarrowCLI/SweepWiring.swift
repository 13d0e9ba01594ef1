import ArgumentParser
import Foundation
import HarrowCore
import Runner
import Sweep
import Tracking

/// What `harrow sweep` hands the runner besides its flags: the memory estimate of each trial, the Slurm executor,
/// and the values of `--gpus` and `--deadline`.
enum SweepWiring {
    /// Each trial's estimate from its model's config.json (`harrow plan --memory`); nil for a trial without one.
    static func memoryEstimates(_ experiment: Experiment, workingDirectory cwd: String) -> @Sendable (Trial) -> MemoryEstimate.Estimate? {
        let trainer = experiment.trainer
        let config = trainer.baseConfig(workingDirectory: cwd)
        return { trial in
            let estimate = MemoryEstimate.forTrial(trial, trainer: trainer, config: config) { path in
                LlamaFactoryData.regularFileText(path.hasPrefix("/") ? path : cwd + "/" + path)
            }
            if case .success(let e) = estimate { return e }
            return nil
        }
    }

    /// The Slurm executor, its state (array manifests, batch script, task output) beside the run folders.
    static func slurm(_ experiment: Experiment, runsDirectory: String?, store: Store, workingDirectory: String) -> SlurmExecutor {
        var folder = runsDirectory.map { ($0 as NSString).deletingLastPathComponent } ?? (store.path as NSString).deletingLastPathComponent
        if !folder.hasPrefix("/") { folder = FileManager.default.currentDirectoryPath + "/" + folder }
        return SlurmExecutor(
            settings: experiment.executor ?? .init(), stateDirectory: folder + "/slurm", workingDirectory: workingDirectory,
            sweep: experiment.name, timeout: experiment.trainer.timeout)
    }

    /// `--gpus 0,1`.
    static func parseGPUs(_ text: String) throws -> [Int] {
        let ids = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ValidationError("--gpus takes device numbers like 0,1") }
        return ids.map { $0! }
    }

    /// `--deadline`: a time of day (the next 07:30) or a duration from now (8h, 90m, 1h30m).
    static func parseDeadline(_ text: String) throws -> Date {
        if let seconds = parseDuration(text) { return Date().addingTimeInterval(seconds) }
        let parts = text.split(separator: ":").map { Int($0) }
        guard parts.count == 2, let h = parts[0], let m = parts[1], (0..<24).contains(h), (0..<60).contains(m) else {
            throw ValidationError("--deadline takes a time (07:30) or a duration (8h, 90m, 1h30m)")
        }
        let calendar = Calendar.current
        var next = calendar.nextDate(after: Date(), matching: DateComponents(hour: h, minute: m), matchingPolicy: .nextTime)!
        if next < Date() { next = calendar.date(byAdding: .day, value: 1, to: next)! }
        return next
    }
}

/// What a notifier reads on its standard input (`notify:`), one JSON object an event.
enum SweepEvent {
    struct Failure: Encodable, Sendable {
        var cause: FailureCause
        var lines: [String]
    }

    /// `failed_first`: the sweep's first run that failed or timed out after its last attempt.
    struct FailedFirst: Encodable, Sendable {
        var event = "failed_first"
        var sweep: String
        var run: String
        var status: String
        var params: [String: ParamValue]
        @OrNull var failure: Failure?
    }

    /// `finished`: how the sweep ended, its failures by cause, and its best run by the sweep's metric.
    struct Finished: Encodable, Sendable {
        struct Best: Encodable, Sendable {
            var run: String
            var metric: String
            var value: Double
        }
        var event = "finished"
        var sweep: String
        var exitCode: Int
        var counts: [String: Int]
        var failures: [String: Int]
        @OrNull var best: Best?
        enum CodingKeys: String, CodingKey { case event, sweep, exitCode = "exit_code", counts, failures, best }

        init(experiment: Experiment, outcome: SweepOutcome, snapshots: [RunSnapshot]) {
            sweep = experiment.name
            exitCode = Int(outcome.exitCode)
            counts = outcome.runs.reduce(into: [:]) { $0[$1.status.rawValue, default: 0] += 1 }
            failures = Dictionary(uniqueKeysWithValues: FailureCounts.counts(outcome.runs).map { ($0.cause.rawValue, $0.count) })
            let metric = experiment.metric?.name ?? TrainerContract.Metric.valLoss
            let lower = (experiment.metric?.goal ?? .minimize) == .minimize
            best = snapshots.compactMap { s in s.value(metric).map { (s, $0) } }.min { lower ? $0.1 < $1.1 : $0.1 > $1.1 }
                .map { Best(run: $0.0.run.id, metric: metric, value: $0.1) }
        }
    }

    /// The runner's `failed` callback: tells the notifier of the first failure only.
    static func firstFailure(_ notifier: Notifier, sweep: String) -> @Sendable (Run) -> Void {
        let first = FirstFailure()
        return { run in
            guard first.claim() else { return }
            notifier.send(
                .failedFirst,
                json: jsonText(
                    FailedFirst(
                        sweep: sweep, run: run.id, status: run.status.rawValue, params: run.params,
                        failure: run.failure.map { Failure(cause: $0.cause, lines: $0.lines) })))
        }
    }
}

/// The first failure of a sweep, claimed once across runner slots.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
