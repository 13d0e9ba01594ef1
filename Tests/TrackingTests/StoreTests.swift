import Foundation
import GRDB
import Testing
@testable import Tracking

@Suite struct StoreTests {
    @Test func curvesRoundTripAcrossChunksAndBatches() throws {
        let (store, runs) = try storeWithRuns(1)
        let run = runs[0].rowID
        var expectedSteps: [Int] = [], expectedValues: [Double] = []
        var offset: Int64 = 0
        for batchStart in stride(from: 0, to: 1_000, by: 7) {
            var text = ""
            for step in batchStart..<min(batchStart + 7, 1_000) {
                let v = 3.0 / Double(step + 1) + 0.001 * Double(step % 5)
                text += "{\"step\": \(step), \"train/loss\": \(v)}\n"
                expectedSteps.append(step)
                expectedValues.append(v)
            }
            let batch = MetricsLines.parse(Data(text.utf8))
            offset += Int64(batch.consumed)
            try store.ingest([MetricsUpdate(run: run, offset: offset, batch: batch)])
        }
        let curve = try store.curve(run: run, key: "train/loss")
        #expect(curve.steps == expectedSteps)
        #expect(curve.values == expectedValues)
        let s = try #require(try store.summaries(run: run)["train/loss"])
        #expect(s.count == 1_000 && s.last == expectedValues.last && s.lastStep == 999)
        #expect(s.min == expectedValues.min() && s.max == expectedValues.max())
        #expect(try store.run(runs[0].id)?.metricsOffset == offset)
        let chunks = try store.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM metric_chunks") }
        #expect(chunks == (1_000 + Store.chunkCapacity - 1) / Store.chunkCapacity)
    }

    @Test func storedPointsAreCompact() throws {
        let (store, runs) = try storeWithRuns(4)
        var text = ""
        for step in 0..<20_000 { text += "{\"step\": \(step), \"train/loss\": \(1.0 / Double(step + 1)), \"lr\": 0.0002}\n" }
        let batch = MetricsLines.parse(Data(text.utf8))
        try store.ingest(runs.map { MetricsUpdate(run: $0.rowID, offset: 1, batch: batch) })
        try store.checkpoint()
        let bytesPerPoint = Double(store.sizeOnDisk) / Double(4 * batch.pointCount)
        #expect(bytesPerPoint < 16, "\(bytesPerPoint) bytes a point")
    }

    @Test func claimIsAtomicAcrossProcessesSharingTheStore() async throws {
        let (store, runs) = try storeWithRuns(40)
        let other = try Store(path: store.path)
        // Two "harrow processes" race for every run; each run must be won exactly once.
        let results = await withTaskGroup(of: [Int64].self) { group in
            for (s, pid) in [(store, Int32(100)), (other, Int32(200))] {
                group.addTask {
                    var won: [Int64] = []
                    for r in runs {
                        if (try? s.claim(run: r.rowID, from: [.queued], owner: Owner(pid: pid, host: "h"))) ?? nil != nil {
                            won.append(r.rowID)
                        }
                    }
                    return won
                }
            }
            return await group.reduce(into: [Int64]()) { $0 += $1 }
        }
        #expect(results.count == 40)
        #expect(Set(results).count == 40)
    }

    @Test func newAttemptStartsCurvesAfresh() throws {
        let (store, runs) = try storeWithRuns(1)
        let r = runs[0].rowID
        #expect(try store.claim(run: r, from: [.queued], owner: Owner()) == 1)
        try store.ingest([MetricsUpdate(run: r, offset: 20, batch: MetricsLines.parse(Data("{\"step\": 1, \"a\": 5}\n".utf8)))])
        try store.finish(run: r, attempt: 1, status: .failed, exitCode: 3, signal: nil, stderrTail: "boom")
        #expect(try store.claim(run: r, from: [.queued], owner: Owner()) == nil)  // failed is not claimable by default
        #expect(try store.claim(run: r, from: [.failed], owner: Owner()) == 2)
        #expect(try store.curve(run: r, key: "a").steps.isEmpty)
        #expect(try store.run(runs[0].id)?.metricsOffset == 0)
        #expect(try store.attempts(run: r).map(\.status) == ["failed", "running"])
    }

    @Test func abandonedRunsAreRecovered() throws {
        let (store, runs) = try storeWithRuns(2)
        let host = ProcessInfo.processInfo.hostName
        _ = try store.claim(run: runs[0].rowID, from: [.queued], owner: Owner(pid: 2_000_000_000, host: host))  // no such pid
        _ = try store.claim(run: runs[1].rowID, from: [.queued], owner: Owner(pid: getpid(), host: host))
        let recovered = try store.recoverAbandoned(owner: Owner(pid: 1, host: host), isAlive: { kill($0, 0) == 0 })
        #expect(recovered.map(\.id) == [runs[0].id])
        #expect(try store.run(runs[0].id)?.status == .interrupted)
        #expect(try store.run(runs[1].id)?.status == .running)
    }

    @Test func aNewerStoreIsRefusedClearly() throws {
        let store = try temporaryStore()
        try store.write { db in try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES ('v999')") }
        #expect {
            _ = try Store(path: store.path)
        } throws: { error in
            "\(error)".contains("written by a newer Harrow (schema v999)")
                && "\(error)".contains("this binary knows up to \(Schema.migrator.migrations.last!).")
        }
    }

    @Test func bestRunsComeFromTheSummaryIndex() throws {
        let (store, runs) = try storeWithRuns(5)
        for (i, r) in runs.enumerated() {
            let text = "{\"step\": 1, \"val/loss\": \(Double(10 - i))}\n{\"step\": 2, \"val/loss\": \(Double(5 + (i * 7) % 5))}\n"
            try store.ingest([MetricsUpdate(run: r.rowID, offset: 1, batch: MetricsLines.parse(Data(text.utf8)))])
        }
        // Minima by run: min(10, 5) = 5, min(9, 7) = 7, min(8, 9) = 8, min(7, 6) = 6, min(6, 8) = 6.
        let best = try store.best(metric: "val/loss", limit: 3)
        #expect(best.map(\.summary.min) == [5, 6, 6])
        #expect(best.first?.run.id == runs[0].id)
        #expect(Set(best.dropFirst().map(\.run.id)) == [runs[3].id, runs[4].id])
        #expect(try store.best(metric: "val/loss", limit: 1, maximize: true).first?.summary.max == 10)
        // A status filter is part of the query, so the limit counts only matching runs.
        for r in runs.prefix(3) {
            _ = try store.claim(run: r.rowID, from: [.queued], owner: Owner())
            try store.finish(run: r.rowID, attempt: 1, status: .failed, exitCode: 1, signal: nil, stderrTail: nil)
        }
        let queued = try store.best(metric: "val/loss", limit: 2, status: .queued)
        #expect(queued.count == 2 && queued.allSatisfy { $0.run.status == .queued })
    }

    @Test func registeringAgainKeepsRunsAndIds() throws {
        let (store, runs) = try storeWithRuns(3)
        let (_, again) = try storeWithRuns(3, store: store)
        #expect(runs.map(\.id) == again.map(\.id))
        #expect(runs.allSatisfy { $0.id.count == 8 && $0.id.allSatisfy { RunID.alphabet.contains($0) } })
        #expect(try store.runs().count == 3)
    }

    /// SQLite's refusal is kept under the store's error: its codes and the statement, for a caller to test and a bug
    /// report to quote.
    @Test func aStoreErrorKeepsSQLitesCodeAndStatement() throws {
        let store = try temporaryStore()
        #expect {
            try store.write { db in try db.execute(sql: "INSERT INTO tags(name, run, created_at) VALUES ('x', 999, 0)") }
        } throws: { error in
            guard let e = error as? StoreError else { return false }
            return e.resultCode == .SQLITE_CONSTRAINT && e.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY
                && e.sql?.contains("INSERT INTO tags") == true && e.databaseError?.resultCode == .SQLITE_CONSTRAINT && !e.cannotWrite
        }
    }

    /// A refusal that has a remedy says it after SQLite's words; one nobody foresaw keeps GRDB's words and the statement.
    @Test func aStoreErrorSaysWhatToDo() {
        let full = StoreError(
            DatabaseError(
                resultCode: .SQLITE_FULL, message: "database or disk is full",
                sql: "UPDATE runs SET heartbeat = ?"))
        #expect(
            full.message
                == "SQLite error 13: database or disk is full; free space on the store's disk, then run the same command again")
        #expect(full.sql == "UPDATE runs SET heartbeat = ?")
        let busy = StoreError("cannot open the store at x.db", DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked"))
        #expect(busy.message.hasPrefix("cannot open the store at x.db: SQLite error 5: database is locked; another harrow is writing"))
        let damaged = StoreError(DatabaseError(resultCode: .SQLITE_CORRUPT, message: "database disk image is malformed"))
        #expect(damaged.message.hasSuffix("`harrow check` says where"))
        let other = StoreError(
            DatabaseError(
                resultCode: .SQLITE_MISMATCH, message: "datatype mismatch",
                sql: "UPDATE runs SET rowid = 'a'"))
        #expect(other.message == "SQLite error 20: datatype mismatch - while executing `UPDATE runs SET rowid = 'a'`")
    }

    /// An attempt is a record of its own: its times give its duration, and the run's next claim starts another.
    @Test func attemptsAreRecordsWithTheirTimes() throws {
        let (store, runs) = try storeWithRuns(1)
        let r = runs[0].rowID, start = Date(timeIntervalSince1970: 1_700_000_000.25)
        #expect(try store.claim(run: r, from: [.queued], owner: Owner(), now: start) == 1)
        try store.finish(
            run: r, attempt: 1, status: .failed, exitCode: 137, signal: nil, stderrTail: "killed",
            now: start.addingTimeInterval(12.5))
        try store.note(run: r, attempt: 1, "retried at batch_size 8")
        let attempts = try store.attempts(run: r)
        #expect(
            attempts == [
                Attempt(
                    run: r, attempt: 1, status: "failed", startedAt: start, endedAt: start.addingTimeInterval(12.5),
                    exitCode: 137, signal: nil, stderrTail: "killed", note: "retried at batch_size 8")
            ])
        #expect(attempts[0].duration == 12.5)
        try store.recordArtifact(run: r, role: "input:dataset", path: "/d.jsonl", sha256: "ab", size: 3)
        try store.recordArtifact(run: r, role: "input:dataset", path: "/d.jsonl", sha256: "cd", size: 4)
        #expect(try store.artifacts(run: r) == [Artifact(run: r, role: "input:dataset", path: "/d.jsonl", sha256: "cd", size: 4)])
    }

    /// Snapshots of many runs are read table by table, and each run gets its own rows: the same as one by one.
    @Test func snapshotsOfManyRunsAreEachRunsOwn() throws {
        let (store, runs) = try storeWithRuns(3)
        for (i, run) in runs.enumerated() where i < 2 {
            for attempt in 1...(i + 1) {
                _ = try store.claim(run: run.rowID, from: [.queued, .failed], owner: Owner())
                let text = (1...(3 + i)).map { "{\"step\": \($0), \"train/loss\": \(Double(i) + 1 / Double($0)), \"val/a\": \(i)}\n" }
                    .joined()
                try store.ingest([MetricsUpdate(run: run.rowID, offset: 1, batch: MetricsLines.parse(Data(text.utf8)))])
                try store.finish(
                    run: run.rowID, attempt: attempt, status: attempt == i + 1 ? .succeeded : .failed, exitCode: 0,
                    signal: nil, stderrTail: nil)
            }
            try store.recordArtifact(run: run.rowID, role: "checkpoint", path: "/c\(i)", sha256: nil, size: i)
            try store.save(StoredDiagnosis(verdict: "v\(i)", confidence: 0.5, bestStep: i, evidenceJSON: "{}", advice: ""), run: run.rowID)
            let item = StoredEval.Item(
                id: "q\(i)", dimension: "helpful", taskType: "qa", correct: i == 0, correctNorm: true, chosen: i,
                logprobs: [-0.5, -.infinity], text: nil)
            let group = StoredEval.Group(
                dimension: "helpful", taskType: "", n: 1, acc: Double(i), accStderr: 0, accNorm: 0,
                accNormStderr: 0)
            try store.save(
                StoredEval(
                    evalset: "domain-3h", status: "succeeded", total: Double(i), totalStderr: 0.1, totalNorm: nil,
                    seconds: 1, error: nil, groups: [group], items: [item]), run: run.rowID)
            try store.tag(run: run.rowID, as: "t\(i)")
        }
        let keys: Set<String> = ["train/loss", "val/*"], rows = Set(runs.map(\.rowID))
        let many = try store.snapshots(runs, curves: keys, evalItems: rows)
        for (run, snapshot) in zip(runs, many) {
            let one = try store.snapshots([run], curves: keys, evalItems: rows)[0]
            #expect(snapshot.summaries == one.summaries && snapshot.values == one.values && snapshot.diagnosis == one.diagnosis)
            #expect(snapshot.attempts == one.attempts && snapshot.artifacts == one.artifacts && snapshot.tags == one.tags)
            #expect(snapshot.evals.map(\.groups) == one.evals.map(\.groups))
            #expect(snapshot.evalItems?.map(\.items) == one.evalItems?.map(\.items))
            #expect(snapshot.curves.keys.sorted() == one.curves.keys.sorted())
            for (key, curve) in snapshot.curves {
                #expect(curve.steps == one.curves[key]?.steps && curve.values == one.curves[key]?.values)
            }
            #expect(try snapshot.attempts == store.attempts(run: run.rowID) && snapshot.summaries == store.summaries(run: run.rowID))
        }
        #expect(many.map(\.attempts.count) == [1, 2, 0] && many.map(\.artifacts.count) == [1, 1, 0])
        #expect(many.map(\.tags) == [["t0"], ["t1"], []])
        #expect(many.map { $0.curves.keys.sorted() } == [["train/loss", "val/a"], ["train/loss", "val/a"], []])
        #expect(many[1].curves["train/loss"]?.steps == [1, 2, 3, 4] && many.map(\.diagnosis?.verdict) == ["v0", "v1", nil])
        #expect(many[1].evalItems?.first?.items.first?.logprobs == nil, "-inf is kept as Swift writes it, and reads back as no logprobs")
        #expect(many[0].evalItems?.first?.items.map(\.id) == ["q0"] && many[2].evalItems?.isEmpty == true)
    }
}
