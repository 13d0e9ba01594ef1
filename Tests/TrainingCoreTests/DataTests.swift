import Foundation
import Testing
@testable import TrainingCore

@Suite("Tokenizer, chat template and data files")
struct DataTests {
    @Test func lossCoversOnlyTheResponse() {
        let messages = [
            Message(role: .system, content: "Be brief."), Message(role: .user, content: "Hi?"),
            Message(role: .assistant, content: "Hello."), Message(role: .user, content: "Bye?"),
            Message(role: .assistant, content: "Bye.")
        ]
        let e = DataLoader.sftExample(messages, maxSeqLen: 512)
        let trained = e.targets.filter { $0 != ignoreIndex }
        #expect(trained == Tokenizer.encode("Hello.") + [Tokenizer.endOfTurn] + Tokenizer.encode("Bye.") + [Tokenizer.endOfTurn])
        #expect(e.tokens.first == Tokenizer.bos && e.tokens.count == e.targets.count)
        // Each target is the next input token.
        for i in 0..<(e.tokens.count - 1) where e.targets[i] != ignoreIndex { #expect(e.targets[i] == e.tokens[i + 1]) }
        #expect(Tokenizer.decode(e.tokens) == "Be brief.Hi?Hello.Bye?Bye.")
    }

    @Test func alpacaAndChatRecordsRender() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("d.jsonl")
        try """
        {"instruction": "Add", "input": "2 and 3", "output": "5"}

        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
        """.write(to: file, atomically: true, encoding: .utf8)
        let records = try DataLoader.loadSFT(file)
        #expect(
            records == [
                [Message(role: .user, content: "Add\n\n2 and 3"), Message(role: .assistant, content: "5")],
                [Message(role: .user, content: "Hi"), Message(role: .assistant, content: "Hello")]
            ])
    }

    @Test(arguments: [
        (#"{"instruction": "x", "output": 3}"#, "expected {"),
        (#"{"messages": [{"role": "robot", "content": "x"}]}"#, "role"),
        (#"{"instruction": "x", "output": "y""#, "not a JSON object")
    ])
    func malformedLineNamesFileAndLine(line: String, message: String) throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.jsonl")
        try ([#"{"instruction": "a", "output": "b"}"#, "", line].joined(separator: "\n")).write(to: file, atomically: true, encoding: .utf8)
        #expect {
            try DataLoader.loadSFT(file)
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("\(file.path):3: ") && text.contains(message)
        }
    }

    @Test func pretrainingWindowsCoverEveryToken() {
        let examples = DataLoader.pretrainingExamples(["abcdefg", "hi"], maxSeqLen: 4)
        let stream =
            [Tokenizer.bos] + Tokenizer.encode("abcdefg") + [Tokenizer.eos, Tokenizer.bos] + Tokenizer.encode("hi") + [Tokenizer.eos]
        #expect(examples.flatMap(\.targets) == Array(stream.dropFirst()))
        #expect(examples.allSatisfy { $0.tokens.count <= 4 })
    }

    @Test func outOfRangeConfigIsRefused() {
        #expect {
            try TrainOptions(
                mode: .sft,
                parameters: [
                    "base_model": "base", "dataset": "d.jsonl", "lr": -1, "mix_ratio": 1.0,
                    "lora_targets": ["q_proj", "qkv"], "batch_size": 2.5
                ])
        } throws: { error in
            let text = String(describing: error)
            return text.contains("lr must be") && text.contains("mix_ratio must be") && text.contains("unknown module qkv")
                && text.contains("batch_size must be an integer")
        }
        let ok = try? TrainOptions(
            mode: .sft, parameters: ["base_model": "base", "dataset": "d.jsonl", "lora_targets": "q_proj,o_proj", "extra": 1])
        #expect(ok?.lora_targets == [.q_proj, .o_proj] && ok?.unknownParameters == ["extra"])
    }
}
