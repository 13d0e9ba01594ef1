import Foundation
import GRDB
import HarrowCore

/// An evaluation of one run on one evalset, as stored (the Evaluation module computes it).
public struct StoredEval: Sendable {
    public struct Group: Sendable, Equatable {
        public var dimension: String
        /// Empty for the whole dimension.
        public var taskType: String
        public var n: Int
        public var acc: Double
        public var accStderr: Double
        public var accNorm: Double
        public var accNormStderr: Double

        public init(dimension: String, taskType: String, n: Int, acc: Double, accStderr: Double, accNorm: Double, accNormStderr: Double) {
            self.dimension = dimension
            self.taskType = taskType
            self.n = n
            self.acc = acc
            self.accStderr = accStderr
            self.accNorm = accNorm
            self.accNormStderr = accNormStderr
        }
    }

    public struct Item: Sendable, Equatable {
        public var id: String
        public var dimension: String
        public var taskType: String
        public var correct: Bool
        public var correctNorm: Bool
        public var chosen: Int?
        public var logprobs: [Double]?
        public var text: String?
        public var prompt: String?

        public init(id: String, dimension: String, taskType: String, correct: Bool, correctNorm: Bool, chosen: Int?, logprobs: [Double]?, text: String?,
                    prompt: String? = nil) {
            self.prompt = prompt
            self.id = id
            self.dimension = dimension
            self.taskType = taskType
            self.correct = correct
            self.correctNorm = correctNorm
            self.chosen = chosen
            self.logprobs = logprobs
            self.text = text
        }
    }

    public var evalset: String
    public var status: String
    public var total: Double?
    public var totalStderr: Double?
    public var totalNorm: Double?
    /// The starting checkpoint's total on the same evalset: `total − baseline` is what training changed
    /// (for the general set, negative is forgetting).
    public var baseline: Double?
    /// The sha256 of the starting checkpoint's weights that `baseline` was scored on (its items are kept by it).
    public var baselineCheckpoint: String?
    /// The evalset's weight per dimension (none stored: each dimension weighs 1).
    public var weights: [String: Double]?
    /// Paired tests of the run against its starting checkpoint on this evalset, by dimension, `dimension/task_type`
    /// and `total`: what training changed beyond noise (empty when the checkpoint's items were not kept).
    public var vsStart: [String: PairedSummary] = [:]
    public var seconds: Double?
    public var error: String?
    public var groups: [Group]
    public var items: [Item]

    public init(evalset: String, status: String, total: Double?, totalStderr: Double?, totalNorm: Double?, baseline: Double? = nil,
                seconds: Double?, error: String?, groups: [Group], items: [Item]) {
        self.baseline = baseline
        self.evalset = evalset
        self.status = status
        self.total = total
        self.totalStderr = totalStderr
        self.totalNorm = totalNorm
        self.seconds = seconds
        self.error = error
        self.groups = groups
        self.items = items
    }
}

extension Store {
    /// Names a run; a name moves when given again.
    public func tag(run: Int64, as name: String) throws(StoreError) {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO tags(name, run, created_at) VALUES (?, ?, ?)", arguments: [name, run, Date().seconds])
        }
    }

    /// Removes a name; false if there was none.
    public func untag(_ name: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM tags WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    public func tags() throws(StoreError) -> [(name: String, run: String)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT t.name, r.id FROM tags t JOIN runs r ON r.rowid = t.run ORDER BY t.name").map { ($0["name"], $0["id"]) }
        }
    }

    /// Replaces a run's results on an evalset.
    public func save(_ e: StoredEval, run: Int64) throws(StoreError) {
        try write { db in
            for table in ["eval_runs", "evals", "eval_items"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE run = ? AND evalset = ?", arguments: [run, e.evalset])
            }
            try db.execute(sql: """
                INSERT INTO eval_runs(run, evalset, status, total, total_stderr, total_norm, baseline, seconds, error, scored_at,
                                      baseline_checkpoint, weights, vs_start)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run, e.evalset, e.status, e.total, e.totalStderr, e.totalNorm, e.baseline, e.seconds, e.error, Date().seconds,
                                 e.baselineCheckpoint, e.weights.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) },
                                 e.vsStart.isEmpty ? nil : try? String(decoding: JSONEncoder().encode(e.vsStart), as: UTF8.self)])
            let g = try db.makeStatement(sql: "INSERT INTO evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for x in e.groups {
                try g.execute(arguments: [run, e.evalset, x.dimension, x.taskType, x.n, x.acc, x.accStderr, x.accNorm, x.accNormStderr])
            }
            let i = try db.makeStatement(sql: "INSERT INTO eval_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for x in e.items {
                let lp = x.logprobs.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }
                try i.execute(arguments: [run, e.evalset, x.id, x.dimension, x.taskType, x.correct, x.correctNorm, x.chosen, lp, x.text, x.prompt])
            }
        }
    }

    /// A run's evaluations (totals and groups; items with `items: true`).
    public func evals(run: Int64, items withItems: Bool = false) throws(StoreError) -> [StoredEval] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM eval_runs WHERE run = ? ORDER BY evalset", arguments: [run]).map { r in
                let evalset: String = r["evalset"]
                let groups = try Row.fetchAll(db, sql: "SELECT * FROM evals WHERE run = ? AND evalset = ? ORDER BY dimension, task_type",
                                              arguments: [run, evalset]).map {
                    StoredEval.Group(dimension: $0["dimension"], taskType: $0["task_type"], n: $0["n"], acc: $0["acc"], accStderr: $0["acc_stderr"],
                                     accNorm: $0["acc_norm"], accNormStderr: $0["acc_norm_stderr"])
                }
                let items = withItems ? try Row.fetchAll(db, sql: "SELECT * FROM eval_items WHERE run = ? AND evalset = ? ORDER BY item",
                                                         arguments: [run, evalset]).map { x -> StoredEval.Item in
                    let lp: String? = x["logprobs"]
                    return StoredEval.Item(id: x["item"], dimension: x["dimension"], taskType: x["task_type"], correct: x["correct"],
                                           correctNorm: x["correct_norm"], chosen: x["chosen"],
                                           logprobs: lp.flatMap { try? JSONDecoder().decode([Double].self, from: Data($0.utf8)) }, text: x["text"],
                                           prompt: x["prompt"])
                } : []
                var e = StoredEval(evalset: evalset, status: r["status"], total: r["total"], totalStderr: r["total_stderr"], totalNorm: r["total_norm"],
                                   baseline: r["baseline"], seconds: r["seconds"], error: r["error"], groups: groups, items: items)
                e.baselineCheckpoint = r["baseline_checkpoint"]
                e.weights = (r["weights"] as String?).flatMap { try? JSONDecoder().decode([String: Double].self, from: Data($0.utf8)) }
                e.vsStart = (r["vs_start"] as String?).flatMap { try? JSONDecoder().decode([String: PairedSummary].self, from: Data($0.utf8)) } ?? [:]
                return e
            }
        }
    }

    public func checkpointScore(_ checkpoint: String, evalset: String) throws(StoreError) -> Double? {
        try read { db in
            try Double.fetchOne(db, sql: "SELECT total FROM checkpoint_scores WHERE checkpoint = ? AND evalset = ?", arguments: [checkpoint, evalset])
        }
    }

    /// A starting checkpoint's total and its outcome per item (for paired tests against the runs it started).
    public func saveCheckpointScore(_ checkpoint: String, evalset: String, total: Double, items: [StoredEval.Item] = []) throws(StoreError) {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO checkpoint_scores VALUES (?, ?, ?, ?)", arguments: [checkpoint, evalset, total, Date().seconds])
            try db.execute(sql: "DELETE FROM checkpoint_items WHERE checkpoint = ? AND evalset = ?", arguments: [checkpoint, evalset])
            let i = try db.makeStatement(sql: "INSERT INTO checkpoint_items VALUES (?, ?, ?, ?, ?, ?)")
            for x in items { try i.execute(arguments: [checkpoint, evalset, x.id, x.dimension, x.taskType, x.correct]) }
        }
    }

    /// A starting checkpoint's outcome per item on an evalset (empty when only its total was kept).
    public func checkpointItems(_ checkpoint: String, evalset: String) throws(StoreError) -> [StoredEval.Item] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM checkpoint_items WHERE checkpoint = ? AND evalset = ? ORDER BY item",
                             arguments: [checkpoint, evalset]).map {
                StoredEval.Item(id: $0["item"], dimension: $0["dimension"], taskType: $0["task_type"], correct: $0["correct"],
                                correctNorm: $0["correct"], chosen: nil, logprobs: nil, text: nil)
            }
        }
    }
}
