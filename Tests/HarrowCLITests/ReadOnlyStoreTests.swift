import Foundation
import Testing

/// Commands that read never write: a store on a read-only file system (a CI artifact, a shared mount) lists,
/// reports and gates; its bytes do not change; and a store that is not there is an error naming the path.
@Suite struct ReadOnlyStoreTests {
    /// A store with two finished runs, made by a real sweep.
    func store() throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        for i in 1 2 3 4 5 6; do
          echo "{\\"step\\": $i, \\"train/loss\\": $(( 10 - i )).5}" >> "$HARROW_METRICS"
          echo "{\\"step\\": $i, \\"val/loss\\": $(( 11 - i )).25}" >> "$HARROW_METRICS"
        done
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "name: ro\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh]}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let r = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    /// The store's data: its main file, and what its WAL holds (SQLite may leave an empty WAL and a shared-memory
    /// index beside a store a reader opened; neither holds data).
    func digest(_ dir: String) throws -> [Data] {
        let wal = FileManager.default.contents(atPath: dir + "/.harrow/harrow.db-wal") ?? Data()
        return [FileManager.default.contents(atPath: dir + "/.harrow/harrow.db") ?? Data(), wal]
    }

    /// Runs harrow with the store's folder mounted read-only, in a mount namespace of its own (`unshare`).
    func readOnly(_ dir: String, _ args: [String]) throws -> Harrow.Result {
        let quoted = ([Harrow.binary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try Self.process(
            "/usr/bin/unshare",
            [
                "-rm", "/bin/sh", "-c",
                "mount --bind .harrow .harrow && mount -o remount,bind,ro .harrow && exec \(quoted)"
            ], in: dir)
    }

    /// Whether this machine lets a process mount in a namespace of its own (unprivileged user namespaces, or root).
    static let canUnshare: Bool = (try? process("/usr/bin/unshare", ["-rm", "/bin/true"], in: "/").status == 0) ?? false

    static func process(_ executable: String, _ args: [String], in dir: String) throws -> Harrow.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Small outputs: read both after the process ends.
        p.waitUntilExit()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        return Harrow.Result(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test(.enabled(if: ReadOnlyStoreTests.canUnshare)) func aReadOnlyStoreListsReportsAndGates() throws {
        let dir = try store()
        let before = try digest(dir)
        for args in [
            ["sweeps"], ["runs"], ["runs", "--json"], ["diagnose", "--sweep", "ro"], ["show", try firstRun(dir)],
            ["export", "--format", "csv"], ["check"]
        ] {
            let r = try readOnly(dir, args)
            #expect(r.status == 0, "harrow \(args.joined(separator: " ")) on a read-only store: \(r.stderr)")
            #expect(!r.stderr.contains("readonly") && !r.stderr.contains("read-only"), "\(args): \(r.stderr)")
        }
        let report = try readOnly(dir, ["report", "--sweep", "ro", "--out", dir + "/../report-" + UUID().uuidString])
        #expect(report.status == 0, "report: \(report.stderr)")
        // Reading did not change a byte of the store (nor its WAL).
        let after = try digest(dir)
        #expect(
            after[0] == before[0] && after[1].isEmpty,
            "the store changed: main file \(after[0] == before[0] ? "same" : "changed"), WAL \(after[1].count) bytes")
    }

    @Test func readsDoNotWriteAWritableStore() throws {
        let dir = try store()
        let before = try digest(dir)
        for args in [["sweeps"], ["runs", "--json"], ["diagnose", "--sweep", "ro"], ["show", try firstRun(dir)], ["check"]] {
            let r = try Harrow.run(args, in: dir)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        let after = try digest(dir)
        #expect(
            after[0] == before[0] && after[1].isEmpty,
            "the store changed: main file \(after[0] == before[0] ? "same" : "changed"), WAL \(after[1].count) bytes")
    }

    @Test func aStoreThatIsNotThereIsAnError() throws {
        let dir = try Harrow.temporaryDirectory()
        for args in [["runs", "--db", "typo.db"], ["sweeps"], ["show", "abc"], ["tag", "abc", "prod"], ["report"]] {
            let r = try Harrow.run(args, in: dir)
            #expect(r.status == 2, "\(args) exited \(r.status)")
            #expect(r.stderr.contains("no store at"), "\(args): \(r.stderr)")
        }
        // Nothing was created: neither the mistyped file nor a `.harrow/` in the folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    func firstRun(_ dir: String) throws -> String {
        let r = try Harrow.run(["runs", "--json"], in: dir)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        return try #require(runs.first?["id"] as? String)
    }
}
