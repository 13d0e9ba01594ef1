import Foundation
import Testing

/// `harrow report` through the real binary, on a sweep run by `harrow sweep`.
@Suite struct ReportCommandTests {
    func sweep(goal: String = "maximize") throws -> String {
        let dir = try Harrow.temporaryDirectory()
        // Train loss 3/step + lr, val loss 0.5 + lr: the lowest lr has the best val loss, the highest the best score.
        try """
        #!/bin/sh
        awk -v lr="$1" 'BEGIN { for (s = 1; s <= 10; s++) printf "{\\"step\\": %d, \\"train/loss\\": %g, \\"lr\\": %g}\\n", s, 3 / s + lr, lr;
          printf "{\\"step\\": 10, \\"val/loss\\": %g, \\"score\\": %g}\\n", 0.5 + lr, lr }' >> "$HARROW_METRICS"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try """
        name: nightly
        metric: {name: score, goal: \(goal)}
        parameters: {lr: [0.1, 0.2, 0.3]}
        trainer: {command: [./trainer.sh, "{param.lr}"]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let r = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    @Test func writesTheReportAndSaysWhere() throws {
        let dir = try sweep()
        let r = try Harrow.run("report", "--json", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(out["runs"] as? Int == 3)
        #expect(out["pages"] as? Int == 6)
        #expect((out["index"] as? String)?.hasSuffix("reports/nightly/index.html") == true)
        let index = try String(contentsOfFile: dir + "/reports/nightly/index.html", encoding: .utf8)
        #expect(index.contains("<title>sweep nightly — overview</title>"))
        // Ranked by the sweep's own metric: the highest score (lr 0.3) first.
        func firstRow(_ html: String) -> String { html.components(separatedBy: "<tbody>")[1].components(separatedBy: "</tr>")[0] }
        #expect(index.contains("ranked by score"))
        #expect(firstRow(index).contains(">0.3</td>"))
        let text = try Harrow.run("report", "--sweep", "nightly", "--metric", "val/loss", "--out", "r2", in: dir)
        #expect(text.status == 0)
        #expect(text.stdout.hasPrefix("wrote \(dir)/r2/index.html: 6 pages"), "\(text.stdout)")
        #expect(firstRow(try String(contentsOfFile: dir + "/r2/index.html", encoding: .utf8)).contains(">0.1</td>"))
    }

    /// The sweep's stored goal decides which way its metric ranks, not the metric's name.
    @Test func theStoredGoalRanksTheRuns() throws {
        let dir = try sweep(goal: "minimize")
        let sweeps = try #require(
            try JSONSerialization.jsonObject(with: Data(try Harrow.run("sweeps", "--json", in: dir).stdout.utf8)) as? [[String: Any]])
        #expect(sweeps.first?["metric"] as? String == "score" && sweeps.first?["goal"] as? String == "minimize")
        #expect(try Harrow.run("report", in: dir).status == 0)
        let index = try String(contentsOfFile: dir + "/reports/nightly/index.html", encoding: .utf8)
        #expect(index.components(separatedBy: "<tbody>")[1].components(separatedBy: "</tr>")[0].contains(">0.1</td>"))
    }

    @Test func badInputIsAConfigurationError() throws {
        let dir = try sweep()
        try "panels:\n  - type: tabel\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try Harrow.run("report", "--dashboard", "bad.yaml", in: dir)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("bad.yaml:2:11: error: unknown panel type 'tabel'; did you mean 'table'?"), "\(bad.stderr)")
        let missing = try Harrow.run("report", "--runs", "nosuchrun", in: dir)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no run 'nosuchrun'"))
        let sweep = try Harrow.run("report", "--sweep", "nope", in: dir)
        #expect(sweep.status == 2)
        #expect(sweep.stderr.contains("no sweep 'nope'") && sweep.stderr.contains("nightly"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/reports/nope"))
    }
}
