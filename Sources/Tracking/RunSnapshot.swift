import Foundation
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
        if let main = evals.first(where: { $0.evalset != "general" }) {
            for d in ValueNames.dimensions { if let t = main.vsStart[d] { out["gain/" + d] = t } }
            if let t = main.vsStart["total"] { out["gain"] = t }
        }
        if let general = evals.first(where: { $0.evalset == "general" }), let t = general.vsStart["general"] { out["forgetting"] = t }
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

    /// Snapshots of several runs, the tags read once; with the named curves, and the eval items of the runs in
    /// `evalItems`, so that whoever renders them needs nothing more from the store.
    public func snapshots(_ runs: [Run], curves keys: Set<String> = [], evalItems: Set<Int64> = []) throws(StoreError) -> [RunSnapshot] {
        let tags = Dictionary(grouping: try tags(), by: \.run).mapValues { $0.map(\.name) }
        var out: [RunSnapshot] = []
        out.reserveCapacity(runs.count)
        var starts: [String: [String: Double]] = [:]
        for run in runs {
            let summaries = try summaries(run: run.rowID), evals = try evals(run: run.rowID)
            let values = RunValue.named(evals: evals, summaries: summaries, start: try startingAccuracy(evals, cache: &starts))
            out.append(RunSnapshot(run: run, summaries: summaries, values: values,
                                   diagnosis: try diagnosis(run: run.rowID), evals: evals,
                                   provenance: try run.provenanceID.flatMap { id throws(StoreError) in try provenance(id: id) },
                                   tags: tags[run.id] ?? [], attempts: try attempts(run: run.rowID), artifacts: try artifacts(run: run.rowID)))
        }
        try fill(&out, curves: keys, evalItems: evalItems)
        return out
    }

    /// Adds the named curves to snapshots, and the eval items of the runs in `evalItems`. A key ending in `*` names
    /// every key of the run that starts with the rest (`val/loss@*`: val loss per task type).
    public func fill(_ snapshots: inout [RunSnapshot], curves keys: Set<String>, evalItems: Set<Int64> = []) throws(StoreError) {
        let prefixes = keys.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
        for i in snapshots.indices {
            let run = snapshots[i].run.rowID
            var named = keys.filter { !$0.hasSuffix("*") }
            if !prefixes.isEmpty {
                for key in try metricKeys(run: run) where prefixes.contains(where: key.hasPrefix) { named.insert(key) }
            }
            for key in named.sorted() where snapshots[i].curves[key] == nil {
                let c = try curve(run: run, key: key)
                if !c.steps.isEmpty { snapshots[i].curves[key] = c }
            }
            if evalItems.contains(run), snapshots[i].evalItems == nil { snapshots[i].evalItems = try evals(run: run, items: true) }
        }
    }
}
