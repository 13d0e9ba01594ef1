import Foundation
import Diagnosis
import Gate
import HarrowCore
import Reporting
import Sweep
import Tracking

// The `--json` of the commands that print one object or list: each a type, so its keys are named once and a
// script can rely on them (docs/DESIGN.md). Nil is written as null.

/// A paired test (`Paired`), as `compare`, `ablation` and `gate` print it.
struct PairedJSON: Encodable, Sendable {
    var test: String, n: Int, delta: Double, low: Double, high: Double
    var level = 0.95
    var p: Double, significant: Bool
    @OrNull var itemsFor80Power: Int?
    var decidable: Bool
    /// Accuracies and one-sided counts of the two runs, for tests on 0/1 outcomes (a dimension or a task type).
    var from: Double?, to: Double?, onlyFrom: Int?, onlyTo: Int?
    enum CodingKeys: String, CodingKey {
        case test, n, delta, low, high, level, p, significant, itemsFor80Power = "items_for_80_power", decidable
        case from, to, onlyFrom = "only_from", onlyTo = "only_to"
    }

    init(_ t: PairedSummary, matched: Paired.McNemar? = nil) {
        test = t.test; n = t.n; delta = t.delta; low = t.low; high = t.high; p = t.p; significant = t.significant
        itemsFor80Power = t.itemsFor80Power; decidable = t.decidable
        from = matched?.accA; to = matched?.accB; onlyFrom = matched?.onlyA; onlyTo = matched?.onlyB
    }
}

/// Every test of a pair of runs by value name (dimensions, `dimension/task_type`, total, general, forgetting).
struct EvidenceJSON: Encodable, Sendable {
    var against: String
    var tests: [String: PairedJSON]

    init(_ e: PairedEvidence, against: String) {
        self.against = against
        tests = e.byName.reduce(into: [:]) { out, entry in
            out[entry.key] = PairedJSON(entry.value, matched: e.dimensions[entry.key] ?? e.taskTypes[entry.key])
        }
    }
}

/// `harrow compare --json`.
struct CompareJSON: Encodable, Sendable {
    struct Flip: Encodable, Sendable {
        var evalset: String, item: String, dimension: String, taskType: String
        @OrNull var prompt: String?
        var change: String
        enum CodingKeys: String, CodingKey { case evalset, item, dimension, taskType = "task_type", prompt, change }
    }
    var runs: [String]
    /// Each parameter that differs, its value in each run (null where a run lacks it).
    var differingParams: [String: [ParamValue]]
    var metrics: [String: [Double?]]
    var verdicts: [String?]
    var evidence: [String: EvidenceJSON]
    var flips: [String: [Flip]]
    enum CodingKeys: String, CodingKey { case runs, differingParams = "differing_params", metrics, verdicts, evidence, flips }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(runs, forKey: .runs)
        try c.encode(differingParams, forKey: .differingParams)
        // Arrays of optionals keep their nulls: one entry a run.
        try c.encode(metrics.mapValues { $0.map(OrNull.init(wrappedValue:)) }, forKey: .metrics)
        try c.encode(verdicts.map(OrNull.init(wrappedValue:)), forKey: .verdicts)
        try c.encode(evidence, forKey: .evidence)
        try c.encode(flips, forKey: .flips)
    }
}

/// `harrow gate --json`.
struct GateJSON: Encodable, Sendable {
    struct Rule: Encodable, Sendable { var rule: String, observed: String, expected: String, passed: Bool, reason: String }
    var gate: String, run: String, passed: Bool
    @OrNull var baseline: String?
    var rules: [Rule]
}

/// `harrow check --json`.
struct CheckJSON: Encodable, Sendable {
    var ok: Bool, integrity: [String], points: Int, curvesChecked: Int, runs: [String: Int], mismatches: [String]
    enum CodingKeys: String, CodingKey { case ok, integrity, points, curvesChecked = "curves_checked", runs, mismatches }
}

/// `harrow report --json`.
struct ReportJSON: Encodable, Sendable {
    var index: String, pages: Int, charts: Int, runs: Int, seconds: Double, warnings: [String]
}

/// One run of `harrow ablation --json`: its summary, whether it is the baseline, what it changed and its evidence.
struct AblationRowJSON: Encodable, Sendable {
    struct Change: Encodable, Sendable { var name: String, from: String, to: String }
    var baseline: Bool
    var changes: [Change]
    var evidence: EvidenceJSON
}

/// One curve's diagnosis in `harrow diagnose --json`; its evidence with snake_case keys (`jsonText(_:snakeCase:)`).
struct DiagnosisJSON: Encodable, Sendable {
    var run: String, verdict: String, confidence: Double
    @OrNull var bestStep: Int?
    var advice: String
    var evidence: Evidence
}

/// One evalset's scores in `harrow eval --json`.
struct EvalJSON: Encodable, Sendable {
    struct Group: Encodable, Sendable {
        var dimension: String
        @OrNull var taskType: String?
        var n: Int, acc: Double, accStderr: Double, accNorm: Double, accNormStderr: Double
        /// A judged set: the share's Wilson interval, and a rubric dimension's mean score.
        var interval: [Double]?
        var mean: Double?, meanStderr: Double?
        enum CodingKeys: String, CodingKey {
            case dimension, taskType = "task_type", n, acc, accStderr = "acc_stderr", accNorm = "acc_norm", accNormStderr =
                "acc_norm_stderr", interval, mean, meanStderr = "mean_stderr"
        }
        init(_ g: StoredEval.Group, judged: Bool = false) {
            dimension = g.dimension; taskType = g.taskType.isEmpty ? nil : g.taskType; n = g.n
            acc = g.acc; accStderr = g.accStderr; accNorm = g.accNorm; accNormStderr = g.accNormStderr
            mean = g.mean; meanStderr = g.meanStderr
            if judged {
                let w = Paired.wilson(successes: Int((g.acc * Double(g.n)).rounded()), n: g.n)
                interval = [w.low, w.high]
            }
        }
    }
    var evalset: String, status: String
    @OrNull var total: Double?
    @OrNull var totalStderr: Double?
    @OrNull var totalNorm: Double?
    @OrNull var baseline: Double?
    @OrNull var seconds: Double?
    @OrNull var error: String?
    var dimensions: [Group]
    var taskTypes: [Group]
    /// A judged set: the judge and the rubric.
    var judge: String?
    var rubric: [StoredEval.RubricDimension]?
    enum CodingKeys: String, CodingKey {
        case evalset, status, total, totalStderr = "total_stderr", totalNorm = "total_norm", baseline, seconds, error, dimensions
        case taskTypes = "task_types", judge, rubric
    }

    init(_ e: StoredEval) {
        evalset = e.evalset; status = e.status; total = e.total; totalStderr = e.totalStderr; totalNorm = e.totalNorm
        baseline = e.baseline; seconds = e.seconds; error = e.error
        dimensions = e.groups.filter { $0.taskType.isEmpty }.map { Group($0, judged: e.isJudged) }
        taskTypes = e.groups.filter { !$0.taskType.isEmpty }.map { Group($0, judged: e.isJudged) }
        judge = e.judge
        rubric = e.rubric
    }
}

/// `harrow next --json`.
struct NextJSON: Encodable, Sendable {
    struct Best: Encodable, Sendable {
        @OrNull var value: Double?
        @OrNull var verdict: String?
        var params: [String: ParamValue]
    }
    struct Change: Encodable, Sendable {
        var parameter: String
        @OrNull var spec: String?
        var reasons: [String]
    }
    var sweep: String, metric: String, name: String
    @OrNull var file: String?
    /// Trial counts as said: `24`, `up to 40`, `open-ended`.
    var trials: String, trialsBefore: String
    @OrNull var best: Best?
    var changes: [Change]
    var text: String
    enum CodingKeys: String, CodingKey { case sweep, metric, name, file, trials, trialsBefore = "trials_before", best, changes, text }
}
