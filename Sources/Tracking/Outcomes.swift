import Foundation
import HarrowCore

/// What a paired test needs of a run: its outcome per item on the main evalset and on the general set, and the
/// same for the starting checkpoint it was trained from (kept when the runner scored that checkpoint).
public struct RunOutcomes: Sendable {
    public var main: ItemOutcomes?
    public var mainStart: ItemOutcomes?
    public var general: ItemOutcomes?
    public var generalStart: ItemOutcomes?
}

extension Store {
    /// The run's outcomes by item, as `RunValue.named` reads its scores: the main evalset is the first succeeded one
    /// other than `general`.
    public func outcomes(of run: Run) throws(StoreError) -> RunOutcomes {
        let evals = try evals(run: run.rowID, items: true).filter { $0.status == "succeeded" }
        func outcomes(_ items: [StoredEval.Item], _ e: StoredEval) -> ItemOutcomes? {
            items.isEmpty ? nil : ItemOutcomes(items.map { ($0.id, $0.dimension, $0.taskType, $0.correct) }, weights: e.weights ?? [:])
        }
        func start(_ e: StoredEval?) throws(StoreError) -> ItemOutcomes? {
            guard let e, let checkpoint = e.baselineCheckpoint else { return nil }
            return outcomes(try checkpointItems(checkpoint, evalset: e.evalset), e)
        }
        let main = evals.first { $0.evalset != "general" }, general = evals.first { $0.evalset == "general" }
        return RunOutcomes(main: main.flatMap { outcomes($0.items, $0) }, mainStart: try start(main),
                           general: general.flatMap { outcomes($0.items, $0) }, generalStart: try start(general))
    }
}
