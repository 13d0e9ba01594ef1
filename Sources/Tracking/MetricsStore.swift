import Foundation
import GRDB

/// New lines of one run's metrics file, read from its stored offset.
public struct MetricsUpdate: Sendable {
    public var run: Int64
    /// The byte offset after the lines in `batch`: stored in the same transaction, so a restarted harrow
    /// neither reads a line twice nor skips one.
    public var offset: Int64
    public var batch: MetricsBatch
    public var heartbeat: Date?

    public init(run: Int64, offset: Int64, batch: MetricsBatch, heartbeat: Date? = nil) {
        self.run = run
        self.offset = offset
        self.batch = batch
        self.heartbeat = heartbeat
    }
}

/// Per-run, per-metric aggregates kept up to date on ingestion, so "best of 10,000 runs" is an index scan.
public struct MetricSummary: Sendable, Equatable, Decodable, FetchableRecord {
    public var count: Int
    public var last: Double
    public var lastStep: Int
    public var min: Double
    public var minStep: Int
    public var max: Double

    /// The columns of `metric_summaries` a summary is read from, each named once.
    public enum Columns: String, CodingKey, ColumnExpression, CaseIterable, Sendable {
        case count, last, lastStep = "last_step", min, minStep = "min_step", max
    }
    typealias CodingKeys = Columns

    /// Its columns in a select list, from the table under `alias`.
    static func selection(from alias: String) -> String {
        Columns.allCases.map { "\(alias).\($0.name)" }.joined(separator: ", ")
    }
}

extension Store {
    static let chunkCapacity = 320
    static let pointSize = 12

    /// Writes a batch of metrics for any number of runs in one transaction.
    public func ingest(_ updates: [MetricsUpdate]) throws(StoreError) {
        guard !updates.isEmpty else { return }
        try write { db in
            var keyIDs: [String: Int64] = [:]
            for update in updates {
                for (name, series) in update.batch.series where !series.steps.isEmpty {
                    let key = try Self.keyID(name, db: db, cache: &keyIDs)
                    try Self.append(series, run: update.run, key: key, db: db)
                    try Self.summarise(series, run: update.run, key: key, db: db)
                }
                let b = update.batch
                // What the batch says replaces what the run had; what it does not say stays.
                let said: [(Run.Columns, (any DatabaseValueConvertible)?)] = [
                    (.heartbeat, update.heartbeat?.seconds), (.totalSteps, b.totalSteps), (.stepsPerEpoch, b.stepsPerEpoch),
                    (.warmupSteps, b.warmupSteps), (.checkpoint, b.checkpoint), (.bestCheckpoint, b.bestCheckpoint),
                    (.bestStep, b.bestStep)
                ]
                try Run.filter { $0.rowID == update.run }.updateAll(
                    db,
                    [
                        Run.Columns.metricsOffset.set(to: update.offset), Run.Columns.malformedLines += b.malformed,
                        Run.Columns.nonfiniteValues += b.nonfinite
                    ] + said.compactMap { column, value in value.map { column.set(to: $0) } })
            }
        }
    }

    static func keyID(_ name: String, db: Database, cache: inout [String: Int64]) throws -> Int64 {
        if let id = cache[name] { return id }
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO metric_keys(name) VALUES (?)").execute(arguments: [name])
        let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM metric_keys WHERE name = ?"), arguments: [name])!
        cache[name] = id
        return id
    }

    /// Fills the run's last chunk for this key, then adds full chunks.
    static func append(_ series: MetricsBatch.Series, run: Int64, key: Int64, db: Database) throws {
        var from = 0
        var seq = 0
        if let tail = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT seq, n FROM metric_chunks WHERE run = ? AND key = ? ORDER BY seq DESC LIMIT 1"),
            arguments: [run, key])
        {
            seq = tail["seq"]
            let n: Int = tail["n"]
            let room = min(chunkCapacity - n, series.steps.count)
            if room > 0 {
                try db.cachedStatement(sql: "UPDATE metric_chunks SET data = data || ?, n = n + ? WHERE run = ? AND key = ? AND seq = ?")
                    .execute(arguments: [pack(series, 0..<room), room, run, key, seq])
                from = room
            }
            seq += 1
        }
        let insert = try db.cachedStatement(sql: "INSERT INTO metric_chunks(run, key, seq, n, data) VALUES (?, ?, ?, ?, ?)")
        while from < series.steps.count {
            let to = min(from + chunkCapacity, series.steps.count)
            try insert.execute(arguments: [run, key, seq, to - from, pack(series, from..<to)])
            seq += 1
            from = to
        }
    }

    static func pack(_ series: MetricsBatch.Series, _ range: Range<Int>) -> Data {
        var data = Data(count: range.count * pointSize)
        data.withUnsafeMutableBytes { raw in
            for (j, i) in range.enumerated() {
                raw.storeBytes(of: series.steps[i].littleEndian, toByteOffset: j * pointSize, as: Int32.self)
                raw.storeBytes(of: series.values[i].bitPattern.littleEndian, toByteOffset: j * pointSize + 4, as: UInt64.self)
            }
        }
        return data
    }

    static func summarise(_ series: MetricsBatch.Series, run: Int64, key: Int64, db: Database) throws {
        var s: MetricSummary
        var start = 0
        if let stored = try MetricSummary.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT \(MetricSummary.selection(from: "metric_summaries")) FROM metric_summaries WHERE run = ? AND key = ?
                    """), arguments: [run, key])
        {
            s = stored
        } else {
            s = MetricSummary(
                count: 1, last: series.values[0], lastStep: Int(series.steps[0]), min: series.values[0],
                minStep: Int(series.steps[0]), max: series.values[0])
            start = 1
        }
        for i in start..<series.steps.count {
            let v = series.values[i], step = Int(series.steps[i])
            s.count += 1
            s.last = v
            s.lastStep = step
            if v < s.min { s.min = v; s.minStep = step }
            if v > s.max { s.max = v }
        }
        try db.cachedStatement(
            sql:
                "INSERT OR REPLACE INTO metric_summaries(run, key, count, last, last_step, min, min_step, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        .execute(arguments: [run, key, s.count, s.last, s.lastStep, s.min, s.minStep, s.max])
    }

    /// A run's curve for one metric, in the order the points were written.
    public func curve(run: Int64, key: String) throws(StoreError) -> (steps: [Int], values: [Double]) {
        try read { db in
            var steps: [Int] = [], values: [Double] = []
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT c.n, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key
                        WHERE c.run = ? AND k.name = ? ORDER BY c.seq
                        """), arguments: [run, key])
            while let row = try rows.next() { Self.unpack(row, into: &steps, &values) }
            return (steps, values)
        }
    }

    /// Appends the points of a chunk row (`n`, `data`) to a curve.
    static func unpack(_ row: Row, into steps: inout [Int], _ values: inout [Double]) {
        let n: Int = row["n"]
        let data: Data = row["data"]
        steps.reserveCapacity(steps.count + n)
        values.reserveCapacity(values.count + n)
        data.withUnsafeBytes { raw in
            for j in 0..<n {
                let at = j * pointSize
                steps.append(Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self))))
                values.append(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt64.self))))
            }
        }
    }

    /// The named curves of several runs, by run row and key; a curve without points is left out.
    static func curves(_ keys: [Int64: Set<String>], db: Database) throws -> [Int64: [String: (steps: [Int], values: [Double])]] {
        var out: [Int64: [String: (steps: [Int], values: [Double])]] = [:]
        // Rows come curve by curve; each curve is kept when the next begins.
        var curve: (run: Int64, name: String)?, steps: [Int] = [], values: [Double] = []
        func keep() {
            if let curve, !steps.isEmpty { out[curve.run, default: [:]][curve.name] = (steps, values) }
            steps = []
            values = []
        }
        for runs in keys.filter({ !$0.value.isEmpty }).keys.sorted().chunked(Self.batch) {
            let names = Set(runs.flatMap { keys[$0]! })
            let rows = try Row.fetchCursor(
                db,
                SQLRequest(
                    literal: """
                        SELECT c.run, k.name, c.n, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key
                        WHERE c.run IN \(runs) AND k.name IN \(names) ORDER BY c.run, k.name, c.seq
                        """))
            while let row = try rows.next() {
                let run: Int64 = row["run"], name: String = row["name"]
                guard keys[run]!.contains(name) else { continue }
                if curve?.run != run || curve?.name != name {
                    keep()
                    curve = (run, name)
                }
                unpack(row, into: &steps, &values)
            }
        }
        keep()
        return out
    }

    /// The metric names a run has.
    public func metricKeys(run: Int64) throws(StoreError) -> [String] {
        try read { db in try Self.metricKeys(runs: [run], db: db)[run] ?? [] }
    }

    /// The metric names of several runs, by run row, each run's sorted.
    static func metricKeys(runs: [Int64], db: Database) throws -> [Int64: [String]] {
        var out: [Int64: [String]] = [:]
        for runs in runs.chunked(Self.batch) {
            for row in try Row.fetchAll(
                db,
                SQLRequest(
                    literal: """
                        SELECT s.run, k.name FROM metric_summaries s JOIN metric_keys k ON k.id = s.key
                        WHERE s.run IN \(runs) ORDER BY s.run, k.name
                        """))
            {
                out[row["run"], default: []].append(row["name"])
            }
        }
        return out
    }

    public func summaries(run: Int64) throws(StoreError) -> [String: MetricSummary] {
        try read { db in try Self.summaries(runs: [run], db: db)[run] ?? [:] }
    }

    /// The metric summaries of several runs, by run row and metric name.
    static func summaries(runs: [Int64], db: Database) throws -> [Int64: [String: MetricSummary]] {
        var out: [Int64: [String: MetricSummary]] = [:]
        for runs in runs.chunked(Self.batch) {
            for row in try Row.fetchAll(
                db,
                SQLRequest(
                    literal: """
                        SELECT s.run, k.name, \(sql: MetricSummary.selection(from: "s"))
                        FROM metric_summaries s JOIN metric_keys k ON k.id = s.key WHERE s.run IN \(runs)
                        """))
            {
                out[row["run"], default: [:]][row["name"]] = try MetricSummary(row: row)
            }
        }
        return out
    }

    /// Forgets a run's points (a new attempt starts its curves afresh).
    func clearMetrics(run: Int64, db: Database) throws {
        try db.execute(sql: "DELETE FROM metric_chunks WHERE run = ?", arguments: [run])
        try db.execute(sql: "DELETE FROM metric_summaries WHERE run = ?", arguments: [run])
        try Run.filter { $0.rowID == run }.updateAll(db) {
            [$0.metricsOffset.set(to: 0), $0.malformedLines.set(to: 0), $0.nonfiniteValues.set(to: 0)]
        }
    }
}

extension Store {
    /// The lowest and highest value of one metric for every run of a sweep that logged it, by run row.
    public func metricRanges(sweep: String, key: String) throws(StoreError) -> [Int64: (min: Double, max: Double)] {
        try read { db in
            var out: [Int64: (min: Double, max: Double)] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT s.run, s.min, s.max FROM metric_summaries s JOIN metric_keys k ON k.id = s.key
                    JOIN sweep_trials t ON t.run = s.run JOIN sweeps w ON w.id = t.sweep_id
                    WHERE w.name = ? AND k.name = ?
                    """, arguments: [sweep, key])
            {
                out[row["run"]] = (row["min"], row["max"])
            }
            return out
        }
    }
}
