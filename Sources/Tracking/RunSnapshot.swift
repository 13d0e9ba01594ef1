import Foundation
import GRDB
import HarrowCore

/// Everything known of one run, read from the store once: what reports, gates, comparisons and run summaries
/// show. Readers take snapshots up front and render from them, never querying the store half-way.
public struct RunSnapshot: Sendable {
    public var run: Run
    public var summaries: [String: MetricSummary]
    /// Named values (`helpful`, `total`, `forgetting`, `val_loss_best`, …), as `RunValue.named` gives them.
    public var values: [String: RunValue]
    public var diagnosis: StoredDiagnosis?
    public var evals: [StoredEval]
    public var provenance: Provenance?
    /// Names given to the run (`harrow tag`).
    public var tags: [String]
    /// Its attempts, oldest first, and the files recorded with it (inputs, checkpoints).
    public var attempts: [Attempt]
    public var artifacts: [Artifact]
    /// Curves asked for when the snapshot was taken (`snapshots(_:curves:evalItems:)`), by metric key.
    public var curves: [String: (steps: [Int], values: [Double])] = [:]
    /// Evals with their items, when asked for (case analysis: flips between runs).
    public var evalItems: [StoredEval]?
    /// People's labels of the run's judged replies, when asked for (a run page's agreement with the judge).
    public var labels: [StoredLabel]?

    public var id: String { run.id }
    public var params: [String: ParamValue] { run.params }

    /// The run's best step, as the diagnosis defines it (`Diagnoser.bestStep`): the evaluated step with the lowest
    /// val loss as logged, the earliest of equals, which the val/loss summary keeps as `min_step`; without val, the
    /// step of the best checkpoint the trainer reported.
    public var bestStep: Int? { RunValue.bestStep(summaries: summaries, reported: run.bestStep) }

    /// Paired tests of the run against its starting model under value names: `gain` (the main evalset's weighted
    /// total), `gain/DIMENSION`, and `forgetting` (the general set), as stored when the run was evaluated.
    public var againstStart: [String: PairedSummary] {
        let evals = evals.filter { $0.status == "succeeded" }
        var out: [String: PairedSummary] = [:]
        if let main = evals.first(where: \.isMain) {
            for d in ValueNames.dimensions { if let t = main.vsStart[d] { out["gain/" + d] = t } }
            if let t = main.vsStart["total"] { out["gain"] = t }
        }
        if let general = evals.first(where: { $0.evalset == "general" }), let t = general.vsStart["general"] { out["forgetting"] = t }
        if let judged = evals.first(where: \.isJudged), let t = judged.vsStart["usable"] { out["gain/usable"] = t }
        return out
    }
}

extension RunSnapshot {
    /// The parameters whose values differ between runs, by name (3 and 3.0 are one value), a missing one
    /// counting as a value of its own.
    public static func differingParams(_ runs: [RunSnapshot]) -> [String] {
        let keys = Set(runs.flatMap(\.params.keys)).sorted()
        return keys.filter { k in Set(runs.map { r in r.params[k].map { $0.number.map(ParamValue.double) ?? $0 } }).count > 1 }
    }
}

extension Store {
    public func snapshot(_ run: Run) throws(StoreError) -> RunSnapshot {
        try snapshots([run])[0]
    }

    /// Snapshots of several runs, read in one transaction with one query per table (per `Store.batch` runs); with the
    /// named curves, and the eval items of the runs in `evalItems`, so that whoever renders them needs nothing more
    /// from the store.
    public func snapshots(_ runs: [Run], curves keys: Set<String> = [], evalItems: Set<Int64> = []) throws(StoreError) -> [RunSnapshot] {
        var out: [RunSnapshot] = try read { db in
            let tags = Dictionary(grouping: try Self.tags(db), by: \.run).mapValues { $0.map(\.name) }
            let rows = runs.map(\.rowID)
            let summaries = try Self.summaries(runs: rows, db: db), evals = try Self.evals(runs: rows, items: false, db: db)
            let diagnoses = try Self.diagnoses(runs: rows, db: db)
            let provenance = try Self.provenance(ids: Array(Set(runs.compactMap(\.provenanceID))), db: db)
            let attempts = Dictionary(grouping: try Self.attempts(runs: rows, db: db), by: \.run)
            let artifacts = Dictionary(grouping: try Self.artifacts(runs: rows, db: db), by: \.run)
            var starts: [String: [String: Double]] = [:]
            return try runs.map { run in
                let summaries = summaries[run.rowID] ?? [:], evals = evals[run.rowID] ?? []
                let start = try Self.startingAccuracy(evals, cache: &starts, db: db)
                let values = RunValue.named(evals: evals, summaries: summaries, start: start)
                return RunSnapshot(
                    run: run, summaries: summaries, values: values, diagnosis: diagnoses[run.rowID], evals: evals,
                    provenance: run.provenanceID.flatMap { provenance[$0] }, tags: tags[run.id] ?? [],
                    attempts: attempts[run.rowID] ?? [], artifacts: artifacts[run.rowID] ?? [])
            }
        }
        try fill(&out, curves: keys, evalItems: evalItems)
        return out
    }

    /// Adds the named curves to snapshots, and the eval items of the runs in `evalItems`, one query per table. A key
    /// ending in `*` names every key of the run that starts with the rest (`val/loss@*`: val loss per task type).
    public func fill(_ snapshots: inout [RunSnapshot], curves keys: Set<String>, evalItems: Set<Int64> = []) throws(StoreError) {
        let prefixes = keys.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
        let exact = keys.filter { !$0.hasSuffix("*") }
        let withItems = snapshots.filter { evalItems.contains($0.run.rowID) && $0.evalItems == nil }.map(\.run.rowID)
        guard !keys.isEmpty || !withItems.isEmpty else { return }
        let rows = snapshots.map(\.run.rowID)
        let (curves, items) = try read { db in
            var named = Dictionary(uniqueKeysWithValues: Set(rows).map { ($0, exact) })
            if !prefixes.isEmpty {
                for (run, keys) in try Self.metricKeys(runs: rows, db: db) {
                    named[run, default: []].formUnion(keys.filter { key in prefixes.contains(where: key.hasPrefix) })
                }
            }
            return (try Self.curves(named, db: db), try Self.evals(runs: withItems, items: true, db: db))
        }
        for i in snapshots.indices {
            let run = snapshots[i].run.rowID
            for (key, curve) in curves[run] ?? [:] where snapshots[i].curves[key] == nil { snapshots[i].curves[key] = curve }
            if withItems.contains(run), snapshots[i].evalItems == nil { snapshots[i].evalItems = items[run] ?? [] }
        }
    }
}
