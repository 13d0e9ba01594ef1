import Foundation
import HarrowCore

/// A named value of a run with its standard error.
public typealias RunValue = Estimate

extension RunValue {
    /// A run's values under the names gates, comparisons and reports share: `helpful`, `honest`, `harmless`
    /// and `DIMENSION/TASK_TYPE` from the main evalset, `total`, `general` and `forgetting` (general − its
    /// starting checkpoint's score), `val_loss_best` and `val_loss_final`. Unsucceeded evals count for nothing.
    public static func named(evals: [StoredEval], summaries: [String: MetricSummary]) -> [String: RunValue] {
        var values: [String: RunValue] = [:]
        let evals = evals.filter { $0.status == "succeeded" }
        if let main = evals.first(where: { $0.evalset != "general" }) {
            for g in main.groups {
                values[g.taskType.isEmpty ? g.dimension : "\(g.dimension)/\(g.taskType)"] = RunValue(g.acc, stderr: g.accStderr)
            }
            if let t = main.total { values["total"] = RunValue(t, stderr: main.totalStderr ?? 0) }
        }
        if let general = evals.first(where: { $0.evalset == "general" }), let t = general.total {
            values["general"] = RunValue(t, stderr: general.totalStderr ?? 0)
            if let b = general.baseline { values["forgetting"] = RunValue(t - b, stderr: general.totalStderr ?? 0) }
        }
        if let v = summaries[TrainerContract.Metric.valLoss] {
            values["val_loss_best"] = RunValue(v.min)
            values["val_loss_final"] = RunValue(v.last)
        }
        return values
    }
}

extension Store {
    /// The run's named values (`RunValue.named`), read from the store.
    public func values(of run: Run) throws(StoreError) -> [String: RunValue] {
        RunValue.named(evals: try evals(run: run.rowID), summaries: try summaries(run: run.rowID))
    }
}
