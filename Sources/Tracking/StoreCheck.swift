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
        // Outside a transaction: on a damaged store the transaction's end would fail as well and hide the findings.
        do { result.integrity = try pool.unsafeRead { db in Self.integrity(db) } } catch { result.integrity = ["\(error)"] }
        // A store whose pages are damaged is reported, not read further: the counts below would fail on it.
        guard result.integrity == ["ok"] else { return result }
        let runs: [Run] = try read { db in
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM runs GROUP BY status") {
                if let s = RunStatus(rawValue: row["status"]) { result.runs[s] = row["n"] }
            }
            result.points = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(n), 0) FROM metric_chunks") ?? 0
            return try Run.fetchAll(
                db,
                sql: """
                    SELECT \(Run.selection) FROM \(Run.from) WHERE r.source = 'sweep' AND r.status NOT IN ('running', 'queued')
                    """)
        }
        for run in runs {
            guard let dir = run.runDir, let file = MetricsFile(path: dir + "/" + TrainerContract.RunFile.metrics) else { continue }
            result.curvesChecked += 1
            let written = file.series(upTo: run.metricsOffset)
            let stored = try Set(metricKeys(run: run.rowID)).union(written.keys)
            for key in stored.sorted() {
                let curve = try curve(run: run.rowID, key: key)
                let file = written[key] ?? MetricsBatch.Series()
                if curve.steps.count != file.steps.count {
                    result.mismatches.append(
                        "run \(run.id): \(key) has \(curve.steps.count) points stored, \(file.steps.count) in its metrics file")
                } else if let i = curve.steps.indices.first(where: {
                    curve.steps[$0] != Int(file.steps[$0]) || !same(curve.values[$0], file.values[$0])
                }) {
                    result.mismatches.append(
                        "run \(run.id): \(key) at step \(curve.steps[i]) is \(curve.values[i]) stored, "
                            + "\(file.values[i]) at step \(file.steps[i]) in its metrics file")
                }
            }
        }
        return result
    }

    /// SQLite's integrity check. On some damaged pages SQLite reports its findings and then fails the statement
    /// itself ("database disk image is malformed"): the findings read so far are kept, and the failure is one more.
    static func integrity(_ db: Database) -> [String] {
        var found: [String] = []
        do {
            let rows = try String.fetchCursor(db, sql: "PRAGMA integrity_check")
            while let row = try rows.next() { found.append(row) }
        } catch {
            found.append("\(error)")
        }
        return found
    }
}

private func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

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
            var data = try? handle.read(upToCount: Int(min(end - offset, 4 << 20))), !data.isEmpty
        {
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
