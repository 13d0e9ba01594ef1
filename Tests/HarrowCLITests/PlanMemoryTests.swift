import Foundation
import Testing

/// `harrow plan`'s memory estimate end to end: a folder with a model's config.json and an experiment naming it.
@Suite struct PlanMemoryTests {
    /// A folder holding `model/config.json` (a small Llama shape: h 64, i 128, 2 layers, 4 heads, 2 kv heads, vocab
    /// 100, untied, bf16) and `exp.yaml` with two LoRA ranks and a hub model that has no local config.
    func folder() throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/model", withIntermediateDirectories: true)
        try """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
        """.write(toFile: dir + "/model/config.json", atomically: true, encoding: .utf8)
        try """
        name: mem
        method: grid
        parameters:
          model_name_or_path: {values: [model, Org/hub-model]}
          lora_rank: {values: [4, 8]}
          lora_target: {value: "q_proj,v_proj"}
          per_device_train_batch_size: {value: 2}
          cutoff_len: {value: 8}
          disable_gradient_checkpointing: {value: true}
        trainer: {profile: llamafactory, config: lf.yaml}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        try "bf16: true\nstage: sft\n".write(toFile: dir + "/lf.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func tableHasAMemoryColumn() throws {
        let dir = try folder()
        let r = try Harrow.run(["plan", "exp.yaml"], in: dir)
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("#") })
        #expect(header.hasSuffix("memory"))
        // Trials 1 and 2 read model/config.json; the hub name has none, so a dash.
        let rows = lines.filter { $0.range(of: #"^\d+  [0-9a-f]{12}  "#, options: .regularExpression) != nil }
        #expect(rows.count == 4)
        #expect(rows[0].hasSuffix("512.3 MiB") && rows[1].hasSuffix("–") && rows[3].hasSuffix("–"))
    }

    @Test func jsonHasTermsAndReasons() throws {
        let dir = try folder()
        let r = try Harrow.run(["plan", "exp.yaml", "--json"], in: dir)
        #expect(r.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let trials = try #require(json["trials"] as? [[String: Any]])
        let memory = try #require(trials[0]["memory"] as? [String: Any])
        let terms = try #require(memory["terms"] as? [String: Int])
        // Worked in Tests/SweepTests/MemoryEstimateTests.swift (loraOnTheSmallShapeTermByTerm): r 4 on q and v, bf16,
        // 2 × 8 tokens, SDPA, no checkpointing.
        #expect(
            terms == [
                "weights": 173_696, "lora_params": 7_168, "gradients": 7_168, "optimizer_states": 14_336, "optimizer_step": 7_168,
                "activations": 70_144, "logits": 22_400, "cuda_context": 536_870_912, "allocator_slack": 28_774
            ])
        #expect(memory["total_bytes"] as? Int == 537_187_430)
        let hub = try #require(trials[1]["memory"] as? [String: Any])
        #expect(hub["total_bytes"] is NSNull)
        #expect(hub["reason"] as? String == "no Org/hub-model/config.json (a hub name? download the model and name its folder)")
    }

    @Test func memoryFlagShowsEachEstimateOnce() throws {
        let dir = try folder()
        let r = try Harrow.run(["plan", "exp.yaml", "--memory"], in: dir, environment: ["COLUMNS": "200"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("memory: 512.3 MiB peak (trial #1)"))
        #expect(r.stdout.contains("memory: no estimate (2 of 4 trials: #2, #4): no Org/hub-model/config.json"))
        #expect(r.stdout.contains("  weights           169.6 KiB  86,848 params × 2 B (bf16)"))
        #expect(
            r.stdout.contains(
                "  activations       68.5 KiB   2 layers × 16 tokens × 2,688 B/token + adapters' A outputs − 512 B/token frozen projections do not keep"
            ))
        #expect(
            r.stdout.contains(
                "  peak = weights + lora_params + optimizer_states + max(activations + logits, gradients + optimizer_step) + cuda_context + allocator_slack"
            ))
        #expect(r.stdout.contains("assumes: LoRA adapters, their gradients and AdamW moments in fp32"))
    }
}
