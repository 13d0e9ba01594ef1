import Foundation
import Testing

/// What a newcomer meets next: a flag that would be ignored is refused, long advice fits the terminal, JSON speaks
/// one case, and a run that logged nothing is told apart from a short curve.
@Suite struct FirstHourTests {
    func runIDs(_ dir: String) throws -> [String] {
        let r = try Harrow.run("runs", "--json", in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        return list.compactMap { $0["id"] as? String }
    }

    @Test func aBaselineNoRuleUsesIsRefused() throws {
        let dir = try Harrow.evaluatedPair(sweep: "base")
        let ids = try runIDs(dir)
        try "thresholds: {total: {min: 0.1}}\n".write(toFile: dir + "/plain.yaml", atomically: true, encoding: .utf8)
        try "baseline: {max_drop: {total: 0.5}}\n".write(toFile: dir + "/drop.yaml", atomically: true, encoding: .utf8)
        let ignored = try Harrow.run(["gate", ids[0], "--gate", "plain.yaml", "--baseline", ids[1]], in: dir)
        #expect(ignored.status == 2 && ignored.stderr.contains("no rule that compares with a baseline"), "\(ignored.stderr)")
        let used = try Harrow.run(["gate", ids[0], "--gate", "drop.yaml", "--baseline", ids[1]], in: dir)
        #expect(used.status == 0 && used.stdout.contains("against \(ids[1])"), "\(used.stdout)\(used.stderr)")
    }

    @Test func adviceIsWrappedToTheTerminalAndJSONIsSnakeCase() throws {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        i=1
        while [ $i -le 30 ]; do
          echo "{\\"step\\": $i, \\"train/loss\\": $(awk "BEGIN { print 3 / $i }")}" >> "$HARROW_METRICS"
          echo "{\\"step\\": $i, \\"val/loss\\": $(awk "BEGIN { print 3 / $i + ($i > 10 ? 0.05 * ($i - 10) : 0) }")}" >> "$HARROW_METRICS"
          i=$((i + 1))
        done
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "name: wrap\nparameters: {x: [1]}\ntrainer: {command: [./trainer.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        let table = try Harrow.run(["diagnose", "--sweep", "wrap"], in: dir, environment: ["COLUMNS": "80"])
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count > 3 && lines.allSatisfy { $0.count <= 80 }, "\(lines.map(\.count))")
        #expect(table.stdout.contains("overfitting"))
        let json = try Harrow.run(["diagnose", "--sweep", "wrap", "--json"], in: dir)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let evidence = try #require(rows.first?["evidence"] as? [String: Any])
        #expect(evidence["val_rise_percent"] != nil && evidence.keys.allSatisfy { $0 == $0.lowercased() }, "\(evidence.keys.sorted())")
    }

    @Test func aRunThatLoggedNothingIsNotAShortCurve() throws {
        let dir = try Harrow.temporaryDirectory()
        try "#!/bin/sh\necho starting >&2\n".write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "name: silent\nparameters: {x: [1]}\ntrainer: {command: [./trainer.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        let d = try Harrow.run(["diagnose", "--sweep", "silent"], in: dir, environment: ["COLUMNS": "200"])
        #expect(
            d.stdout.contains("no train-loss or val-loss point was logged") && !d.stdout.contains("log or evaluate more often"),
            "\(d.stdout)")
    }
}
