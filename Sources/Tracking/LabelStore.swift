import Foundation
import GRDB

/// People's scores of a run's replies (`harrow labels import`), one per reply, annotator and dimension.
public struct StoredLabel: Sendable, Equatable {
    public var run: String
    public var evalset: String
    public var item: String
    public var annotator: String
    public var dimension: String
    public var score: Double
    public var comment: String?

    public init(run: String, evalset: String, item: String, annotator: String, dimension: String, score: Double, comment: String? = nil) {
        self.run = run
        self.evalset = evalset
        self.item = item
        self.annotator = annotator
        self.dimension = dimension
        self.score = score
        self.comment = comment
    }
}

/// A row of `labels`.
struct LabelRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "labels"

    var run: String
    var evalset: String
    var item: String
    var annotator: String
    var dimension: String
    var score: Double
    var comment: String?
    var importedAt: Date

    enum Columns: String, CodingKey, ColumnExpression {
        case run, evalset, item, annotator, dimension, score, comment, importedAt = "imported_at"
    }
    typealias CodingKeys = Columns

    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }

    var stored: StoredLabel {
        StoredLabel(run: run, evalset: evalset, item: item, annotator: annotator, dimension: dimension, score: score, comment: comment)
    }
}

extension Store {
    /// Keeps labels; a label given again (same run, evalset, item, annotator and dimension) replaces the earlier one.
    public func save(labels: [StoredLabel]) throws(StoreError) {
        let now = Date()
        try write { db in
            for l in labels {
                try LabelRecord(
                    run: l.run, evalset: l.evalset, item: l.item, annotator: l.annotator, dimension: l.dimension, score: l.score,
                    comment: l.comment, importedAt: now
                ).insert(db, onConflict: .replace)
            }
        }
    }

    /// A run's labels on an evalset, by item and annotator.
    public func labels(run: String, evalset: String) throws(StoreError) -> [StoredLabel] {
        try read { db in
            try LabelRecord.filter { $0.run == run && $0.evalset == evalset }.order { [$0.item, $0.annotator, $0.dimension] }.fetchAll(db)
                .map(\.stored)
        }
    }
}
