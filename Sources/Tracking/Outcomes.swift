import Foundation
import HarrowCore

/// What a paired test needs of a run: its outcome per item on the main evalset and on the general set, and the
/// same for the starting checkpoint it was trained from (kept when the runner scored that checkpoint).
public struct RunOutcomes: Sendable {
    public var main: ItemOutcomes?
    public var mainStart: ItemOutcomes?
    public var general: ItemOutcomes?
    public var generalStart: ItemOutcomes?
    /// A judged set's replies, one outcome per reply and facet (`ItemOutcomes(judged:)`), and the starting model's.
    public var judged: ItemOutcomes?
    public var judgedStart: ItemOutcomes?
}

extension Store {
    /// The run's outcomes by item, as `RunValue.named` reads its scores: the main evalset is the first succeeded one
    /// other than `general`.
    public func outcomes(of run: Run) throws(StoreError) -> RunOutcomes {
        let evals = try evals(run: run.rowID, items: true).filter { $0.status == "succeeded" }
        func start(_ e: StoredEval?) throws(StoreError) -> ItemOutcomes? {
            guard let e, let checkpoint = e.baselineCheckpoint else { return nil }
            let items = try checkpointItems(checkpoint, evalset: e.startKey)
            return e.isJudged ? ItemOutcomes(judged: items, of: e) : ItemOutcomes(items, of: e)
        }
        let main = evals.first(where: \.isMain), general = evals.first { $0.evalset == "general" }
        let judged = evals.first(where: \.isJudged)
        return RunOutcomes(
            main: main.flatMap { ItemOutcomes($0.items, of: $0) }, mainStart: try start(main),
            general: general.flatMap { ItemOutcomes($0.items, of: $0) }, generalStart: try start(general),
            judged: judged.flatMap { ItemOutcomes(judged: $0.items, of: $0) }, judgedStart: try start(judged))
    }
}

extension ItemOutcomes {
    /// Stored items of an evaluation, with its evalset's weights; nil when there are none.
    public init?(_ items: [StoredEval.Item], of e: StoredEval) {
        guard !items.isEmpty else { return nil }
        self.init(items.map { ($0.id, $0.dimension, $0.taskType, $0.correct) }, weights: e.weights ?? [:])
    }
}

extension ItemOutcomes {
    /// A judged set's replies as outcomes under value names: `usable`, and `DIMENSION/usable` (the score at or above
    /// the rubric's threshold) for each reply with scores. A starting model's kept items (usable only) give `usable`.
    public init?(judged items: [StoredEval.Item], of e: StoredEval) {
        guard !items.isEmpty else { return nil }
        var facets: [(id: String, dimension: String, taskType: String, correct: Bool)] = items.map {
            ("usable:" + $0.id, "usable", $0.taskType, $0.correct)
        }
        for d in e.rubric ?? [] {
            facets += items.compactMap { i in
                i.scores?[d.name].map { ("\(d.name):\(i.id)", "\(d.name)/usable", i.taskType, $0 >= d.threshold) }
            }
        }
        self.init(facets)
    }
}

extension PairedEvidence {
    /// Run B against run A, each with its starting models' items for the forgetting comparison.
    public static func between(_ a: RunOutcomes, _ b: RunOutcomes) -> PairedEvidence {
        var e = compare(
            mainA: a.main, mainB: b.main, generalA: a.general, generalB: b.general,
            generalStartA: a.generalStart, generalStartB: b.generalStart)
        e.addJudged(from: a.judged, to: b.judged)
        return e
    }

    /// A run against the model it started from.
    public static func start(_ o: RunOutcomes) -> PairedEvidence {
        var e = start(main: o.main, mainStart: o.mainStart, general: o.general, generalStart: o.generalStart)
        e.addJudged(from: o.judgedStart, to: o.judged)
        return e
    }
}
