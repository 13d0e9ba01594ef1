import Foundation
import HarrowCore
import Tracking

/// docs/DESIGN.md's run summary JSON, shared by `harrow runs --json`, `harrow show --json` and `harrow sweep --json`.
struct RunSummary: Encodable, Sendable {
    struct Metric: Encodable, Sendable {
        var last: Double, min: Double, max: Double, count: Int
        var minStep: Int, lastStep: Int
        enum CodingKeys: String, CodingKey { case last, min, max, count, minStep = "min_step", lastStep = "last_step" }
    }
    struct Git: Encodable, Sendable {
        @OrNull var commit: String?
        @OrNull var branch: String?
        var dirty: Bool
        @OrNull var diffSHA256: String?
        var untracked: [String]
        @OrNull var note: String?
        enum CodingKeys: String, CodingKey { case commit, branch, dirty, diffSHA256 = "diff_sha256", untracked, note }
    }
    struct Verdict: Encodable, Sendable {
        var verdict: String
        var confidence: Double
        /// The run's best step by the one rule (a diagnosis stored before it may name a smoothed step).
        @OrNull var bestStep: Int?
        var advice: String
        enum CodingKeys: String, CodingKey { case verdict, confidence, bestStep = "best_step", advice }
    }
    struct Failure: Encodable, Sendable {
        var cause: FailureCause
        var label: String
        var lines: [String]
    }
    struct Identity: Encodable, Sendable {
        @OrNull var commit: String?
        var uncommitted: [String: String]
        var programs: [String: String]
        var inputs: [String: String]
    }

    var id: String
    @OrNull var sweep: String?
    var trialKey: String
    var status: String
    var attempt: Int
    var params: [String: ParamValue]
    @OrNull var startedAt: String?
    @OrNull var endedAt: String?
    @OrNull var exitCode: Int?
    @OrNull var signal: Int?
    @OrNull var git: Git?
    var metrics: [String: Metric]
    /// Named values but losses and per-task_type groups (`scores(_:)`); null when there are none.
    @OrNull var scores: [String: Double]?
    @OrNull var verdict: Verdict?
    var source: String
    @OrNull var runDir: String?
    @OrNull var durationS: Double?
    @OrNull var paramsKey: String?
    @OrNull var earlierRun: String?
    @OrNull var failure: Failure?
    @OrNull var job: String?
    @OrNull var executor: String?
    @OrNull var identity: Identity?

    enum CodingKeys: String, CodingKey {
        case id, sweep, trialKey = "trial_key", status, attempt, params, startedAt = "started_at", endedAt = "ended_at"
        case exitCode = "exit_code", signal, git, metrics, scores, verdict, source, runDir = "run_dir", durationS = "duration_s"
        case paramsKey = "params_key", earlierRun = "earlier_run", failure, job, executor, identity
    }

    init(_ run: Run, store: Store) throws { self.init(try store.snapshot(run)) }

    init(_ snapshot: RunSnapshot) {
        let run = snapshot.run
        id = run.id
        sweep = run.sweepName
        trialKey = run.trialKey
        status = run.status.rawValue
        attempt = run.attempt
        params = run.params
        startedAt = run.startedAt.map(isoText)
        endedAt = run.endedAt.map(isoText)
        exitCode = run.exitCode.map { Int($0) }
        signal = run.signal.map { Int($0) }
        git = snapshot.provenance.map { p in
            Git(commit: p.commit, branch: p.branch, dirty: p.dirty, diffSHA256: p.diffSHA256, untracked: p.untracked, note: p.note)
        }
        metrics = snapshot.summaries.mapValues { s in
            Metric(last: s.last, min: s.min, max: s.max, count: s.count, minStep: s.minStep, lastStep: s.lastStep)
        }
        let named = Self.scores(snapshot)
        scores = named.isEmpty ? nil : named.mapValues(\.value)
        verdict = snapshot.diagnosis.map { d in
            Verdict(verdict: d.verdict, confidence: d.confidence, bestStep: snapshot.bestStep ?? d.bestStep, advice: d.advice)
        }
        source = run.source
        runDir = run.runDir
        durationS = run.duration
        paramsKey = run.paramsKey
        earlierRun = run.earlierRunID
        failure = run.failure.map { Failure(cause: $0.cause, label: $0.cause.label, lines: $0.lines) }
        job = run.job
        executor = run.executor
        identity = run.identity.map { Identity(commit: $0.commit, uncommitted: $0.uncommitted, programs: $0.programs, inputs: $0.inputs) }
    }

    /// Scores: the run's named values but for losses and per-task_type groups (`show` prints the same); a judged
    /// set's `DIMENSION/usable` and `DIMENSION/mean` are kept.
    static func scores(_ snapshot: RunSnapshot) -> [String: RunValue] {
        snapshot.values.filter { key, _ in
            let parts = key.split(separator: "/")
            let judged = parts.count == 2 && (parts[1] == "usable" || parts[1] == "mean")
            return (parts.count == 1 || key.hasPrefix("gain/") || judged) && !key.hasPrefix("val_loss")
        }
    }
}

/// Runs that did not finish, counted by cause: `2 out of memory (GPU), 1 crashed at start`; nil when every run
/// finished.
enum FailureCounts {
    static func counts(_ runs: [Run]) -> [(cause: FailureCause, count: Int)] {
        var counts: [FailureCause: Int] = [:]
        for r in runs { if let f = r.failure { counts[f.cause, default: 0] += 1 } }
        return FailureCause.allCases.compactMap { c in counts[c].map { (c, $0) } }
    }

    static func text(_ runs: [Run]) -> String? {
        let c = counts(runs)
        return c.isEmpty ? nil : c.map { "\($0.count) \($0.cause.label)" }.joined(separator: ", ")
    }
}
