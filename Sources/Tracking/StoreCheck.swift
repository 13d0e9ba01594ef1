import Foundation
import GRDB
import HarrowCore

/// What `harrow check` found: SQLite's own integrity check, what the store holds, and every stored curve
/// compared point for point with the `metrics.jsonl` it was read from.
public struct StoreCheck: Sendable {
    /// `["ok"]`, or SQLite's list of problems.
    public var integrity: [String] = []
    public var runs: [RunStatus: Int] = [:]
    public var points = 0
    /// Runs whose curves were compared with their metrics files.
    public var curvesChecked = 0
    /// "run X: val/loss has 10 points stored, 12 in its metrics file", and the like.
    public var mismatches: [String] = []

    public var ok: Bool { integrity == ["ok"] && mismatches.isEmpty }
}

extension Store {
    public func check() throws(StoreError) -> StoreCheck {
        var result = StoreCheck()
        let runs: [Run] = try read { db in
            result.integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM runs GROUP BY status") {
                if let s = RunStatus(rawValue: row["status"]) { result.runs[s] = row["n"] }
            }
            result.points = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(n), 0) FROM metric_chunks") ?? 0
            return try Row.fetchAll(db, sql: "SELECT \(Run.columns) FROM \(Run.from) WHERE r.source = 'sweep' AND r.status NOT IN ('running', 'queued')")
                .map(Run.init(row:))
        }
        for run in runs {
            guard let dir = run.runDir, let file = MetricsFile(path: dir + "/" + TrainerContract.RunFile.metrics) else { continue }
            result.curvesChecked += 1
            let written = file.series(upTo: run.metricsOffset)
            let stored = try Set(metricKeys(run: run.rowID)).union(written.keys)
            for key in stored.sorted() {
                let curve = try curve(run: run.rowID, key: key)
                let file = written[key] ?? MetricsBatch.Series()
                if curve.steps != file.steps.map(Int.init) || curve.values != file.values {
                    result.mismatches.append("run \(run.id): \(key) has \(curve.steps.count) points stored, \(file.steps.count) in its metrics file")
                }
            }
        }
        return result
    }
}

/// A metrics file read back as the runner read it: up to the stored offset, in bounded slices, with a last
/// line lacking its newline counted.
struct MetricsFile {
    let handle: FileHandle

    init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        self.handle = handle
    }

    func series(upTo end: Int64) -> [String: MetricsBatch.Series] {
        defer { try? handle.close() }
        var out: [String: MetricsBatch.Series] = [:]
        var offset: Int64 = 0
        while offset < end, (try? handle.seek(toOffset: UInt64(offset))) != nil,
              var data = try? handle.read(upToCount: Int(min(end - offset, 4 << 20))), !data.isEmpty {
            let length = data.count
            if offset + Int64(length) == end, data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
            let batch = MetricsLines.parse(data)
            for (key, s) in batch.series {
                out[key, default: MetricsBatch.Series()].steps += s.steps
                out[key, default: MetricsBatch.Series()].values += s.values
            }
            // A slice with no line end is part of a line the runner skipped as too long.
            offset += batch.consumed == 0 ? Int64(length) : min(Int64(batch.consumed), Int64(length))
        }
        return out
    }
}
