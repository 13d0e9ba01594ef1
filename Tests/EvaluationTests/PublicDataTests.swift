import Foundation
import Testing
@testable import Evaluation

/// `harrow data check` on real public fine-tuning data: LLaMA-Factory's demo datasets in each format its
/// `data/dataset_info.json` declares, and OpenAI's chat fine-tuning examples (Fixtures/public-data/README.md names each
/// file's repository, path and commit, and how it was trimmed). Every expected number was counted apart from Harrow,
/// with Python's `json` module and the same word, shingle and nearest-rank definitions (the README has the script).
@Suite struct PublicDataTests {
    static let folder = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/public-data").path
    static let packageRoot = #filePath.components(separatedBy: "/Tests/")[0]

    static func data(_ name: String) throws -> Data {
        try #require(FileManager.default.contents(atPath: folder + "/" + name), "no fixture \(name)")
    }

    static func check(_ name: String, against reference: DataCheck.Reference? = nil) throws -> DataCheck.FileReport {
        DataCheck.check(try data(name), file: name, against: reference)
    }

    static func pair(_ file: String, _ a: Int, _ b: Int, _ jaccard: Double = 1) -> DataCheck.Pair {
        DataCheck.Pair(a: .init(file: file, line: a), b: .init(file: file, line: b), jaccard: jaccard)
    }

    /// Each LLaMA-Factory file reads as the format its dataset_info.json entry declares: Alpaca by default; ShareGPT's
    /// `conversations` (from/value); ShareGPT with OpenAI's tags (`messages`, role/content, user/assistant), which is
    /// OpenAI's format; `columns: {prompt: text}` for pretraining text. Records: the fixture's (first 100 of
    /// alpaca_en_demo's 999, all 91 of identity, first 50 of glaive_toolcall_en_demo's 300, all 6 of mllm_demo, first
    /// 40 of c4_demo's 300).
    static let declared = [
        "alpaca_en_demo": ("alpaca", 100), "identity": ("alpaca", 91), "glaive_toolcall_en_demo": ("sharegpt", 50),
        "mllm_demo": ("messages", 6), "c4_demo": ("text", 40)
    ]

    @Test(arguments: declared.keys.sorted())
    func readsTheFormatLlamaFactoryDeclares(_ name: String) throws {
        let (format, records) = try #require(Self.declared[name])
        let info = try #require(try JSONSerialization.jsonObject(with: Self.data("dataset_info.json")) as? [String: Any])
        let entry = try #require(info[name] as? [String: Any])
        let columns = entry["columns"] as? [String: String] ?? [:], tags = entry["tags"] as? [String: String] ?? [:]
        let declared =
            switch (entry["formatting"] as? String ?? "alpaca", columns["messages"], tags["role_tag"]) {
            case ("sharegpt", "messages"?, "role"?): "messages"
            case ("sharegpt", _, _): "sharegpt"
            case ("alpaca", _, _) where columns["prompt"] == "text": "text"
            default: "alpaca"
            }
        #expect(declared == format)
        let r = try Self.check(try #require(entry["file_name"] as? String))
        #expect(r.records == records)
        #expect(r.formats == [format: records])
        #expect(r.malformed.isEmpty)
        #expect(r.emptyResponses.isEmpty)
    }

    /// identity.json answers "who are you" many ways with one template: 4 answers repeat an earlier one word for word
    /// (elements starting on lines 7, 32, 37 and 62 repeat those on 2, 27, 27 and 57) and 3 pairs share most of their
    /// 5-word shingles ("I am {{name}}, …" against "No, I am {{name}}, …": 11 of 12, and 5 of 6 twice), all pairs compared.
    @Test func identityRepeatsItsAnswers() throws {
        let r = try Self.check("identity.json")
        #expect(r.duplicateResponses.count == 4)
        #expect(
            r.duplicateResponses.examples == [
                Self.pair("identity.json", 2, 7), Self.pair("identity.json", 27, 32), Self.pair("identity.json", 27, 37)
            ])
        #expect(r.nearDuplicateResponses.count == 3)
        #expect(
            r.nearDuplicateResponses.examples == [
                Self.pair("identity.json", 2, 12, 11.0 / 12), Self.pair("identity.json", 27, 67, 5.0 / 6),
                Self.pair("identity.json", 42, 72, 5.0 / 6)
            ])
        #expect(r.responseTokens == DataCheck.Spread(min: 10.25, median: 32.5, p95: 51, max: 78.25))
    }

    /// The first 100 Alpaca records: no response repeated, exactly or nearly. Shortest response 1 byte, longest 2417.
    @Test func alpacaHasNoDuplicates() throws {
        let r = try Self.check("alpaca_en_demo.json")
        #expect(r.duplicateResponses == DataCheck.Duplicates())
        #expect(r.nearDuplicateResponses == DataCheck.Duplicates())
        #expect(r.responseTokens == DataCheck.Spread(min: 0.25, median: 123, p95: 476, max: 604.25))
    }

    /// glaive_toolcall: ShareGPT with a `tools` column and function_call/observation turns. The response is the last
    /// `gpt` turn; 5 of the first 50 repeat an earlier one word for word (4 closing "You're welcome! If you have any
    /// other questions, feel free to ask." and one explanation of supervised learning), none nearly.
    @Test func toolCallConversationsRepeatTheirClosingLines() throws {
        let r = try Self.check("glaive_toolcall_en_demo.json")
        #expect(r.duplicateResponses.count == 5)
        #expect(
            r.duplicateResponses.examples == [
                Self.pair("glaive_toolcall_en_demo.json", 174, 216), Self.pair("glaive_toolcall_en_demo.json", 812, 857),
                Self.pair("glaive_toolcall_en_demo.json", 812, 902)
            ])
        #expect(r.nearDuplicateResponses.count == 0)
        // Only `human` turns are prompts: the first record's three, not its function call or observation; its response
        // is its last `gpt` turn.
        let first = try #require(DataCheck.parse(try Self.data("glaive_toolcall_en_demo.json"), file: "g").records.first)
        #expect(
            first.prompts == [
                "Hi, I have some ingredients and I want to cook something. Can you help me find a recipe?",
                "I have chicken, bell peppers, and rice.",
                "They both sound delicious, but I think I'll try the stir fry. Can you order the ingredients for me?"
            ])
        #expect(first.response?.hasPrefix("I'm sorry, but as an AI, I don't have the capability to perform extern") == true)
    }

    /// c4_demo: web text for pretraining, no prompt; the text counts as the response.
    @Test func pretrainingTextHasNoPrompts() throws {
        let r = try Self.check("c4_demo.jsonl")
        #expect(r.responseTokens == DataCheck.Spread(min: 43.75, median: 327.5, p95: 1678.5, max: 3941))
        #expect(r.duplicateResponses.count == 0 && r.nearDuplicateResponses.count == 0)
        #expect(DataCheck.parse(try Self.data("c4_demo.jsonl"), file: "c4").records.allSatisfy { $0.prompts.isEmpty })
    }

    /// OpenAI's toy chat file, written with flaws for its data-preparation notebook: record 4 has a system and an
    /// assistant message but no user message (read, with no prompt to look up), record 5's answer is "Eat a banana!"
    /// 2000 times (26,000 bytes: 6500 estimated tokens, the p95 and max of 5 records). Multi-turn record 2: every user
    /// turn is a prompt, the last assistant turn the response.
    @Test func openAIToyChatFileWithItsFlaws() throws {
        let r = try Self.check("toy_chat_fine_tuning.jsonl")
        #expect(r.records == 5 && r.formats == ["messages": 5] && r.malformed.isEmpty && r.emptyResponses.isEmpty)
        #expect(r.responseTokens == DataCheck.Spread(min: 3.25, median: 11.25, p95: 6500, max: 6500))
        let records = DataCheck.parse(try Self.data("toy_chat_fine_tuning.jsonl"), file: "toy").records
        #expect(
            records[1].prompts == [
                "I lost my tennis match today.", "But I trained so hard!", "I'm going to switch to golf.",
                "I don't even know how to play golf."
            ])
        #expect(records[1].response == "It's easy to learn!")
        #expect(records[3].prompts == [] && records[3].response == "You're great!")
    }

    /// OpenAI's function-calling fine-tuning format: the assistant's turn is `tool_calls` with no `content`, which
    /// OpenAI's chat format allows. Both records are well formed, with a user prompt each.
    @Test func openAIToolCallRecordsAreWellFormed() throws {
        let r = try Self.check("drone_training.jsonl")
        #expect(r.malformed.isEmpty)
        #expect(r.formats == ["messages": 2])
        // The call is the response: the function's name and its arguments.
        let records = DataCheck.parse(try Self.data("drone_training.jsonl"), file: "drone").records
        #expect(records.map(\.response) == [#"takeoff_drone {"altitude": 100}"#, #"takeoff_drone {"altitude": 100}"#])
        #expect(
            records.map(\.prompts) == [
                ["Let's get the drone in the air, can you make it take off"], ["Can you lift the drone to 100 feet off the ground"]
            ])
        // Both calls are the same: one repeated response.
        #expect(r.emptyResponses.isEmpty && r.duplicateResponses.count == 1)
    }

    /// LLaMA-Factory's preference data (`ranking: true`): the conversation ends at the prompt (11 of these 20 are a
    /// single human turn, 4 a system turn then a human one, 5 multi-turn), and `chosen` is the reply tuned towards,
    /// read as the response. Expected values from Python over the same 20 records (README.md): no repeated
    /// response, response tokens (UTF-8 bytes / 4) 0.75 / 422 / 926 / 1236.75.
    @Test func preferenceDataReadsTheChosenReply() throws {
        let r = try Self.check("dpo_en_demo.json")
        #expect(r.records == 20 && r.formats == ["sharegpt": 20] && r.malformed.isEmpty)
        #expect(r.duplicateResponses.count == 0)
        #expect(r.responseTokens == DataCheck.Spread(min: 0.75, median: 422, p95: 926, max: 1236.75))
        let first = try #require(DataCheck.parse(try Self.data("dpo_en_demo.json"), file: "dpo").records.first)
        #expect(
            first.prompts == [
                "Hi! I'd like to create a new language game simulating the first person perspective of a character named Angela."
            ])
        #expect(first.response?.hasPrefix("That sounds like a fun and engaging idea!") == true)
    }

    /// None of the public files holds a prompt of the shipped domain evalset (a fictional world's pharmacology).
    @Test func noneHoldsAShippedEvalsetPrompt() throws {
        let items = try #require(FileManager.default.contents(atPath: Self.packageRoot + "/evalsets/domain-3h/items.jsonl"))
        let (refs, bad) = DataCheck.parse(items, file: "items.jsonl", requireResponse: false)
        #expect(bad.isEmpty)
        let reference = DataCheck.reference(refs)
        for name in [
            "alpaca_en_demo.json", "identity.json", "glaive_toolcall_en_demo.json", "mllm_demo.json", "c4_demo.jsonl",
            "toy_chat_fine_tuning.jsonl"
        ] {
            #expect(try Self.check(name, against: reference).overlap == DataCheck.Overlap(), "\(name)")
        }
    }
}
