import Foundation
import Testing

/// A night with more trials than a terminal shows, and one cut short: the closing table shows the best 20 and
/// counts the rest; runs that never started are not diagnosed.
@Suite struct OvernightScaleTests {
    func folder(trials: Int, sleep: Double) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        sleep \(sleep)
        echo "{\\"step\\": 1, \\"train/loss\\": 2, \\"val/loss\\": $(( ($1 - 13) * ($1 - 13) + 1 ))}" >> "$HARROW_METRICS"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try """
        name: night
        metric: {name: val/loss, goal: minimize}
        parameters: {x: {min: 1, max: \(trials)}}
        trainer: {command: [./trainer.sh, "{param.x}"]}
        resources: {parallel: 2}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func theClosingTableShowsTheBest20AndCountsTheRest() throws {
        let dir = try folder(trials: 25, sleep: 0)
        let r = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(r.status == 0, "\(r.stderr.suffix(800))")
        let rows = r.stdout.split(separator: "\n").filter {
            $0.split(separator: " ").count > 4 && $0.split(separator: " ")[1] == "succeeded"
        }
        #expect(rows.count == 20)
        #expect(rows.first?.contains(" 13 ") == true, "the best first: \(rows.first ?? "")")
        #expect(r.stdout.contains("the best 20 of 25 by val/loss; 5 more: `harrow runs --sweep night` lists them all"), "\(r.stdout)")
        let runs = try Harrow.run("runs", "--sweep", "night", "--json", in: dir)
        #expect(((try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8))) as? [Any])?.count == 25)
    }

    @Test func runsThatNeverStartedAreNotDiagnosed() throws {
        let dir = try folder(trials: 8, sleep: 1)
        // The first two trials take a second; by then the deadline leaves no room for the others.
        _ = try Harrow.run("sweep", "exp.yaml", "--deadline", "2s", in: dir)
        let runs = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("runs", "--sweep", "night", "--json", in: dir).stdout.utf8))
                as? [[String: Any]])
        let queued = runs.filter { $0["status"] as? String == "queued" }.count
        #expect(queued >= 4, "a night cut short: \(runs.map { $0["status"] ?? "" })")
        let d = try Harrow.run("diagnose", "--sweep", "night", in: dir)
        #expect(d.stderr.contains("\(queued) runs of night never started and are not diagnosed"), "\(d.stderr)")
        let json = try Harrow.run("diagnose", "--sweep", "night", "--json", in: dir)
        let verdicts = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Any])
        #expect(verdicts.count == runs.count - queued)
    }
}
