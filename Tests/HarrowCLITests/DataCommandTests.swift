import Foundation
import Testing

/// `harrow data check` as users run it: the shipped training data holds no evaluation prompt, and a file with
/// planted problems fails naming its lines.
@Suite struct DataCommandTests {
    @Test func shippedTrainingDataIsNotContaminated() throws {
        let r = try Harrow.run("data", "check", "datasets/domain/train.jsonl", "--against", "evalsets/domain-3h", "--json")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["ok"] as? Bool == true && o["errors"] as? Int == 0)
        let file = try #require((o["files"] as? [[String: Any]])?.first)
        #expect(file["records"] as? Int == 95)  // datasets/README.md
        #expect((file["malformed"] as? [Any])?.isEmpty == true)
        let overlap = try #require(file["overlap"] as? [String: Any])
        #expect((overlap["exact"] as? [Any])?.isEmpty == true && (overlap["near"] as? [Any])?.isEmpty == true)
        let groups = try #require(file["task_type_groups"] as? [String: [String: Any]])
        #expect(groups["safety"]?["count"] as? Int == 7 && groups["honesty"]?["count"] as? Int == 5)  // of 8 and 8 in train + val
        #expect((o["against"] as? [[String: Any]])?.first?["prompts"] as? Int == 436)
        let settings = try #require(o["settings"] as? [String: Any])
        #expect(settings["minhash_hashes"] as? Int == 64 && settings["jaccard_threshold"] as? Double == 0.8)

        let text = try Harrow.run("data", "check", "datasets/domain/train.jsonl", "--against", "evalsets/domain-3h")
        #expect(text.status == 0)
        #expect(text.stdout.contains("records        95 (95 alpaca)"), "\(text.stdout)")
        #expect(text.stdout.contains("in --against   0 exact, 0 near (prompts)"))
    }

    @Test func plantedProblemsFailNamingTheirLines() throws {
        let dir = try Harrow.temporaryDirectory()
        let path = dir + "/train.jsonl"
        try [
            #"{"instruction": "What is Lartolol used for?", "input": "", "output": "Lartolol is used to treat gout.", "task_type": "qa/indication"}"#,
            #"{"instruction": "Which medicine is dangerous to combine with Cainolol?", "input": "", "output": "Rendolol.", "task_type": "qa/interaction"}"#,
            #"{"instruction": "oops""#,
            #"{"messages": [{"role": "user", "content": "What is Lartolol for?"}, {"role": "assistant", "content": "Lartolol is used to treat gout."}], "task_type": "qa/indication"}"#
        ].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)

        let r = try Harrow.run(["data", "check", path, "--against", "evalsets/domain-3h"])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("error    \(path):3: not valid JSON"), "\(r.stdout)")
        #expect(r.stdout.contains("\(path):2: the same prompt as evalsets/domain-3h/items.jsonl:1"), "\(r.stdout)")
        #expect(r.stdout.contains("warning  \(path):4: the same response as \(path):1"), "\(r.stdout)")

        // Overlap allowed: the malformed line still fails; without it the same file passes with warnings.
        let allowed = try Harrow.run(["data", "check", path, "--against", "evalsets/domain-3h", "--allow-overlap", "--json"])
        #expect(allowed.status == 1)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(allowed.stdout.utf8)) as? [String: Any])
        #expect(o["errors"] as? Int == 1)
        let file = try #require((o["files"] as? [[String: Any]])?.first)
        #expect((file["malformed"] as? [[String: Any]])?.first?["line"] as? Int == 3)
        let exact = try #require((file["overlap"] as? [String: Any])?["exact"] as? [[String: Any]])
        #expect(exact.first?["a"] as? String == "\(path):2")

        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: #"{"instruction": "oops""# + "\n", with: "")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Harrow.run(["data", "check", path, "--against", "evalsets/domain-3h", "--allow-overlap"]).status == 0)
    }

    @Test func aMissingFileIsAUsageError() throws {
        let r = try Harrow.run("data", "check", "no/such.jsonl")
        #expect(r.status == 2 && r.stderr.contains("no such file 'no/such.jsonl'"), "\(r.stderr)")
        let folder = try Harrow.run("data", "check", "datasets/domain/train.jsonl", "--against", "datasets")
        #expect(folder.status == 2 && folder.stderr.contains("without items.jsonl"), "\(folder.stderr)")
    }

    /// A nested command's help is its own, however it is asked for.
    @Test func nestedHelpIsTheCommandsOwn() throws {
        for args in [["data", "check", "--help"], ["help", "data", "check"]] {
            let r = try Harrow.run(args)
            #expect(r.status == 0 && r.stdout.contains("USAGE: harrow data check <files>"), "\(args): \(r.stdout.prefix(300))")
        }
    }
}
