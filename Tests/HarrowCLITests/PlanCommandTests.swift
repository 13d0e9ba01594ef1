import Foundation
import Testing

/// The `harrow` binary end to end: real process, real files, exit statuses and output as users see them.
@Suite struct PlanCommandTests {
    @Test func plansTheDemoAsATable() throws {
        let r = try Harrow.run("plan", "experiments/demo.yaml")
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("demo: grid sweep, 11 trials"))
        let header = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix(" #") || $0.hasPrefix("#") })
        #expect(header.contains("base_model") && header.contains("lora_alpha") && header.contains("mix_ratio"))
        #expect(!header.contains("batch_size"))  // constant parameters are listed once, not as columns
        #expect(r.stdout.contains("432 grid points, 421 removed by where → 11 trials"))
        #expect(r.stderr.isEmpty)
    }

    @Test func jsonHasEveryTrial() throws {
        let r = try Harrow.run("plan", "experiments/overnight.yaml", "--json")
        #expect(r.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let trials = try #require(json["trials"] as? [[String: Any]])
        #expect(trials.count == 570 && json["count"] as? Int == 570)
        #expect(json["candidates"] as? Int == 972)
        #expect((json["excluded"] as? Int)! + (json["filtered"] as? Int)! == 972 - 570)
        #expect(Set(trials.map { $0["key"] as! String }).count == 570)
        let params = try #require(trials[0]["params"] as? [String: Any])
        #expect(params["lora_targets"] as? [String] == ["q_proj", "v_proj"])
    }

    /// W&B runs a random sweep with no `count` or `run_cap` until it is stopped: `plan` says so, and `sweep` asks
    /// for the deadline that stops it (exit 2, pointing at the `method:` line), starting nothing.
    @Test func anUnboundedRandomSweepNeedsADeadline() throws {
        let dir = try Harrow.temporaryDirectory()
        try "method: random\nprogram: train.py\nparameters:\n  lr: {min: 0.0001, max: 0.01}\n"
            .write(toFile: dir + "/random.yaml", atomically: true, encoding: .utf8)
        let plan = try Harrow.run(["plan", "random.yaml"], in: dir)
        #expect(plan.status == 0 && plan.stdout.contains("unbounded: random trials until the deadline"))
        let sweep = try Harrow.run(["sweep", "random.yaml", "--db", dir + "/h.db"], in: dir)
        #expect(sweep.status == 2)
        #expect(sweep.stderr.contains("random.yaml:1:9: error:") && sweep.stderr.contains("--deadline") && sweep.stderr.contains("run_cap"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow/runs"))
    }

    @Test func badFileExitsTwoWithPositions() throws {
        let path = try Harrow.temporaryFile("parameters:\n  lr: {values: []}\n  epochs: {valeus: [1]}\n")
        let r = try Harrow.run("plan", path)
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("\(path):2:16: error: 'lr' has an empty value list"))
        #expect(r.stderr.contains("\(path):3:12: error: unknown key 'valeus'"))
        #expect(r.stderr.contains("hint: did you mean 'values'?"))
        #expect(r.stderr.contains("2 errors"))
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack"))
        // Scripts get the same errors as data.
        let j = try Harrow.run("plan", path, "--json")
        #expect(j.status == 2)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        #expect((json["errors"] as? [[String: Any]])?.count == 2)
    }

    @Test func missingFileAndUsageErrors() throws {
        let r = try Harrow.run("plan", "/nonexistent/exp.yaml")
        #expect(r.status == 2)
        #expect(r.stderr.contains("/nonexistent/exp.yaml:1:1: error: no such file"))
        let usage = try Harrow.run("plan")
        #expect(usage.status == 2)
        #expect(usage.stderr.contains("Missing expected argument"))
    }

    @Test func helpTeaches() throws {
        let r = try Harrow.run("plan", "--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("harrow plan experiments/overnight.yaml"))
        #expect(r.stdout.contains("--json"))
        let top = try Harrow.run("--help")
        #expect(top.stdout.contains("plan") && top.stdout.contains("Exit status"))
    }
}
