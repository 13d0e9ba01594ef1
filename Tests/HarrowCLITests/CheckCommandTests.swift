import Foundation
import Testing

/// `harrow check` is the oracle FaultTests rely on: here it is made to fail. A store made by a real sweep passes;
/// each kind of damage it claims to catch (a point missing, a value changed, a point too many, a metrics file cut
/// short, a broken page of the SQLite file) makes it exit 1 and say what is wrong, and where.
@Suite struct CheckCommandTests {
    /// 3 runs; each writes 20 steps of train/loss (`STEP.5`) and val/loss (`(40 - STEP).25`), 40 lines.
    static func store() throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        i=1
        while [ $i -le 20 ]; do
          echo "{\\"step\\": $i, \\"train/loss\\": $i.5}" >> "$HARROW_METRICS"
          echo "{\\"step\\": $i, \\"val/loss\\": $((40 - i)).25}" >> "$HARROW_METRICS"
          i=$((i+1))
        done
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "name: checked\nparameters: {x: [1, 2, 3]}\ntrainer: {command: [./trainer.sh]}\nresources: {parallel: 3}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let r = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        guard r.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "harrow sweep: \(r.stderr)"]) }
        return dir
    }

    /// The store's runs, by id: their folders.
    static func runs(_ dir: String) throws -> [(id: String, dir: String)] {
        let r = try Harrow.run(["runs", "--json"], in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        return list.map { ($0["id"] as! String, $0["run_dir"] as! String) }.sorted { $0.id < $1.id }
    }

    static let hasSQLite =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")
        || (try? sh("command -v sqlite3", in: "/"))?.isEmpty == false

    /// Runs SQL on the store with the sqlite3 shell; returns its stdout and stderr.
    @discardableResult
    static func sql(_ statement: String, in dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sqlite3", dir + "/.harrow/harrow.db", statement]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The chunk row holding a run's points of one key (20 points fit in one chunk of 320).
    static func chunk(run: String, key: String) -> String {
        "run = (SELECT rowid FROM runs WHERE id = '\(run)') AND key = (SELECT id FROM metric_keys WHERE name = '\(key)')"
    }

    @Test func aSoundStorePasses() throws {
        let dir = try Self.store()
        let r = try Harrow.run(["check"], in: dir)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "integrity  ok", "runs       3 (3 succeeded)", "points     120",
                "curves     3 runs compared with their metrics files, 0 differ"
            ], "\(r.stdout)")
        let json = try Harrow.run(["check", "--json"], in: dir)
        #expect(json.status == 0)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(o["ok"] as? Bool == true && o["points"] as? Int == 120 && o["curves_checked"] as? Int == 3)
        #expect((o["mismatches"] as? [String])?.isEmpty == true && o["integrity"] as? [String] == ["ok"])
    }

    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case lineDeletedFromMetricsFile, pointDeletedFromStore, valueChangedInMetricsFile, valueChangedInStore, extraPointInStore,
            truncatedMetricsFile
        var testDescription: String { rawValue }
    }

    /// Damages the first run; returns the messages `harrow check` must print for it, one per damaged curve.
    func damage(_ damage: Damage, run: String, runDir: String, in dir: String) throws -> [String] {
        let metrics = runDir + "/metrics.jsonl"
        var lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(
            String.init)
        #expect(lines.count == 41 && lines.last == "")  // 40 lines, each ended
        switch damage {
        case .lineDeletedFromMetricsFile:
            lines.removeAll { $0 == "{\"step\": 7, \"train/loss\": 7.5}" }
            try lines.joined(separator: "\n").write(toFile: metrics, atomically: true, encoding: .utf8)
            return ["run \(run): train/loss has 20 points stored, 19 in its metrics file"]
        case .pointDeletedFromStore:
            try Self.sql(
                "UPDATE metric_chunks SET data = substr(CAST(data AS BLOB), 1, 12 * 19), n = 19 WHERE \(Self.chunk(run: run, key: "val/loss"));",
                in: dir)
            return ["run \(run): val/loss has 19 points stored, 20 in its metrics file"]
        case .valueChangedInMetricsFile:
            // Same length, so the stored offset still ends at the end of the file.
            let i = try #require(lines.firstIndex(of: "{\"step\": 13, \"train/loss\": 13.5}"))
            lines[i] = "{\"step\": 13, \"train/loss\": 93.5}"
            try lines.joined(separator: "\n").write(toFile: metrics, atomically: true, encoding: .utf8)
            return ["run \(run): train/loss"]
        case .valueChangedInStore:
            // Point 5 (step 6) of val/loss: its 8 value bytes become 99.25.
            let hex = withUnsafeBytes(of: (99.25).bitPattern.littleEndian) { $0.map { String(format: "%02X", $0) }.joined() }
            try Self.sql(
                """
                UPDATE metric_chunks SET data = substr(CAST(data AS BLOB), 1, 12 * 5 + 4) || X'\(hex)' || substr(CAST(data AS BLOB), 12 * 6 + 1)
                WHERE \(Self.chunk(run: run, key: "val/loss"));
                UPDATE metric_chunks SET data = CAST(data AS BLOB) WHERE \(Self.chunk(run: run, key: "val/loss"));
                """, in: dir)
            return ["run \(run): val/loss"]
        case .extraPointInStore:
            try Self.sql(
                """
                UPDATE metric_chunks SET data = CAST(CAST(data AS BLOB) || substr(CAST(data AS BLOB), 12 * 19 + 1) AS BLOB), n = 21
                WHERE \(Self.chunk(run: run, key: "train/loss"));
                """, in: dir)
            return ["run \(run): train/loss has 21 points stored, 20 in its metrics file"]
        case .truncatedMetricsFile:
            // Cut in the middle of line 16 (val/loss at step 8): 15 whole lines stay, 8 of train/loss and 7 of val/loss.
            let data = try #require(FileManager.default.contents(atPath: metrics))
            let cut = lines.prefix(15).map { $0.utf8.count + 1 }.reduce(0, +) + 10
            try data.prefix(cut).write(to: URL(fileURLWithPath: metrics))
            let kept = lines.prefix(15)
            let train = kept.filter { $0.contains("\"train/loss\"") }.count, val = kept.filter { $0.contains("\"val/loss\"") }.count
            #expect(train == 8 && val == 7)
            return [
                "run \(run): train/loss has 20 points stored, \(train) in its metrics file",
                "run \(run): val/loss has 20 points stored, \(val) in its metrics file"
            ]
        }
    }

    @Test(.enabled(if: CheckCommandTests.hasSQLite), arguments: Damage.allCases)
    func damageIsFoundAndNamed(_ kind: Damage) throws {
        let dir = try Self.store()
        let runs = try Self.runs(dir)
        #expect(runs.count == 3)
        #expect(try Harrow.run(["check"], in: dir).status == 0)
        let expected = try damage(kind, run: runs[0].id, runDir: runs[0].dir, in: dir)

        let r = try Harrow.run(["check"], in: dir)
        #expect(r.status == 1, "\(kind): harrow check exited \(r.status): \(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("integrity  ok\n"), "\(r.stdout)")  // the file itself is sound
        #expect(r.stdout.contains("curves     3 runs compared with their metrics files, \(expected.count) differ"), "\(r.stdout)")
        let reported = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  run ") }.map { $0.dropFirst(2) }
        #expect(reported.count == expected.count, "\(r.stdout)")
        for message in expected {
            #expect(reported.contains { $0.hasPrefix(message) }, "\(kind): expected “\(message)” in:\n\(r.stdout)")
        }
        // The other runs are not named.
        for other in runs.dropFirst() { #expect(!r.stdout.contains(other.id), "\(r.stdout)") }

        let json = try Harrow.run(["check", "--json"], in: dir)
        #expect(json.status == 1)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(o["ok"] as? Bool == false && (o["mismatches"] as? [String])?.count == expected.count)

        // A changed value keeps the count, so the count alone does not say what is wrong: the message should name
        // the point that differs (its step), not only "20 points stored, 20 in its metrics file".
        if kind == .valueChangedInMetricsFile || kind == .valueChangedInStore {
            let step = kind == .valueChangedInMetricsFile ? "13" : "6"
            let line = reported.first.map(String.init) ?? ""
            #expect(line.contains("step \(step)") && !line.contains("20 points stored, 20 in its metrics file"), "\(line)")
        }
    }

    enum PageDamage: String, CaseIterable, CustomTestStringConvertible {
        /// A key in a page of an index changed (a run id in the index of run ids): the page is sound, its entry is not.
        case indexEntry
        /// The header of a b-tree page overwritten (the index of metric_summaries by min): the page cannot be read.
        case pageHeader
        var testDescription: String { rawValue }
    }

    /// A page of the SQLite file damaged (as a bad sector or a torn write would leave it): SQLite's integrity
    /// check fails, and harrow check says so, in SQLite's words, with exit 1.
    @Test(.enabled(if: CheckCommandTests.hasSQLite), arguments: PageDamage.allCases)
    func aBrokenPageFailsTheIntegrityCheck(_ kind: PageDamage) throws {
        let dir = try Self.store()
        let db = dir + "/.harrow/harrow.db"
        let run = try #require(try Self.runs(dir).first).id
        // Everything in the main file first: no WAL frame holds a newer copy of the page.
        _ = try Self.sql("PRAGMA wal_checkpoint(TRUNCATE);", in: dir)
        let wal = (try? FileManager.default.attributesOfItem(atPath: db + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0)
        let pageSize = try #require(Int(try Self.sql("PRAGMA page_size;", in: dir)))
        let pages = try #require(Int(try Self.sql("PRAGMA page_count;", in: dir)))
        let index = kind == .indexEntry ? "sqlite_autoindex_runs_1" : "metric_summaries_by_min"
        let page = try #require(Int(try Self.sql("SELECT rootpage FROM sqlite_master WHERE name = '\(index)';", in: dir)))
        #expect(page > 1 && page < pages)  // in the middle of the file
        var bytes = try #require(FileManager.default.contents(atPath: db))
        let start = (page - 1) * pageSize
        switch kind {
        case .indexEntry:
            // The run's id as the index holds it, its first letter changed.
            let range = try #require(bytes[start..<(start + pageSize)].firstRange(of: Data(run.utf8)), "run \(run) is not in page \(page)")
            bytes[range.lowerBound] = bytes[range.lowerBound] == UInt8(ascii: "z") ? UInt8(ascii: "y") : UInt8(ascii: "z")
        case .pageHeader:
            bytes.replaceSubrange(start..<(start + 64), with: Data(repeating: 0xA5, count: 64))  // its header and cell pointers
        }
        try bytes.write(to: URL(fileURLWithPath: db))
        #expect(!(try Self.sql("PRAGMA integrity_check;", in: dir)).hasPrefix("ok"))

        let r = try Harrow.run(["check"], in: dir)
        #expect(r.status == 1, "harrow check exited \(r.status): \(r.stdout)\(r.stderr)")
        let json = try Harrow.run(["check", "--json"], in: dir)
        #expect(json.status == 1)
        // SQLite's own words: which index lost an entry, or which page cannot be read.
        let words = kind == .indexEntry ? "missing from index sqlite_autoindex_runs_1" : "Page \(page)"
        func reported() throws {
            #expect(r.stdout.hasPrefix("integrity  ") && !r.stdout.hasPrefix("integrity  ok"), "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.contains(words), "\(r.stdout)\(r.stderr)")
            let o = try #require(
                try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any],
                "check --json printed no JSON: \(json.stdout)\(json.stderr)")
            #expect(o["ok"] as? Bool == false)
            #expect((o["integrity"] as? [String] ?? []).contains { $0.contains(words) }, "\(o["integrity"] ?? "")")
        }
        // On a damaged page header SQLite returns its findings, then SQLITE_CORRUPT from the same statement: both are
        // reported.
        try reported()
    }
}
