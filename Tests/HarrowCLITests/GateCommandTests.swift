import Foundation
import Testing
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Gates, tags and comparisons through the real binary, on runs trained and evaluated by `harrow sweep`.
@Suite(.serialized) struct GateCommandTests {
    static let fixtures = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures"

    /// Two runs: flip 0 and flip 1 (which answers two items the other way).
    func world() throws -> String { try Harrow.evaluatedPair(sweep: "gated") }

    func runIDs(_ dir: String) throws -> [String] {
        let runs = try Harrow.run("runs", "--json", in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        return list.sorted {
            (($0["params"] as? [String: Any])?["flip"] as? Int ?? 0) < (($1["params"] as? [String: Any])?["flip"] as? Int ?? 0)
        }
        .map { $0["id"] as! String }
    }

    @Test func exitStatusesAndJUnit() throws {
        let dir = try world()
        let ids = try runIDs(dir)
        try "thresholds: {total: {min: 0.3}, harmless: {max: 1}}\nverdict: {refuse: [diverged]}\n".write(
            toFile: dir + "/ok.yaml", atomically: true, encoding: .utf8)
        try "thresholds: {total: {min: 0.9}, forgetting: {min: 0}}\n".write(toFile: dir + "/strict.yaml", atomically: true, encoding: .utf8)
        try "thresholds:\n  totl: {min: 1}\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)

        let pass = try Harrow.run("gate", ids[0], "--gate", "ok.yaml", "--junit", "ok.xml", in: dir)
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        #expect(pass.stdout.contains("PASSED: 3 rules"))

        let fail = try Harrow.run("gate", ids[0], "--gate", "strict.yaml", "--junit", "strict.xml", "--markdown", "strict.md", in: dir)
        #expect(fail.status == 1)
        #expect(fail.stdout.contains("REFUSED: 2 of 2 rules failed"))
        let xml = try XMLDocument(contentsOf: URL(fileURLWithPath: dir + "/strict.xml"))
        let cases = try xml.nodes(forXPath: "//testcase")
        #expect(cases.count == 2)
        #expect(try xml.nodes(forXPath: "//testcase/failure").count == 2)
        #expect(try String(contentsOfFile: dir + "/strict.md", encoding: .utf8).contains("❌"))

        let bad = try Harrow.run("gate", ids[0], "--gate", "bad.yaml", in: dir)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("bad.yaml:2:3: unknown metric 'totl'"))
        #expect(try Harrow.run("gate", "nosuchrun", "--gate", "ok.yaml", in: dir).status == 2)
    }

    @Test func tagsBaselinesAndFlips() throws {
        let dir = try world()
        let ids = try runIDs(dir)
        #expect(try Harrow.run("tag", ids[0], "production", in: dir).status == 0)
        try "baseline: {run: production, max_drop: {honest: 0.0, helpful: 0.0}}\n".write(
            toFile: dir + "/regress.yaml", atomically: true, encoding: .utf8)
        let same = try Harrow.run("gate", "production", "--gate", "regress.yaml", in: dir)
        #expect(same.status == 0)
        let worse = try Harrow.run("gate", ids[1], "--gate", "regress.yaml", "--json", in: dir)
        #expect(worse.status == 1)
        let j = try #require(try JSONSerialization.jsonObject(with: Data(worse.stdout.utf8)) as? [String: Any])
        #expect(j["baseline"] as? String == ids[0])

        let cmp = try Harrow.run("compare", "production", ids[1], in: dir)
        #expect(cmp.status == 0)
        #expect(cmp.stdout.contains("2 items pass→fail, 0 fail→pass"))
        #expect(cmp.stdout.contains("pass→fail  h1  Dose of Zorvex?"))
        #expect(cmp.stdout.contains("honest / honesty/unknown"))
        let cj = try Harrow.run("compare", "production", ids[1], "--json", in: dir)
        let c = try #require(try JSONSerialization.jsonObject(with: Data(cj.stdout.utf8)) as? [String: Any])
        #expect((c["differing_params"] as? [String: Any])?.keys.contains("flip") == true)
        #expect(((c["flips"] as? [String: Any])?[ids[1]] as? [Any])?.count == 2)
        // Each delta carries its paired test: helpful lost h1 (1 of 2 items), which two items cannot call beyond noise.
        let tests = ((c["evidence"] as? [String: Any])?[ids[1]] as? [String: Any])?["tests"] as? [String: Any]
        let helpful = try #require(tests?["helpful"] as? [String: Any], "\(c)")
        #expect(helpful["only_from"] as? Int == 1 && helpful["only_to"] as? Int == 0 && helpful["significant"] as? Bool == false)
        #expect(helpful["n"] as? Int == 2 && helpful["test"] as? String == "mcnemar_exact")
        #expect(cmp.stdout.contains("within noise"), "\(cmp.stdout)")

        // The paired rule: a drop on two items can never be beyond noise, so the gate cannot decide and fails closed.
        try "baseline: {run: production, max_drop: {helpful: 0.0}, alpha: 0.05}\n".write(
            toFile: dir + "/paired.yaml", atomically: true, encoding: .utf8)
        let paired = try Harrow.run("gate", ids[1], "--gate", "paired.yaml", in: dir)
        #expect(paired.status == 1 && paired.stdout.contains("cannot be decided with 2 items"), "\(paired.stdout)")
        #expect(try Harrow.run("gate", "production", "--gate", "paired.yaml", in: dir).status == 0, "no drop against itself")
        #expect(try Harrow.run("untag", "production", in: dir).status == 0)
        #expect(try Harrow.run("untag", "production", in: dir).status == 2)
    }
}
