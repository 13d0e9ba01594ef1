import Foundation
import Testing
@testable import TrainingCore

/// The key/value-cache decoder the scorer runs on gives the full forward pass's logits, so an evaluation scores
/// the same whichever path computes it.
@Suite("Decoder with a key/value cache")
struct DecoderTests {
    // Grouped kv heads and an untied head, so every shape path of attention is exercised.
    let config = LlamaConfig(
        hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
        num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: false)

    func model(seed: UInt64 = 7) -> LlamaModel<Float> {
        var rng = SeededGenerator(seed: seed)
        let w = LlamaWeights<Float>(config)
        w.initialise(std: 0.1, rng: &rng)
        return LlamaModel(config: config, weights: w)
    }

    /// Every element within `tolerance`, and none NaN (a NaN fails `<`, where `max` would hide it).
    func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < tolerance }
    }

    @Test func branchesAfterACachedPrefixMatchTheFullPass() {
        let m = model(), vocab = config.vocab_size
        let prefix = Tokenizer.encode("the usual dose of ")
        let branches = [Tokenizer.encode("20 mg"), Tokenizer.encode("5 mg twice"), Tokenizer.encode("x")]
        let decoder = Decoder(m)
        let prefixLogits = decoder.run([prefix], commit: true)[0]
        #expect(decoder.length == prefix.count)
        #expect(close(prefixLogits, logits(m, tokens: prefix)))
        let out = decoder.run(branches)
        #expect(out.count == 3 && decoder.length == prefix.count, "branches must leave the cache as it was")
        for (branch, got) in zip(branches, out) {
            let full = logits(m, tokens: prefix + branch)
            #expect(close(got, Array(full[(prefix.count * vocab)...])), "branch \(branch)")
        }
    }

    @Test func oneTokenAtATimeMatchesTheFullPass() {
        let m = model(seed: 8), vocab = config.vocab_size
        let tokens = Tokenizer.encode("greedy decoding appends")
        let decoder = Decoder(m)
        var rows: [Float] = decoder.run([Array(tokens.prefix(5))], commit: true)[0]
        for t in tokens.dropFirst(5) { rows += decoder.run([[t]], commit: true)[0] }
        #expect(decoder.length == tokens.count && rows.count == tokens.count * vocab)
        #expect(close(rows, logits(m, tokens: tokens)))
        decoder.truncate(to: 3)
        #expect(decoder.length == 3 && decoder.room == config.max_position_embeddings - 3)
    }

    /// The scorer's answers for choices that share a context and a first word (one choice a prefix of another) are
    /// the sums of the full pass's log-probabilities.
    @Test func scorerLogLikelihoodsAreTheFullPassSums() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = model(seed: 9)
        try Checkpoint.saveModel(m.weights, config: config, to: dir)
        let scorer = try Scorer(modelDir: dir)
        let continuations = ["Take 20 mg.", "Take 20 mg twice.", "Take 5 mg.", "Never."]
        let lines = continuations.enumerated().map { i, c in
            #"{"id": \#(i), "prompt": "dose?", "continuation": "\#(c)", "template": "raw"}"#
        }
        let answers = scorer.answer(lines).map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(answers.count == 4)
        let context = [Tokenizer.bos] + Tokenizer.encode("dose?"), vocab = config.vocab_size
        for (answer, text) in zip(answers, continuations) {
            let continuation = Tokenizer.encode(text)
            let full = logits(m, tokens: context + continuation)
            var expected = 0.0
            for (i, token) in continuation.enumerated() {
                let row = Array(full[((context.count + i - 1) * vocab)..<((context.count + i) * vocab)]).map(Double.init)
                let top = row.max()!
                expected += row[Int(token)] - (top + log(row.reduce(0) { $0 + exp($1 - top) }))
            }
            let got = try #require(answer["logprob"] as? Double, "\(answer)")
            #expect(abs(got - expected) < 1e-3, "\(text): \(got) vs \(expected)")
            #expect(answer["n_tokens"] as? Int == continuation.count)
        }
    }

    /// Items are shared among decoders on several threads, each item whole on one: the answers are the same bits
    /// whatever the thread count.
    @Test func answersDoNotDependOnTheThreadCount() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Checkpoint.saveModel(model(seed: 10).weights, config: config, to: dir)
        var lines: [String] = []
        for item in 0..<7 {
            for choice in ["yes, item \(item)", "no, item \(item)", "yes"] {
                lines.append(
                    #"{"id": "\#(item)-\#(choice)", "prompt": "question \#(item)?", "continuation": "\#(choice)", "template": "chat"}"#)
            }
            lines.append(#"{"id": "gen-\#(item)", "prompt": "say \#(item)", "max_tokens": 12, "template": "chat"}"#)
        }
        let one = try Scorer(modelDir: dir, maxBatch: 64, threads: 1).answer(lines)
        let two = try Scorer(modelDir: dir, maxBatch: 64, threads: 2).answer(lines)
        let three = try Scorer(modelDir: dir, maxBatch: 64, threads: 3).answer(lines)
        #expect(one.count == lines.count && one.allSatisfy { $0.contains("\"logprob\"") || $0.contains("\"text\"") }, "\(one)")
        #expect(one == two && two == three)
    }
}
