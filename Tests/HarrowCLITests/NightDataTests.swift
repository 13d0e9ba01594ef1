import Foundation
import Testing

/// The data check `harrow plan` and `harrow sweep` run on every dataset a trial names, against the evalsets the
/// experiment scores with: what they print, what the sweep keeps, and the evaluation prompt that stops a sweep.
@Suite(.serialized) struct NightDataTests {
    /// `helpful-003`'s prompt, word for word, as the third training record.
    static let records = [
        #"{"instruction": "What is Alpha used for?", "input": "", "output": "Alpha is used to treat gout.", "task_type": "qa/indication"}"#,
        #"{"instruction": "What is Beta used for?", "input": "", "output": "Beta is used to treat migraine in adults who have tried two other treatments first.", "task_type": "qa/indication"}"#,
        #"{"instruction": "Which drug class does Hirtdine belong to?", "input": "", "output": "Hirtdine is a selbic channel opener.", "task_type": "qa/class"}"#
    ]

    func folder(records: [String], data: String = "") throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try (records.joined(separator: "\n") + "\n").write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        try """
        name: night
        method: grid
        metric: {name: val/loss, goal: minimize}
        parameters:
          lr: {values: [1.0e-4, 3.0e-4]}
          dataset: {value: train.jsonl}
          max_seq_len: {value: 64}
        eval: {evalsets: [\(Harrow.packageRoot)/evalsets/domain-3h]}
        trainer: {command: [harrow-train, objective, --config, "{config}"]}
        \(data)
        """.write(toFile: dir + "/night.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func planNamesTheEvaluationPromptAndTheTruncatedRecordAndExitsOne() throws {
        let dir = try folder(records: Self.records)
        let plan = try Harrow.run("plan", "night.yaml", in: dir)
        #expect(plan.status == 1, "\(plan.stdout)\(plan.stderr)")
        // harrow-train's objective is no SFT trainer, so tokens are estimated (bytes / 4): none reaches max_seq_len 64.
        #expect(plan.stdout.contains("data: train.jsonl (dataset): 3 records, "), "\(plan.stdout)")
        #expect(
            plan.stdout.contains("  error: train.jsonl:3: the same prompt as \(Harrow.packageRoot)/evalsets/domain-3h/items.jsonl:3"),
            "\(plan.stdout)")
        #expect(
            plan.stdout.contains(
                "data: the sweep will not start: 1 record holding evaluation prompts; fix the data "
                    + "(or, for evaluation prompts, add `data: {allow_overlap: true}` to the experiment)"))

        let json = try Harrow.run("plan", "night.yaml", "--json", in: dir)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["errors"] as? Int == 1)
        let check = try #require(data["check"] as? [String: Any])
        let files = try #require(check["files"] as? [[String: Any]])
        #expect(files.count == 1 && files[0]["role"] as? String == "dataset")
        let report = try #require(files[0]["report"] as? [String: Any])
        #expect(report["records"] as? Int == 3 && report["tokens"] as? String == "utf8_bytes/4" && report["max_seq_len"] as? Int == 64)
    }

    @Test func aSweepRefusesContaminatedDataKeepsTheCheckAndStartsWhenAllowed() throws {
        let dir = try folder(records: Self.records)
        let refused = try Harrow.run("sweep", "night.yaml", in: dir)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("data: the sweep will not start: 1 record holding evaluation prompts"), "\(refused.stderr)")
        let runs = try Harrow.run("runs", "--json", in: dir)
        #expect(runs.stdout.filter { !$0.isWhitespace } == "[]", "no trial started: \(runs.stdout) \(runs.stderr)")

        // Allowed, the sweep starts; the file's findings come from the store this time.
        try (try String(contentsOfFile: dir + "/night.yaml", encoding: .utf8) + "data: {allow_overlap: true}\n")
            .write(toFile: dir + "/night.yaml", atomically: true, encoding: .utf8)
        let allowed = try Harrow.run("sweep", "night.yaml", in: dir)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stderr.contains("data: train.jsonl (dataset): 3 records, "), "\(allowed.stderr)")
        #expect(allowed.stderr.contains("(checked before)"), "\(allowed.stderr)")
        #expect(allowed.stderr.contains("  warning: train.jsonl:3: the same prompt as "), "\(allowed.stderr)")

        // The report shows the check under its answer, findings folded.
        let report = try Harrow.run("report", "--sweep", "night", "--out", "report", in: dir)
        #expect(report.status == 0, "\(report.stderr)")
        let index = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(
            index.contains(
                "<details class=\"data\"><summary>Data: train.jsonl 3 records · checked against 1 evalset — 1 warning</summary>"),
            "\(index)")
        #expect(index.contains("  warning: train.jsonl:3: the same prompt as "))
    }

    @Test func harrowTrainCountsTokensExactlyAndFlagsTruncation() throws {
        // 1 + 2 turns × 2 + bytes: record 1 is 1 + 4 + 51 = 56 tokens, record 2 1 + 4 + 105 = 110, over max_seq_len 64.
        let dir = try folder(records: Array(Self.records.prefix(2)))
        var text = try String(contentsOfFile: dir + "/night.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "trainer: {command: [harrow-train, objective, --config, \"{config}\"]}", with: "")
        try text.write(toFile: dir + "/night.yaml", atomically: true, encoding: .utf8)
        let plan = try Harrow.run("plan", "night.yaml", in: dir)
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(
            plan.stdout.contains("data: train.jsonl (dataset): 2 records, 56–110 tokens (harrow-train's tokenizer), 1 warning"),
            "\(plan.stdout)")
        #expect(plan.stdout.contains("  warning: 1 record over max_seq_len 64 tokens (their responses are cut short), first train.jsonl:2"))
    }
}
