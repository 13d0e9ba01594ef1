import Foundation
import GRDB

/// A stored verdict on a run's curves (the Diagnosis module computes it; the store keeps it).
public struct StoredDiagnosis: Sendable, Equatable {
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
}

extension Store {
    public func save(_ d: StoredDiagnosis, run: Int64) throws(StoreError) {
        try write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO diagnoses(run, verdict, confidence, best_step, evidence, advice, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run, d.verdict, d.confidence, d.bestStep, d.evidenceJSON, d.advice, Date().seconds])
        }
    }

    public func diagnosis(run: Int64) throws(StoreError) -> StoredDiagnosis? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT verdict, confidence, best_step, evidence, advice FROM diagnoses WHERE run = ?", arguments: [run]).map {
                StoredDiagnosis(verdict: $0["verdict"], confidence: $0["confidence"], bestStep: $0["best_step"], evidenceJSON: $0["evidence"], advice: $0["advice"])
            }
        }
    }
}
