import Foundation
import GRDB
import HarrowCore

/// A named value of a run with its standard error.
public typealias RunValue = Estimate

extension RunValue {
    /// A run's values under the names gates, comparisons and reports share: `helpful`, `honest`, `harmless`
    /// and `DIMENSION/TASK_TYPE` from the main evalset, `total`, `general` and `forgetting` (general − its
    /// starting checkpoint's score), `gain` and `gain/DIMENSION` (the main evalset's total and dimensions − the
    /// starting checkpoint's, given its accuracy per dimension in `start`), `val_loss_best` (val loss at the run's best
    /// step, `bestStep(summaries:reported:)`) and `val_loss_final`.
    /// Unsucceeded evals count for nothing. A gain's or forgetting's significance is a paired test's
    /// (`PairedEvidence`), not these values'.
    public static func named(evals: [StoredEval], summaries: [String: MetricSummary], start: [String: Double] = [:]) -> [String: RunValue] {
        var values: [String: RunValue] = [:]
        let evals = evals.filter { $0.status == "succeeded" }
        if let main = evals.first(where: \.isMain) {
            for g in main.groups {
                values[g.taskType.isEmpty ? g.dimension : "\(g.dimension)/\(g.taskType)"] = RunValue(g.acc, stderr: g.accStderr)
            }
            if let t = main.total { values["total"] = RunValue(t, stderr: main.totalStderr ?? 0) }
            if let t = main.total, let b = main.baseline { values["gain"] = RunValue(t - b, stderr: main.totalStderr ?? 0) }
            for g in main.groups where g.taskType.isEmpty {
                if let b = start[g.dimension] { values["gain/\(g.dimension)"] = RunValue(g.acc - b, stderr: g.accStderr) }
            }
        }
        if let general = evals.first(where: { $0.evalset == "general" }), let t = general.total {
            values["general"] = RunValue(t, stderr: general.totalStderr ?? 0)
            if let b = general.baseline { values["forgetting"] = RunValue(t - b, stderr: general.totalStderr ?? 0) }
        }
        for judged in evals where judged.isJudged {
            for (name, value) in judgedValues(judged) where values[name] == nil { values[name] = value }
        }
        if let v = summaries[TrainerContract.Metric.valLoss] {
            values["val_loss_best"] = RunValue(v.min)
            values["val_loss_final"] = RunValue(v.last)
        }
        return values
    }
}

extension RunValue {
    /// A judged set's values: `usable` and `usable/TASK_TYPE` (the usability rate), `DIMENSION/usable` (the share at or
    /// above the dimension's threshold) and `DIMENSION/mean`, per task type as `DIMENSION/usable/TASK_TYPE`; with the
    /// starting model's usability kept, `gain/usable`.
    static func judgedValues(_ e: StoredEval) -> [String: RunValue] {
        var values: [String: RunValue] = [:]
        for g in e.groups {
            let facet = g.dimension == "usable" ? "usable" : "\(g.dimension)/usable"
            values[g.taskType.isEmpty ? facet : "\(facet)/\(g.taskType)"] = RunValue(g.acc, stderr: g.accStderr)
            if let mean = g.mean, g.taskType.isEmpty { values["\(g.dimension)/mean"] = RunValue(mean, stderr: g.meanStderr ?? 0) }
        }
        if let t = e.total, let b = e.baseline { values["gain/usable"] = RunValue(t - b, stderr: e.totalStderr ?? 0) }
        return values
    }
}

extension StoredEval {
    /// What the starting checkpoint's score on this evalset is kept under: the evalset, and for a judged set its judge
    /// too (another judge's scores of the same replies are another result).
    public static func startKey(evalset: String, judge: String?) -> String {
        judge.map { "\(evalset) judged by \($0)" } ?? evalset
    }

    public var startKey: String { Self.startKey(evalset: evalset, judge: isJudged ? judge : nil) }

    /// The evalset whose dimensions are a run's `helpful`, `honest`, `harmless` and `total`: not the general set, not a
    /// judged one.
    public var isMain: Bool { evalset != "general" && !isJudged }
}

extension RunValue {
    /// The best step of a run from its metric summaries: val/loss's `min_step` (the summary replaces its minimum
    /// only by a lower value, so equal ones keep the earliest), the same step `Diagnoser.bestStep` reads off the
    /// curve; without val, the trainer's reported `best_step`. `val_loss_best` is the val loss there.
    public static func bestStep(summaries: [String: MetricSummary], reported: Int?) -> Int? {
        summaries[TrainerContract.Metric.valLoss]?.minStep ?? reported
    }
}

extension Store {
    /// The run's named values (`RunValue.named`), read from the store.
    public func values(of run: Run) throws(StoreError) -> [String: RunValue] {
        let evals = try evals(run: run.rowID)
        return RunValue.named(evals: evals, summaries: try summaries(run: run.rowID), start: try startingAccuracy(evals))
    }

    /// The starting checkpoint's accuracy per dimension on the run's main evalset, from its kept items (empty when
    /// none were kept). `cache` holds it by checkpoint across runs.
    public func startingAccuracy(_ evals: [StoredEval], cache: inout [String: [String: Double]]) throws(StoreError) -> [String: Double] {
        try read { db in try Self.startingAccuracy(evals, cache: &cache, db: db) }
    }

    static func startingAccuracy(_ evals: [StoredEval], cache: inout [String: [String: Double]], db: Database) throws -> [String: Double] {
        guard let main = evals.first(where: { $0.status == "succeeded" && $0.isMain }),
            let checkpoint = main.baselineCheckpoint
        else { return [:] }
        let key = checkpoint + "/" + main.evalset
        if let known = cache[key] { return known }
        let items = try checkpointItems(checkpoint, evalset: main.evalset, db: db)
        let accuracy = Dictionary(grouping: items, by: \.dimension).mapValues { Double($0.filter(\.correct).count) / Double($0.count) }
        cache[key] = accuracy
        return accuracy
    }

    public func startingAccuracy(_ evals: [StoredEval]) throws(StoreError) -> [String: Double] {
        var cache: [String: [String: Double]] = [:]
        return try startingAccuracy(evals, cache: &cache)
    }
}
