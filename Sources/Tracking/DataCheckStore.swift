import Foundation
import GRDB

/// Data checks as the store keeps them: opaque JSON (the Evaluation module reads and writes it), by content key
/// for reuse and by sweep for the report.
extension Store {
    public func cachedDataCheck(key: String) throws(StoreError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT report FROM data_checks WHERE key = ?", arguments: [key]) }
    }

    public func saveDataCheck(key: String, report: String) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO data_checks(key, report, created_at) VALUES (?, ?, ?)",
                arguments: [key, report, Date().seconds])
        }
    }

    /// The data check of the sweep's last start, as JSON; nil when it was not checked (a store from before, or
    /// `data: {check: false}`).
    public func dataCheck(sweep: String) throws(StoreError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT report FROM sweep_data WHERE sweep = ?", arguments: [sweep]) }
    }

    public func saveDataCheck(sweep: String, report: String) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO sweep_data(sweep, report, checked_at) VALUES (?, ?, ?)",
                arguments: [sweep, report, Date().seconds])
        }
    }
}
