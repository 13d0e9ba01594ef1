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
        func start(_ e: StoredEval?) throws(StoreError) -> ItemOutcomes? {
            guard let e, let checkpoint = e.baselineCheckpoint else { return nil }
            return ItemOutcomes(try checkpointItems(checkpoint, evalset: e.evalset), of: e)
        }
        let main = evals.first(where: \.isMain), general = evals.first { $0.evalset == "general" }
        return RunOutcomes(
            main: main.flatMap { ItemOutcomes($0.items, of: $0) }, mainStart: try start(main),
            general: general.flatMap { ItemOutcomes($0.items, of: $0) }, generalStart: try start(general))
    }
}

extension ItemOutcomes {
    /// Stored items of an evaluation, with its evalset's weights; nil when there are none.
    public init?(_ items: [StoredEval.Item], of e: StoredEval) {
        guard !items.isEmpty else { return nil }
        self.init(items.map { ($0.id, $0.dimension, $0.taskType, $0.correct) }, weights: e.weights ?? [:])
    }
}

extension PairedEvidence {
    /// Run B against run A, each with its starting models' items for the forgetting comparison.
    public static func between(_ a: RunOutcomes, _ b: RunOutcomes) -> PairedEvidence {
        compare(
            mainA: a.main, mainB: b.main, generalA: a.general, generalB: b.general,
            generalStartA: a.generalStart, generalStartB: b.generalStart)
    }

    /// A run against the model it started from.
    public static func start(_ o: RunOutcomes) -> PairedEvidence {
        start(main: o.main, mainStart: o.mainStart, general: o.general, generalStart: o.generalStart)
    }
}
