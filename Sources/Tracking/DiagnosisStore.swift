import Foundation
import GRDB

/// A stored verdict on a run's curves (the Diagnosis module computes it; the store keeps it in `diagnoses`).
public struct StoredDiagnosis: Sendable, Equatable, Decodable, FetchableRecord {
    public var verdict: String
    public var confidence: Double
    public var bestStep: Int?
    /// The evidence as a JSON object.
    public var evidenceJSON: String
    public var advice: String

    public init(verdict: String, confidence: Double, bestStep: Int?, evidenceJSON: String, advice: String) {
        self.verdict = verdict
        self.confidence = confidence
        self.bestStep = bestStep
        self.evidenceJSON = evidenceJSON
        self.advice = advice
    }

    /// The columns of `diagnoses` a verdict is read from, each named once.
    public enum Columns: String, CodingKey, ColumnExpression, CaseIterable, Sendable {
        case verdict, confidence, bestStep = "best_step", evidenceJSON = "evidence", advice
    }
    typealias CodingKeys = Columns
}

extension Store {
    public func save(_ d: StoredDiagnosis, run: Int64) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO diagnoses(run, verdict, confidence, best_step, evidence, advice, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run, d.verdict, d.confidence, d.bestStep, d.evidenceJSON, d.advice, Date().seconds])
        }
    }

    public func diagnosis(run: Int64) throws(StoreError) -> StoredDiagnosis? {
        try read { db in try Self.diagnoses(runs: [run], db: db)[run] }
    }

    /// The verdicts of several runs, by run row.
    static func diagnoses(runs: [Int64], db: Database) throws -> [Int64: StoredDiagnosis] {
        var out: [Int64: StoredDiagnosis] = [:]
        let columns = StoredDiagnosis.Columns.allCases.map(\.name).joined(separator: ", ")
        for runs in runs.chunked(batch) {
            for row in try Row.fetchAll(db, SQLRequest(literal: "SELECT run, \(sql: columns) FROM diagnoses WHERE run IN \(runs)")) {
                out[row["run"]] = try StoredDiagnosis(row: row)
            }
        }
        return out
    }
}
