import Foundation
import Testing

/// `harrow plan`'s advice end to end: the demo's 95 training records read from `datasets/domain/train.jsonl`.
@Suite struct PlanAdviceCommandTests {
    /// By the rules (95 records → ~15 epochs; warmup ~1% per epoch; mix 15–30%; alpha/r 0.5–4; lr 1e-5 … 5e-3), the
    /// demo's 11 trials give six pieces of advice, one trial each: epochs 3 (0.2×) and 60 (4×); warmup 0.0 with 15
    /// epochs; mix_ratio 0.0 beside a general_dataset, and 0.6; lr 0.1. Not advised: the baseline's 15 epochs, its
    /// warmup of 1% per epoch (0.03 with 3 epochs, at most 0.15: 1.5× the 0.1 with 15 and 60), alpha/r 2 and 4 (on
    /// the bound), lr 3e-5 and 3e-3.
    static let expected: [(rule: String, text: String, params: [String: Double])] = [
        ("epochs", "epochs 3 for 95 training records is 0.2× the ~15 the rule gives: expect it to end under-trained", ["epochs": 3]),
        ("epochs", "epochs 60 for 95 training records is 4× the ~15 the rule gives: expect over-fitting", ["epochs": 60]),
        ("warmup", "warmup_ratio 0.0 with 15 epochs: no warmup, where the rule gives ~0.1", ["epochs": 15, "warmup_ratio": 0.0]),
        ("mix_ratio", "mix_ratio 0.0 with a general_dataset named", ["mix_ratio": 0.0]),
        ("mix_ratio", "mix_ratio 0.6: 60% of the training set is general data", ["mix_ratio": 0.6]),
        ("lr", "lr 0.1 is far above LoRA's usual 1e-5 … 1e-3", ["lr": 0.1])
    ]

    @Test func theDemoIsAdvisedAndStillPlans() throws {
        let r = try Harrow.run(["plan", "experiments/demo.yaml"], environment: ["COLUMNS": "1000"])
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty)
        #expect(r.stdout.hasPrefix("demo: grid sweep, 11 trials"))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let advice = lines.filter { $0.hasPrefix("advice: ") }
        #expect(advice.count == Self.expected.count, "\(advice)")
        for e in Self.expected {
            let line = advice.first { $0.hasPrefix("advice: " + e.text) }
            #expect(
                line?.range(of: #"\(trial #[0-9]+\)$"#, options: .regularExpression) != nil,
                "no one-trial advice line starting '\(e.text)' in \(advice)")
        }
        // Each warning is followed by its rule, and the rules that spoke can be silenced.
        let i = try #require(lines.firstIndex { $0.hasPrefix("advice: epochs 60 ") })
        #expect(lines[i + 1] == "        rule epochs: fewer epochs for more data: ~15 for 100 records, 10 for 1k, 2–3 for 10k+")
        // The advice ends the plan; the data check follows it.
        let data = try #require(lines.firstIndex { $0.hasPrefix("data: ") })
        #expect(
            Array(lines[(data - 2)..<data]) == [
                "advice, not a refusal; to silence these rules, add to the experiment:",
                "  advice: {ignore: [epochs, warmup, mix_ratio, lr]}"
            ])
        #expect(!r.stdout.contains("lora_alpha 32 / lora_r 8") && !r.stdout.contains("lr 3e-05") && !r.stdout.contains("epochs 15 for"))
    }

    @Test func theJSONNamesEachRuleAndItsTrials() throws {
        let r = try Harrow.run("plan", "experiments/demo.yaml", "--json")
        #expect(r.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let trials = try #require(json["trials"] as? [[String: Any]])
        let byKey = Dictionary(uniqueKeysWithValues: trials.map { ($0["key"] as! String, $0) })
        let advice = try #require(json["advice"] as? [[String: Any]])
        #expect(advice.count == Self.expected.count)
        // Ordered by rule, as the rules are listed.
        #expect(advice.map { $0["rule"] as? String ?? "" } == ["epochs", "epochs", "warmup", "mix_ratio", "mix_ratio", "lr"])
        for e in Self.expected {
            let entry = try #require(advice.first { ($0["message"] as? String)?.hasPrefix(e.text) == true }, "no advice '\(e.text)'")
            #expect(entry["rule"] as? String == e.rule)
            #expect((entry["statement"] as? String)?.isEmpty == false)
            let keys = try #require(entry["trials"] as? [String])
            #expect(keys.count == 1)
            let trial = try #require(byKey[keys[0]], "advice names a trial the plan does not have")
            #expect(entry["indices"] as? [Int] == [trial["index"] as! Int])
            let params = try #require(trial["params"] as? [String: Any])
            for (name, value) in e.params {
                #expect((params[name] as? NSNumber)?.doubleValue == value, "\(name) of '\(e.text)'")
            }
        }
        let epochs = try #require(advice.first { ($0["message"] as? String)?.hasPrefix("epochs 60") == true }?["values"] as? [String: Any])
        #expect(epochs["epochs"] as? Int == 60 && epochs["records"] as? Int == 95)
    }

    /// Where the dataset cannot be read the data-size rule says nothing; `advice: {ignore: …}` silences rules.
    @Test func anUnreadableDatasetAndIgnoredRulesSayNothing() throws {
        let dir = try Harrow.temporaryDirectory()
        let demo = try String(contentsOfFile: Harrow.packageRoot + "/experiments/demo.yaml", encoding: .utf8)
        try demo.write(toFile: dir + "/demo.yaml", atomically: true, encoding: .utf8)
        try (demo + "advice: {ignore: [warmup, lr]}\n").write(toFile: dir + "/quiet.yaml", atomically: true, encoding: .utf8)
        // No datasets/ in this folder: no epochs advice, the rest as before.
        let r = try Harrow.run(["plan", "demo.yaml"], in: dir, environment: ["COLUMNS": "1000"])
        #expect(r.status == 0)
        let rules = r.stdout.split(separator: "\n").filter { $0.hasPrefix("advice: ") }.map { $0.split(separator: " ")[1] }
        #expect(rules == ["warmup_ratio", "mix_ratio", "mix_ratio", "lr"])
        let quiet = try Harrow.run(["plan", "quiet.yaml"], in: dir, environment: ["COLUMNS": "1000"])
        #expect(quiet.status == 0)
        let left = quiet.stdout.split(separator: "\n").filter { $0.hasPrefix("advice: ") }.map { $0.split(separator: " ")[1] }
        #expect(left == ["mix_ratio", "mix_ratio"])
    }
}
