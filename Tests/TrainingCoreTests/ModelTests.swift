import Foundation
import Testing
@testable import TrainingCore

func logits(_ m: LlamaModel<Float>, tokens: [Int32]) -> [Float] {
    let ws = m.makeWorkspace(batch: 1, seqLen: tokens.count)
    for (i, t) in tokens.enumerated() { ws.tokens[i] = t }
    m.forward(ws, batch: 1, seqLen: tokens.count, training: false)
    return Array(ws.logits.buffer.prefix(tokens.count * m.config.vocab_size))
}

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-tc-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Model, adapters and checkpoints")
struct ModelTests {
    let config = LlamaConfig(
        hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
        num_key_value_heads: 2, max_position_embeddings: 32, tie_word_embeddings: false)
    let tokens = Tokenizer.encode("harrow trains small models")

    func base(seed: UInt64 = 1) -> LlamaWeights<Float> {
        var rng = SeededGenerator(seed: seed)
        let w = LlamaWeights<Float>(config)
        w.initialise(std: 0.1, rng: &rng)
        return w
    }

    @Test func freshAdapterGivesExactlyTheBaseOutputs() {
        var rng = SeededGenerator(seed: 2)
        let w = base()
        let lora = LoRA<Float>(config: LoRAConfig(r: 4, lora_alpha: 8, target_modules: Projection.allCases), model: config, rng: &rng)
        #expect(lora.all.allSatisfy { a in a.B.array.allSatisfy { $0 == 0 } && a.A.array.contains { $0 != 0 } })
        #expect(
            logits(LlamaModel(config: config, weights: w), tokens: tokens)
                == logits(LlamaModel(config: config, weights: w, lora: lora), tokens: tokens))
    }

    @Test func mergedAndUnmergedAdaptersGiveTheSameLogits() {
        var rng = SeededGenerator(seed: 3)
        let lora = LoRA<Float>(
            config: LoRAConfig(r: 4, lora_alpha: 8, target_modules: [.q_proj, .v_proj, .down_proj]), model: config, rng: &rng)
        for a in lora.all { for i in 0..<a.B.count { a.B.data[i] = Float(rng.uniform(-0.2, 0.2)) } }
        let unmerged = logits(LlamaModel(config: config, weights: base(), lora: lora), tokens: tokens)
        let mergedWeights = base()
        lora.merge(into: mergedWeights)
        let merged = logits(LlamaModel(config: config, weights: mergedWeights), tokens: tokens)
        let baseline = logits(LlamaModel(config: config, weights: base()), tokens: tokens)
        // `max()` skips a NaN that is not first: the logits must be finite, and as many, before the maxima mean anything.
        #expect(unmerged.count == tokens.count * config.vocab_size && merged.count == unmerged.count && baseline.count == unmerged.count)
        #expect((unmerged + merged + baseline).allSatisfy { $0.isFinite })
        let worst = zip(unmerged, merged).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "worst difference \(worst)")
        #expect(zip(unmerged, baseline).map { abs($0 - $1) }.max()! > 1e-3, "the adapter must change the logits")
    }

    @Test func checkpointRoundTripsBitExactly() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = base()
        try Checkpoint.saveModel(w, config: config, to: dir.appendingPathComponent("model"))
        let (readConfig, readWeights) = try Checkpoint.loadModel(dir.appendingPathComponent("model"))
        #expect(readConfig == config)
        // `zip` stops at the shorter list: every tensor must come back, name for name.
        #expect(readWeights.named.map(\.name) == w.named.map(\.name))
        for (a, b) in zip(w.named, readWeights.named) {
            #expect(a.name == b.name)
            #expect(a.tensor.array.map(\.bitPattern) == b.tensor.array.map(\.bitPattern))
        }

        var rng = SeededGenerator(seed: 4)
        let lora = LoRA<Float>(
            config: LoRAConfig(r: 2, lora_alpha: 4, lora_dropout: 0.1, target_modules: [.q_proj, .v_proj]), model: config, rng: &rng)
        for a in lora.all { for i in 0..<a.B.count { a.B.data[i] = Float(rng.normal()) } }
        try Checkpoint.saveAdapter(lora, baseModel: "models/base", to: dir.appendingPathComponent("adapter"))
        let back = try Checkpoint.loadAdapter(dir.appendingPathComponent("adapter"), model: config)
        #expect(back.config == lora.config)
        // q_proj and v_proj of each layer, in the same places.
        #expect(lora.all.count == 2 * config.num_hidden_layers)
        #expect(back.adapters.map { $0.map { $0 != nil } } == lora.adapters.map { $0.map { $0 != nil } })
        for (a, b) in zip(lora.all, back.all) {
            #expect(a.A.array.map(\.bitPattern) == b.A.array.map(\.bitPattern))
            #expect(a.B.array.map(\.bitPattern) == b.B.array.map(\.bitPattern))
        }
    }

    /// Names and shapes as transformers and PEFT write them (see notes/hf-layout.md).
    @Test func filesUseHuggingFaceNamesAndShapes() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededGenerator(seed: 5)
        let c = LlamaConfig(vocab_size: 260, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4)
        try Checkpoint.saveModel(LlamaWeights(c), config: c, to: dir)
        let model = try SafeTensors.read(dir.appendingPathComponent(Checkpoint.modelFile))
        #expect(model.count == 20 && model["lm_head.weight"] == nil)
        #expect(model["model.embed_tokens.weight"]?.shape == [260, 64])
        #expect(model["model.layers.1.mlp.down_proj.weight"]?.shape == [64, 172])
        #expect(model["model.layers.0.post_attention_layernorm.weight"]?.shape == [64])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(json["architectures"] as? [String] == ["LlamaForCausalLM"] && json["rms_norm_eps"] as? Double == 1e-5)
        #expect((json["rope_parameters"] as? [String: Any])?["rope_theta"] as? Double == 10000)

        let lora = LoRA<Float>(config: LoRAConfig(), model: c, rng: &rng)
        try Checkpoint.saveAdapter(lora, baseModel: nil, to: dir)
        let adapter = try SafeTensors.read(dir.appendingPathComponent(Checkpoint.adapterFile))
        #expect(adapter.count == 8)
        #expect(adapter["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]?.shape == [8, 64])
        #expect(adapter["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]?.shape == [64, 8])
        let ac =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        #expect(ac["peft_type"] as? String == "LORA" && ac["task_type"] as? String == "CAUSAL_LM" && ac["r"] as? Int == 8)
        #expect(ac["target_modules"] as? [String] == ["q_proj", "v_proj"])
    }

    /// tokenizer.json maps every byte to its own id and the special tokens to theirs (checked against transformers'
    /// AutoTokenizer by `make check-hf`).
    @Test func tokenizerFilesGiveOurIds() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Checkpoint.writeTokenizer(to: dir)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        let vocab = (json["model"] as! [String: Any])["vocab"] as! [String: Int]
        #expect(Set(vocab.values) == Set(0..<256) && vocab["a"] == 97 && vocab["\u{120}"] == 32 && vocab["\u{100}"] == 0)
        let added = (json["added_tokens"] as! [[String: Any]]).map { ($0["id"] as! Int, $0["content"] as! String) }
        #expect(added.map(\.0) == Array(256..<Tokenizer.vocabSize) && added.allSatisfy { Tokenizer.specialNames[Int32($0.0)] == $0.1 })
        let config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json"))) as! [String: Any]
        #expect(
            config["bos_token"] as? String == "<|begin_of_text|>" && (config["chat_template"] as? String)?.contains("<|assistant|>") == true
        )
    }

    @Test func scheduleWarmsUpThenDecays() {
        let cosine = LRSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, kind: .cosine, minRatio: 0.1)
        #expect(cosine.lr(at: 0) == 0 && cosine.lr(at: 5) == 0.5 && cosine.lr(at: 10) == 1)
        #expect(abs(cosine.lr(at: 60) - 0.55) < 1e-12 && abs(cosine.lr(at: 110) - 0.1) < 1e-12)
        let linear = LRSchedule(peak: 2, warmupSteps: 0, totalSteps: 10, kind: .linear)
        #expect(linear.lr(at: 0) == 2 && linear.lr(at: 5) == 1 && linear.lr(at: 10) == 0)
    }

    @Test func mixRatioIsTheGeneralShare() {
        #expect(DataMixing.generalCount(domain: 300, mixRatio: 0.25) == 100)
        #expect(DataMixing.generalCount(domain: 10, mixRatio: 0) == 0)
        var rng = SeededGenerator(seed: 6)
        let drawn = DataMixing.draw(Array(0..<4), count: 10, rng: &rng)
        #expect(drawn.count == 10 && Set(drawn.prefix(4)) == Set(0..<4) && Set(drawn[4..<8]) == Set(0..<4))
    }
}
