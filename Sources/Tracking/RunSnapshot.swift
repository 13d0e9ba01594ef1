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
    public var attempts: [(attempt: Int, status: String, exitCode: Int32?, signal: Int32?, duration: Double?)]
    public var artifacts: [(role: String, path: String, sha256: String?, size: Int?)]

    public var id: String { run.id }
    public var params: [String: ParamValue] { run.params }
}

extension Store {
    public func snapshot(_ run: Run) throws(StoreError) -> RunSnapshot {
        try snapshots([run])[0]
    }

    /// Snapshots of several runs, the tags read once.
    public func snapshots(_ runs: [Run]) throws(StoreError) -> [RunSnapshot] {
        let tags = Dictionary(grouping: try tags(), by: \.run).mapValues { $0.map(\.name) }
        var out: [RunSnapshot] = []
        out.reserveCapacity(runs.count)
        for run in runs {
            let summaries = try summaries(run: run.rowID), evals = try evals(run: run.rowID)
            out.append(RunSnapshot(run: run, summaries: summaries, values: RunValue.named(evals: evals, summaries: summaries),
                                   diagnosis: try diagnosis(run: run.rowID), evals: evals,
                                   provenance: try run.provenanceID.flatMap { id throws(StoreError) in try provenance(id: id) },
                                   tags: tags[run.id] ?? [], attempts: try attempts(run: run.rowID), artifacts: try artifacts(run: run.rowID)))
        }
        return out
    }
}
