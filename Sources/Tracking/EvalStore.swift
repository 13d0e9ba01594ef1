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
        /// A judged set's rubric dimension: its mean score (`acc` is the share at or above its threshold).
        public var mean: Double?
        public var meanStderr: Double?

        public init(
            dimension: String, taskType: String, n: Int, acc: Double, accStderr: Double, accNorm: Double, accNormStderr: Double,
            mean: Double? = nil, meanStderr: Double? = nil
        ) {
            self.mean = mean
            self.meanStderr = meanStderr
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
        /// A judged reply's scores by rubric dimension, and the judge's rationale (`correct`: usable).
        public var scores: [String: Double]?
        public var rationale: String?

        public init(
            id: String, dimension: String, taskType: String, correct: Bool, correctNorm: Bool, chosen: Int?, logprobs: [Double]?,
            text: String?,
            prompt: String? = nil, scores: [String: Double]? = nil, rationale: String? = nil
        ) {
            self.scores = scores
            self.rationale = rationale
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
    /// A judged set: who judged, and the rubric it judged by.
    public var judge: String?
    public var rubric: [RubricDimension]?
    public var isJudged: Bool { rubric != nil }
    public var seconds: Double?
    public var error: String?
    public var groups: [Group]
    public var items: [Item]

    public init(
        evalset: String, status: String, total: Double?, totalStderr: Double?, totalNorm: Double?, baseline: Double? = nil,
        seconds: Double?, error: String?, groups: [Group], items: [Item]
    ) {
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

extension StoredEval {
    /// A judged set's rubric dimension as stored: its scale and the score from which a reply passes.
    public struct RubricDimension: Sendable, Equatable, Codable {
        public var name: String
        public var low: Int
        public var high: Int
        public var threshold: Double

        public init(name: String, low: Int, high: Int, threshold: Double) {
            self.name = name
            self.low = low
            self.high = high
            self.threshold = threshold
        }
    }
}

/// A run's name (`harrow tag`), with the id of the run it names.
public struct RunTag: Sendable, Equatable, Decodable, FetchableRecord {
    public var name: String
    public var run: String
}

extension Store {
    /// Names a run; a name moves when given again.
    public func tag(run: Int64, as name: String) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO tags(name, run, created_at) VALUES (?, ?, ?)", arguments: [name, run, Date().seconds])
        }
    }

    /// Removes a name; false if there was none.
    public func untag(_ name: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM tags WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    /// Every name, by name.
    public func tags() throws(StoreError) -> [RunTag] {
        try read { db in try Self.tags(db) }
    }

    static func tags(_ db: Database) throws -> [RunTag] {
        try RunTag.fetchAll(db, sql: "SELECT t.name, r.id AS run FROM tags t JOIN runs r ON r.rowid = t.run ORDER BY t.name")
    }

    /// Replaces a run's results on an evalset.
    public func save(_ e: StoredEval, run: Int64) throws(StoreError) {
        try write { db in
            try EvalRunRecord.filter { $0.run == run && $0.evalset == e.evalset }.deleteAll(db)
            try EvalGroupRecord.filter { $0.run == run && $0.evalset == e.evalset }.deleteAll(db)
            try EvalItemRecord.filter { $0.run == run && $0.evalset == e.evalset }.deleteAll(db)
            try EvalRunRecord(e, run: run, scoredAt: Date()).insert(db)
            for g in e.groups { try EvalGroupRecord(g, run: run, evalset: e.evalset).insert(db) }
            for i in e.items { try EvalItemRecord(i, run: run, evalset: e.evalset).insert(db) }
        }
    }

    /// A run's evaluations (totals and groups; items with `items: true`).
    public func evals(run: Int64, items withItems: Bool = false) throws(StoreError) -> [StoredEval] {
        try read { db in try Self.evals(runs: [run], items: withItems, db: db)[run] ?? [] }
    }

    /// The evaluations of several runs by run row, each run's by evalset: one query per table.
    static func evals(runs: [Int64], items withItems: Bool, db: Database) throws -> [Int64: [StoredEval]] {
        var out: [Int64: [StoredEval]] = [:]
        for runs in runs.chunked(Self.batch) {
            let records = try EvalRunRecord.filter { runs.contains($0.run) }.order { [$0.run, $0.evalset] }.fetchAll(db)
            guard !records.isEmpty else { continue }
            let groups = Dictionary(
                grouping: try EvalGroupRecord.filter { runs.contains($0.run) }
                    .order { [$0.run, $0.evalset, $0.dimension, $0.taskType] }.fetchAll(db)
            ) { EvalKey(run: $0.run, evalset: $0.evalset) }
            let items =
                withItems
                ? Dictionary(
                    grouping: try EvalItemRecord.filter { runs.contains($0.run) }
                        .order { [$0.run, $0.evalset, $0.item] }.fetchAll(db)
                ) { EvalKey(run: $0.run, evalset: $0.evalset) } : [:]
            for r in records {
                let key = EvalKey(run: r.run, evalset: r.evalset)
                out[r.run, default: []].append(r.eval(groups: groups[key]?.map(\.stored) ?? [], items: items[key]?.map(\.stored) ?? []))
            }
        }
        return out
    }

    public func checkpointScore(_ checkpoint: String, evalset: String) throws(StoreError) -> Double? {
        try read { db in
            try CheckpointScoreRecord.filter { $0.checkpoint == checkpoint && $0.evalset == evalset }.select({ $0.total }, as: Double.self)
                .fetchOne(db)
        }
    }

    /// A starting checkpoint's total and its outcome per item (for paired tests against the runs it started).
    public func saveCheckpointScore(_ checkpoint: String, evalset: String, total: Double, items: [StoredEval.Item] = []) throws(StoreError)
    {
        try write { db in
            try CheckpointScoreRecord(checkpoint: checkpoint, evalset: evalset, total: total, scoredAt: Date())
                .insert(db, onConflict: .replace)
            try CheckpointItemRecord.filter { $0.checkpoint == checkpoint && $0.evalset == evalset }.deleteAll(db)
            for i in items { try CheckpointItemRecord(i, checkpoint: checkpoint, evalset: evalset).insert(db) }
        }
    }

    /// A starting checkpoint's outcome per item on an evalset (empty when only its total was kept).
    public func checkpointItems(_ checkpoint: String, evalset: String) throws(StoreError) -> [StoredEval.Item] {
        try read { db in try Self.checkpointItems(checkpoint, evalset: evalset, db: db) }
    }

    static func checkpointItems(_ checkpoint: String, evalset: String, db: Database) throws -> [StoredEval.Item] {
        try CheckpointItemRecord.filter { $0.checkpoint == checkpoint && $0.evalset == evalset }.order { $0.item }.fetchAll(db)
            .map(\.stored)
    }
}

// MARK: Records

/// One run's evaluation on one evalset and its groups or items: what the rows of `evals` and `eval_items` share.
private struct EvalKey: Hashable {
    var run: Int64
    var evalset: String
}

/// A row of `eval_runs`: one run's evaluation on one evalset, without its groups and items.
struct EvalRunRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "eval_runs"

    var run: Int64
    var evalset: String
    var status: String
    var total: Double?
    var totalStderr: Double?
    var totalNorm: Double?
    var baseline: Double?
    var seconds: Double?
    var error: String?
    var scoredAt: Date
    var baselineCheckpoint: String?
    /// JSON: the evalset's weight per dimension.
    var weights: String?
    /// JSON: paired tests against the starting checkpoint, by value name; nil when there are none.
    var vsStart: String?
    var judge: String?
    /// JSON: a judged set's rubric.
    var rubric: String?

    enum Columns: String, CodingKey, ColumnExpression {
        case run, evalset, status, total, totalStderr = "total_stderr", totalNorm = "total_norm", baseline, seconds, error
        case scoredAt = "scored_at", baselineCheckpoint = "baseline_checkpoint", weights, vsStart = "vs_start", judge, rubric
    }
    typealias CodingKeys = Columns

    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }

    init(_ e: StoredEval, run: Int64, scoredAt: Date) {
        self.run = run
        evalset = e.evalset
        status = e.status
        total = e.total
        totalStderr = e.totalStderr
        totalNorm = e.totalNorm
        baseline = e.baseline
        seconds = e.seconds
        error = e.error
        self.scoredAt = scoredAt
        baselineCheckpoint = e.baselineCheckpoint
        weights = e.weights.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) }
        vsStart = e.vsStart.isEmpty ? nil : try? String(decoding: JSONEncoder().encode(e.vsStart), as: UTF8.self)
        judge = e.judge
        rubric = e.rubric.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) }
    }

    func eval(groups: [StoredEval.Group], items: [StoredEval.Item]) -> StoredEval {
        var e = StoredEval(
            evalset: evalset, status: status, total: total, totalStderr: totalStderr, totalNorm: totalNorm,
            baseline: baseline, seconds: seconds, error: error, groups: groups, items: items)
        e.baselineCheckpoint = baselineCheckpoint
        e.weights = weights.flatMap { try? JSONDecoder().decode([String: Double].self, from: Data($0.utf8)) }
        e.vsStart = vsStart.flatMap { try? JSONDecoder().decode([String: PairedSummary].self, from: Data($0.utf8)) } ?? [:]
        e.judge = judge
        e.rubric = rubric.flatMap { try? JSONDecoder().decode([StoredEval.RubricDimension].self, from: Data($0.utf8)) }
        return e
    }
}

/// A row of `evals`: a group of a run's evaluation.
struct EvalGroupRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "evals"

    var run: Int64
    var evalset: String
    var dimension: String
    /// Empty for the whole dimension.
    var taskType: String
    var n: Int
    var acc: Double
    var accStderr: Double
    var accNorm: Double
    var accNormStderr: Double
    var mean: Double?
    var meanStderr: Double?

    enum Columns: String, CodingKey, ColumnExpression {
        case run, evalset, dimension, taskType = "task_type", n, acc, accStderr = "acc_stderr", accNorm = "acc_norm"
        case accNormStderr = "acc_norm_stderr", mean, meanStderr = "mean_stderr"
    }
    typealias CodingKeys = Columns

    init(_ g: StoredEval.Group, run: Int64, evalset: String) {
        self.run = run
        self.evalset = evalset
        dimension = g.dimension
        taskType = g.taskType
        n = g.n
        acc = g.acc
        accStderr = g.accStderr
        accNorm = g.accNorm
        accNormStderr = g.accNormStderr
        mean = g.mean
        meanStderr = g.meanStderr
    }

    var stored: StoredEval.Group {
        .init(
            dimension: dimension, taskType: taskType, n: n, acc: acc, accStderr: accStderr, accNorm: accNorm,
            accNormStderr: accNormStderr, mean: mean, meanStderr: meanStderr)
    }
}

/// A row of `eval_items`: one item of a run's evaluation, as scored.
struct EvalItemRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "eval_items"

    var run: Int64
    var evalset: String
    var item: String
    var dimension: String
    var taskType: String
    var correct: Bool
    var correctNorm: Bool
    var chosen: Int?
    /// JSON numbers as Swift writes them (`-inf` and `nan` too, which then read back as no logprobs).
    var logprobs: String?
    var text: String?
    var prompt: String?
    /// JSON: a judged reply's scores by dimension.
    var scores: String?
    var rationale: String?

    enum Columns: String, CodingKey, ColumnExpression {
        case run, evalset, item, dimension, taskType = "task_type", correct, correctNorm = "correct_norm", chosen, logprobs, text, prompt
        case scores, rationale
    }
    typealias CodingKeys = Columns

    init(_ i: StoredEval.Item, run: Int64, evalset: String) {
        self.run = run
        self.evalset = evalset
        item = i.id
        dimension = i.dimension
        taskType = i.taskType
        correct = i.correct
        correctNorm = i.correctNorm
        chosen = i.chosen
        logprobs = i.logprobs.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }
        text = i.text
        prompt = i.prompt
        scores = i.scores.flatMap { try? String(decoding: JSONEncoder.sorted.encode($0), as: UTF8.self) }
        rationale = i.rationale
    }

    var stored: StoredEval.Item {
        .init(
            id: item, dimension: dimension, taskType: taskType, correct: correct, correctNorm: correctNorm, chosen: chosen,
            logprobs: logprobs.flatMap { try? JSONDecoder().decode([Double].self, from: Data($0.utf8)) }, text: text, prompt: prompt,
            scores: scores.flatMap { try? JSONDecoder().decode([String: Double].self, from: Data($0.utf8)) }, rationale: rationale)
    }
}

/// A row of `checkpoint_scores`: a starting checkpoint's total on an evalset, by the sha256 of its weights.
struct CheckpointScoreRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint_scores"

    var checkpoint: String
    var evalset: String
    var total: Double
    var scoredAt: Date

    enum Columns: String, CodingKey, ColumnExpression {
        case checkpoint, evalset, total, scoredAt = "scored_at"
    }
    typealias CodingKeys = Columns

    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
}

/// A row of `checkpoint_items`: a starting checkpoint's outcome on one item.
struct CheckpointItemRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint_items"

    var checkpoint: String
    var evalset: String
    var item: String
    var dimension: String
    var taskType: String
    var correct: Bool

    enum Columns: String, CodingKey, ColumnExpression {
        case checkpoint, evalset, item, dimension, taskType = "task_type", correct
    }
    typealias CodingKeys = Columns

    init(_ i: StoredEval.Item, checkpoint: String, evalset: String) {
        self.checkpoint = checkpoint
        self.evalset = evalset
        item = i.id
        dimension = i.dimension
        taskType = i.taskType
        correct = i.correct
    }

    /// Only correctness is kept: it stands for both scorings.
    var stored: StoredEval.Item {
        .init(
            id: item, dimension: dimension, taskType: taskType, correct: correct, correctNorm: correct, chosen: nil, logprobs: nil,
            text: nil)
    }
}

extension JSONEncoder {
    /// Keys sorted, so the same value is stored as the same text.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

/// A row of `judge_cache`: one judgement by the judge's name and the sha256 of the request line it read.
struct JudgeCacheRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "judge_cache"

    var judge: String
    var request: String
    var scores: String
    var rationale: String
    var createdAt: Date

    enum Columns: String, CodingKey, ColumnExpression {
        case judge, request, scores, rationale, createdAt = "created_at"
    }
    typealias CodingKeys = Columns

    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
}

extension Store {
    /// A judgement kept for this judge and request (by the request's sha256), as scores and rationale.
    public func cachedJudgement(judge: String, request: String) -> (scores: [String: Double], rationale: String)? {
        let key = sha256Hex(Data(request.utf8))
        guard
            let r = try? read({ db in try JudgeCacheRecord.filter { $0.judge == judge && $0.request == key }.fetchOne(db) }),
            let scores = try? JSONDecoder().decode([String: Double].self, from: Data(r.scores.utf8))
        else { return nil }
        return (scores, r.rationale)
    }

    public func cacheJudgement(judge: String, request: String, scores: [String: Double], rationale: String) throws(StoreError) {
        let text = String(decoding: (try? JSONEncoder.sorted.encode(scores)) ?? Data(), as: UTF8.self)
        try write { db in
            try JudgeCacheRecord(
                judge: judge, request: sha256Hex(Data(request.utf8)), scores: text, rationale: rationale, createdAt: Date()
            )
            .insert(db, onConflict: .replace)
        }
    }
}
