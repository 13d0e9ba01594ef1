import Foundation
import HarrowCore
import Testing
@testable import Sweep

/// `MemoryEstimate` on worked cases: every byte count below is worked out by hand from the formulas in
/// Sources/Sweep/MemoryEstimate.swift, and the parameter counts of real models from their published config.json.
@Suite struct MemoryEstimateTests {
    typealias Shape = MemoryEstimate.ModelShape

    /// A small Llama-shaped model with grouped kv heads and an untied head: h 64, i 128, 2 layers, 4 heads of 16, 2 kv
    /// heads, vocab 100.
    static let small = Shape(hiddenSize: 64, intermediateSize: 128, layers: 2, attentionHeads: 4, keyValueHeads: 2, vocabSize: 100)

    /// Gradient accumulation keeps the gradients through the later micro-batches' backward passes. Measured with
    /// scripts/oom_trainer.py's live-tensor tally (experiments/gpu-oom/model, full fine-tuning in fp32, micro-batch
    /// 4 × 512): peaks of 955.15 MiB accumulating 1 and 989.42 MiB accumulating 2, 34.27 MiB apart, the size of the
    /// gradients. The estimate's allocated bytes (its total less the CUDA context and slack) rise by exactly the
    /// gradients, and stay within 2% of each peak.
    @Test func accumulationHoldsTheGradientsThroughTheBackwardPass() throws {
        let text = try String(
            contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/experiments/gpu-oom/model/config.json", encoding: .utf8)
        let shape = try Shape.parse(configJSON: text)
        func allocated(_ accumulation: Int) -> Int {
            let e = MemoryEstimate.estimate(
                shape,
                .init(
                    training: .full, weights: .fp32, microBatch: 4, sequenceLength: 512,
                    gradientAccumulation: accumulation))
            return e.total - e.bytes("cuda_context") - e.bytes("allocator_slack")
        }
        let gradients = MemoryEstimate.estimate(shape, .init(training: .full, weights: .fp32, microBatch: 4, sequenceLength: 512)).bytes(
            "gradients")
        #expect(allocated(2) - allocated(1) == gradients)
        #expect(allocated(4) == allocated(2))
        let mib = 1_048_576.0
        for (accumulation, measured) in [(1, 955.15), (2, 989.42)] {
            let error = Double(allocated(accumulation)) / mib / measured - 1
            #expect(
                abs(error) < 0.02,
                "accumulating \(accumulation): \(Double(allocated(accumulation)) / mib) MiB estimated, \(measured) measured")
        }
    }

    @Test func parametersOfTheSmallShape() {
        // q 64·64 + k 64·32 + v 64·32 + o 64·64 = 12,288; MLP 3·64·128 = 24,576; 2 norms 128 → 36,992 a layer.
        #expect(Self.small.linearParametersPerLayer == 36_864)
        #expect(Self.small.normParametersPerLayer == 128)
        // 2 layers 73,984 + embeddings 6,400 + head 6,400 + final norm 64.
        #expect(Self.small.parameters == 86_848)
    }

    /// LoRA r 4 on q_proj and v_proj, bf16 weights, micro-batch 2 × 8 tokens, SDPA, no checkpointing, no dropout.
    @Test func loraOnTheSmallShapeTermByTerm() {
        let s = MemoryEstimate.Settings(
            training: .lora(rank: 4, targets: ["q_proj", "v_proj"], dropout: 0), weights: .bf16,
            microBatch: 2, sequenceLength: 8)
        let e = MemoryEstimate.estimate(Self.small, s)
        #expect(e.bytes("weights") == 173_696)  // 86,848 × 2
        // 2 layers × (4·(64 + 64) + 4·(64 + 32)) = 1,792 adapter params, 4 B each; the same again as gradients, twice as
        // AdamW moments.
        #expect(e.bytes("lora_params") == 7_168)
        #expect(e.bytes("gradients") == 7_168)
        #expect(e.bytes("optimizer_states") == 14_336)
        // Per token and layer: 2·(4 + 2)·64 = 768 for the norms + 2·(5·64 + 4·32 + 4·128) = 1,920 → 2,688 B; adapters'
        // A outputs 2 targets × 4 × 2 B = 16 B; not kept for the frozen o_proj (2·64), down_proj (2·128) and the
        // post-attention norm's output only the frozen MLP reads (2·64): −512. 16 tokens × 2,192 × 2 layers.
        #expect(MemoryEstimate.layerActivationBytesPerToken(Self.small, elementBytes: 2) == 2_688)
        #expect(e.bytes("activations") == 70_144)
        // 16 tokens × vocab 100 × (2 + 4 + 4 + 4) B.
        #expect(e.bytes("logits") == 22_400)
        // Allocated: 173,696 + 7,168 + 14,336 + max(70,144 + 22,400, 7,168) = 287,744; 10% slack 28,774.4 → 28,774.
        #expect(e.bytes("allocator_slack") == 28_774)
        #expect(e.bytes("cuda_context") == 536_870_912)
        #expect(e.total == 287_744 + 28_774 + 536_870_912)
        #expect(e.bytes("optimizer_step") == 7_168)  // AdamW foreach's square roots, one per adapter param
        #expect(
            e.terms.map(\.name) == [
                "weights", "lora_params", "gradients", "optimizer_states", "optimizer_step", "activations",
                "logits", "cuda_context", "allocator_slack"
            ])
    }

    @Test func gradientCheckpointingKeepsLayerInputsAndOneLayer() {
        let s = MemoryEstimate.Settings(
            training: .lora(rank: 4, targets: ["q_proj", "v_proj"], dropout: 0), weights: .bf16,
            microBatch: 2, sequenceLength: 8, gradientCheckpointing: true)
        // 2 layer inputs × 16 tokens × 64 × 2 B = 4,096, plus one layer 16 × 2,192 = 35,072.
        #expect(MemoryEstimate.estimate(Self.small, s).bytes("activations") == 39_168)
    }

    @Test func eagerAttentionAndLoraDropout() {
        let s = MemoryEstimate.Settings(
            training: .lora(rank: 4, targets: ["q_proj"], dropout: 0.05), weights: .fp32,
            microBatch: 1, sequenceLength: 8, memoryEfficientAttention: false, cuda: false)
        let e = MemoryEstimate.estimate(Self.small, s)
        // fp32: 2·(4 + 4)·64 + 4·(5·64 + 4·32 + 4·128) = 1,024 + 3,840 = 4,864 B a token; q_proj's adapter keeps A's
        // output 4·4 and, with dropout, its dropped input 64·4 and a mask 64·1: 336 B; the frozen o_proj, down_proj and
        // MLP norm keep nothing of their own: −(4·64 + 4·128 + 4·64) = −1,024. Eager attention in fp32 keeps one copy of
        // the probabilities: 1 × 4 heads × 8² × 4 B = 1,024. Per layer 8 × 4,176 + 1,024 = 34,432; 2 layers.
        #expect(e.bytes("activations") == 68_864)
        // 8 tokens × 100 × (4 + 4 + 4) B in fp32.
        #expect(e.bytes("logits") == 9_600)
        #expect(e.bytes("cuda_context") == 0 && e.bytes("allocator_slack") == 0)
    }

    @Test func fullFineTuningTakesTheLargerOfActivationsAndGradients() {
        let s = MemoryEstimate.Settings(training: .full, weights: .bf16, microBatch: 1, sequenceLength: 1, cuda: false)
        let e = MemoryEstimate.estimate(Self.small, s)
        #expect(e.bytes("weights") == 173_696 && e.bytes("gradients") == 173_696 && e.bytes("optimizer_states") == 347_392)
        // One token: activations 2 × 2,688 and logits 100 × 14 are well under the gradients, so the peak is
        // weights + moments + gradients + AdamW foreach's square roots, in the optimiser step.
        #expect(e.bytes("activations") == 5_376 && e.bytes("logits") == 1_400 && e.bytes("optimizer_step") == 173_696)
        #expect(e.total == 173_696 + 347_392 + 173_696 + 173_696)
    }

    /// QLoRA's NF4 (Dettmers et al. 2023 §2): 4-bit codes, an 8-bit constant per 64 weights, an fp32 constant per 256
    /// of those: 0.127 bits of constants a weight; 0.5 bits with fp32 constants and no double quantisation.
    @Test func nf4Bytes() {
        // 4096² weights: 8,388,608 B of codes + 262,144 blocks × 1 B + 1,024 second-level blocks × 4 B.
        #expect(MemoryEstimate.nf4Bytes(16_777_216, doubleQuantisation: true) == 8_654_848)
        #expect(Double((262_144 + 4_096) * 8) / 16_777_216 == 0.126953125)
        #expect(MemoryEstimate.nf4Bytes(16_777_216, doubleQuantisation: false) == 8_388_608 + 4 * 262_144)
        // A partial block still has its constant: 100 weights → 50 B + 2 blocks + one fp32 second-level constant.
        #expect(MemoryEstimate.nf4Bytes(100, doubleQuantisation: true) == 56)
    }

    @Test func quantisedWeightsOfTheSmallShape() {
        func weights(_ format: MemoryEstimate.WeightFormat) -> Int {
            MemoryEstimate.estimate(
                Self.small,
                .init(
                    training: .lora(rank: 4, targets: ["q_proj"], dropout: 0), weights: format,
                    microBatch: 1, sequenceLength: 1)
            ).bytes("weights")
        }
        // NF4 per layer: q and o 4,096 → 2,116; k and v 2,048 → 1,060; gate, up, down 8,192 → 4,228: 19,036; 2 layers
        // 38,072. Embeddings, head and norms (13,120) stay in 16 bits: 26,240.
        #expect(weights(.nf4) == 64_312)
        // int8: 73,728 projection weights × 1 B + 2 × 512 output rows × 4 B + 13,120 × 2 B.
        #expect(weights(.int8) == 104_064)
        #expect(weights(.fp32) == 347_392 && weights(.fp16) == 173_696)
    }

    // MARK: Real configs

    /// meta-llama/Llama-2-7b-hf's config.json (the values the Llama-2 7B checkpoint ships with; huggingface.co).
    static let llama2 = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008, "model_type": "llama",
         "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "tie_word_embeddings": false,
         "torch_dtype": "float16", "vocab_size": 32000}
        """
    /// meta-llama/Meta-Llama-3-8B (huggingface.co/pandyamarut/Meta-Llama-3-8B/blob/3689724/config.json, a copy).
    static let llama3 = """
        {"hidden_size": 4096, "intermediate_size": 14336, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
         "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256}
        """
    /// Qwen/Qwen2.5-7B (huggingface.co/ksh1119/qwen2.5_7b_kor_cp_it/blob/8da42ce/config.json, a fine-tune keeping its
    /// shape): no attention_bias, yet Qwen2 has q, k, v biases.
    static let qwen25 = """
        {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "intermediate_size": 18944, "model_type": "qwen2",
         "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "tie_word_embeddings": false,
         "torch_dtype": "bfloat16", "vocab_size": 152064}
        """
    /// mistralai/Mistral-7B-v0.1 (huggingface.co/dmayboroda/42_mistral_0.1/blob/367d8cb/config.json, a copy).
    static let mistral = """
        {"hidden_size": 4096, "intermediate_size": 14336, "model_type": "mistral", "num_attention_heads": 32,
         "num_hidden_layers": 32, "num_key_value_heads": 8, "sliding_window": 4096, "tie_word_embeddings": false, "vocab_size": 32000}
        """
    /// google/gemma-2b (huggingface.co/RESMPDEV/Gemma-Wukong-2b/blob/7fb748d/config.json, a copy): head_dim 256 with
    /// 8 heads of a 2048 hidden size, one kv head, and no tie_word_embeddings (GemmaConfig ties by default).
    static let gemma = """
        {"architectures": ["GemmaForCausalLM"], "attention_bias": false, "head_dim": 256, "hidden_size": 2048,
         "intermediate_size": 16384, "model_type": "gemma", "num_attention_heads": 8, "num_hidden_layers": 18,
         "num_key_value_heads": 1, "torch_dtype": "bfloat16", "vocab_size": 256000}
        """

    @Test func parameterCountsOfPublishedModels() throws {
        // Llama-2-7B: 6.74B. 32 × (4·4096² + 3·4096·11008 + 2·4096) + 2 × 32000·4096 + 4096.
        #expect(try Shape.parse(configJSON: Self.llama2).parameters == 6_738_415_616)
        // Llama-3-8B: 8.03B. 32 × (2·4096² + 2·4096·1024 + 3·4096·14336 + 8192) + 2 × 128256·4096 + 4096.
        #expect(try Shape.parse(configJSON: Self.llama3).parameters == 8_030_261_248)
        // Qwen2.5-7B: 7.61B, with 28 × (3584 + 2·512) q/k/v biases.
        let qwen = try Shape.parse(configJSON: Self.qwen25)
        #expect(qwen.qkvBias && !qwen.tiedEmbeddings && qwen.headDim == 128)
        #expect(qwen.parameters == 7_615_616_512)
        // Mistral-7B: 7.24B.
        #expect(try Shape.parse(configJSON: Self.mistral).parameters == 7_241_732_096)
        // Gemma-2B: 2.51B, its head tied to the embeddings.
        let gemma = try Shape.parse(configJSON: Self.gemma)
        #expect(gemma.tiedEmbeddings && gemma.headDim == 256 && gemma.keyValueHeads == 1)
        #expect(gemma.parameters == 2_506_172_416)
    }

    @Test func configVariants() throws {
        // A tied Qwen (Qwen2.5-0.5B's shape): the head costs nothing.
        let tied = try Shape.parse(
            configJSON: """
                {"hidden_size": 896, "intermediate_size": 4864, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
                 "num_key_value_heads": 2, "tie_word_embeddings": true, "vocab_size": 151936}
                """)
        #expect(tied.tiedEmbeddings && tied.headParameters == 0)
        // Qwen2.5-0.5B: 0.49B. 24 × (2·896² + 2·896·128 + 896 + 2·128 + 3·896·4864 + 2·896) + 151936·896 + 896.
        #expect(tied.parameters == 494_032_768)
        // Missing num_key_value_heads and head_dim: as many kv heads as heads, hidden / heads each.
        let llama = try Shape.parse(
            configJSON:
                #"{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}"#)
        #expect(llama.keyValueHeads == 4 && llama.headDim == 16 && !llama.tiedEmbeddings && llama.modelType == "llama")
        // transformers ≥ 4.56 writes `dtype`; a multimodal config keeps the text model under text_config.
        let nested = try Shape.parse(
            configJSON:
                #"{"model_type": "gemma3", "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 100, "dtype": "bfloat16"}}"#
        )
        #expect(nested.modelType == "gemma3" && nested.headDim == 32 && nested.tiedEmbeddings && nested.dtype == "bfloat16")
        // Gemma 3: four norms a layer and q/k norms over a head: 4·64 + 2·32.
        #expect(nested.normParametersPerLayer == 320)
    }

    @Test func missingOrBadFieldsAreNamed() {
        #expect(throws: MemoryEstimate.ShapeError("config.json has no intermediate_size")) {
            try Shape.parse(configJSON: #"{"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}"#)
        }
        #expect(throws: MemoryEstimate.ShapeError("config.json's vocab_size is not a positive integer")) {
            try Shape.parse(
                configJSON:
                    #"{"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": "big"}"#)
        }
        #expect(throws: MemoryEstimate.ShapeError("config.json is not a JSON object")) { try Shape.parse(configJSON: "[1]") }
    }

    // MARK: Trial settings by name

    /// The estimate of the first trial of `yaml`, with the model's config.json read from `files` by path.
    func outcome(_ yaml: String, config: [String: ParamValue] = [:], files: [String: String]) throws -> Result<
        MemoryEstimate.Estimate, MemoryEstimate.Unavailable
    > {
        let p = try plan(yaml)
        return MemoryEstimate.forTrial(p.trials[0], trainer: p.experiment.trainer, config: config) { files[$0] }
    }

    func settings(_ yaml: String, config: [String: ParamValue] = [:], shape: Shape = small) throws -> MemoryEstimate.Settings? {
        let p = try plan(yaml)
        return try? MemoryEstimate.settings(p.trials[0], trainer: p.experiment.trainer, config: config, shape: shape).get()
    }

    @Test func harrowNamesUnderHarrowTrain() throws {
        let s = try #require(
            try settings(
                """
                parameters: {base_model: {value: chat}, batch_size: {value: 16}, max_seq_len: {value: 192}, lora_r: {value: 32},
                             lora_targets: {value: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}}
                """))
        #expect(s.training == .lora(rank: 32, targets: Shape.projectionNames, dropout: 0.05))  // harrow-train's dropout
        #expect(s.weights == .fp32 && !s.halfActivations && !s.cuda && !s.memoryEfficientAttention && !s.gradientCheckpointing)
        #expect(s.microBatch == 16 && s.sequenceLength == 192)
        let p = try plan("parameters: {base_model: {value: chat}}")
        #expect(try MemoryEstimate.modelConfigPath(p.trials[0], trainer: p.experiment.trainer).get() == "models/chat/config.json")
        // Everything else from harrow-train's defaults: batch 8 × 128 tokens, r 8 on q and v.
        let d = try #require(try settings("parameters: {base_model: {value: base}, full_finetune: {value: true}}"))
        #expect(d.training == .full && d.microBatch == 8 && d.sequenceLength == 128)
    }

    @Test func llamaFactoryNamesAndDefaults() throws {
        let yaml = """
            parameters:
              model_name_or_path: {value: /m/qwen}
              lora_rank: {value: 16}
              cutoff_len: {value: 1024}
              per_device_train_batch_size: {value: 4}
              quantization_bit: {value: 4}
            trainer: {profile: llamafactory, config: lf.yaml}
            """
        let s = try #require(try settings(yaml, config: ["bf16": .bool(true), "lora_target": .string("all")]))
        #expect(s.training == .lora(rank: 16, targets: Shape.projectionNames, dropout: 0))
        #expect(s.weights == .nf4 && s.halfActivations && s.doubleQuantisation && s.cuda)
        #expect(s.microBatch == 4 && s.sequenceLength == 1024)
        // LLaMA-Factory checkpoints gradients unless told not to, and uses SDPA.
        #expect(s.gradientCheckpointing && s.memoryEfficientAttention)
        // Its defaults: lora_target all, cutoff_len 2048, batch 8; a bf16 checkpoint loads in bf16.
        let bf16 = Shape(hiddenSize: 64, intermediateSize: 128, layers: 2, attentionHeads: 4, vocabSize: 100, dtype: "bfloat16")
        let d = try #require(
            try settings("parameters: {lr: {value: 1.0e-4}}\ntrainer: {profile: llamafactory, config: lf.yaml}", shape: bf16))
        #expect(d.training == .lora(rank: 8, targets: Shape.projectionNames, dropout: 0) && d.sequenceLength == 2048 && d.microBatch == 8)
        #expect(d.weights == .bf16)
        // Full fine-tuning keeps fp32 trainable weights (LLaMA-Factory upcasts them) with bf16 autocast.
        let full = try #require(
            try settings(
                "parameters: {lr: {value: 1.0e-4}}\ntrainer: {profile: llamafactory, config: lf.yaml}",
                config: [
                    "finetuning_type": .string("full"), "bf16": .bool(true),
                    "disable_gradient_checkpointing": .bool(true), "flash_attn": .string("disabled")
                ]))
        #expect(full.training == .full && full.weights == .fp32 && full.halfActivations)
        #expect(!full.gradientCheckpointing && !full.memoryEfficientAttention)
        // The trial's Harrow names go through the profile's map: lora_r → lora_rank, max_seq_len → cutoff_len.
        let mapped = try #require(
            try settings(
                "parameters: {lora_r: {value: 64}, max_seq_len: {value: 512}}\ntrainer: {profile: llamafactory, config: lf.yaml}",
                config: ["lora_rank": .int(8), "cutoff_len": .int(4096), "lora_target": .string("q_proj,v_proj")]))
        #expect(mapped.training == .lora(rank: 64, targets: ["q_proj", "v_proj"], dropout: 0) && mapped.sequenceLength == 512)
    }

    @Test func trainingArgumentsNames() throws {
        let s = try #require(
            try settings(
                """
                parameters: {per_device_train_batch_size: {value: 2}, max_length: {value: 4096}, lora_r: {value: 8},
                             target_modules: {value: all-linear}, torch_dtype: {value: bfloat16}, gradient_checkpointing: {value: true},
                             load_in_8bit: {value: true}}
                trainer: {profile: hf, program: train.py}
                """))
        #expect(s.training == .lora(rank: 8, targets: Shape.projectionNames, dropout: 0))
        #expect(s.weights == .int8 && s.microBatch == 2 && s.sequenceLength == 4096 && s.gradientCheckpointing && !s.doubleQuantisation)
        // Without a dtype, transformers loads fp32; bf16 only turns on autocast.
        let autocast = try #require(
            try settings(
                "parameters: {max_length: {value: 512}, lora_r: {value: 8}, bf16: {value: true}}\ntrainer: {profile: hf, program: train.py}"
            ))
        #expect(autocast.weights == .fp32 && autocast.halfActivations && autocast.microBatch == 8)
    }

    @Test func whyThereIsNoEstimate() throws {
        let lf = "trainer: {profile: llamafactory, config: lf.yaml}"
        #expect(
            try outcome("parameters: {model_name_or_path: {value: Qwen/Qwen2.5-7B}}\n" + lf, files: [:])
                == .failure(.init("no Qwen/Qwen2.5-7B/config.json (a hub name? download the model and name its folder)")))
        #expect(try outcome("parameters: {lr: {value: 0.1}}\n" + lf, files: [:]) == .failure(.init("no base_model or model_name_or_path")))
        #expect(
            try outcome("parameters: {model_name_or_path: {value: m}}\n" + lf, files: ["m/config.json": "{}"])
                == .failure(.init("m/config.json: config.json has no hidden_size")))
        #expect(
            try outcome(
                "parameters: {model_name_or_path: {value: m}, lora_target: {value: lm_head}}\n" + lf, files: ["m/config.json": Self.llama2])
                == .failure(.init("LoRA target lm_head is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj")))
        #expect(
            try outcome(
                "parameters: {model_name_or_path: {value: m}}\ntrainer: {profile: hf, program: t.py}", files: ["m/config.json": Self.llama2]
            )
                == .failure(.init("no sequence length (max_seq_len, cutoff_len or max_length)")))
        // A local folder with config.json has one.
        let ok = try outcome(
            "parameters: {model_name_or_path: {value: /models/llama2/}}\n" + lf, files: ["/models/llama2/config.json": Self.llama2])
        #expect(try ok.get().bytes("weights") == 6_738_415_616 * 2)  // fp16 checkpoint → fp16 weights
    }
}

/// The estimate against peaks PyTorch measured (Tests/SweepTests/Fixtures/memory/measured.json, when it is there):
/// within 15% on every case but the misses listed here with their reason.
@Suite struct MemoryMeasuredTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/memory/measured.json")
        .path
    static let tolerance = 0.15
    /// Cases (by their index in the file) the estimate misses by more than the tolerance, each with why.
    /// Cases off by more than the tolerance, each with why. #36 (56M, LoRA r 8 on q and v, pure bf16, checkpointed,
    /// 4 × 512): +18%, not yet explained. With checkpointing most of what is alive at the peak is the logits and their
    /// fp32 copies for the loss, the least certain part of the count; the same case without checkpointing is within
    /// 15% (+12%).
    static let knownMisses: [Int: String] = [36: "pure bf16 + checkpointing: over by 18%, not yet explained"]

    struct Row { var index: Int; var label: String; var estimate: Int; var measured: Int; var error: Double }

    /// Each case's estimate of what PyTorch allocates (the total less the CUDA context and allocator slack, which
    /// `max_memory_allocated` does not count) against its measured peak.
    static func rows() throws -> [Row] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: Any]])
        return try cases.enumerated().map { i, c in
            func int(_ k: String) -> Int? { (c[k] as? NSNumber)?.intValue }
            let shape = MemoryEstimate.ModelShape(
                modelType: c["model_type"] as? String ?? "llama", hiddenSize: try #require(int("hidden_size")),
                intermediateSize: try #require(int("intermediate_size")), layers: try #require(int("num_hidden_layers")),
                attentionHeads: try #require(int("num_attention_heads")), keyValueHeads: int("num_key_value_heads"),
                headDim: int("head_dim"), vocabSize: try #require(int("vocab_size")),
                tiedEmbeddings: (c["tie_word_embeddings"] as? Bool) ?? false)
            let dtype = ((c["precision"] ?? c["dtype"]) as? String ?? "fp32").lowercased()
            // measured.json's precisions: fp32; bf16 ("pure bf16": weights, gradients, states and adapters in bf16);
            // amp_bf16 (autocast, trainable weights in fp32: a full model in fp32, a LoRA base in bf16 with fp32 adapters).
            let full = (c["mode"] as? String) == "full"
            let format: MemoryEstimate.WeightFormat =
                switch dtype {
                case "amp_bf16": full ? .fp32 : .bf16
                case "bf16", "bfloat16": .bf16
                case "fp16", "float16": .fp16
                case "nf4", "4bit", "int4": .nf4
                case "int8", "8bit": .int8
                default: .fp32
                }
            let targets: [String] =
                switch c["lora_targets"] {
                case let list as [String]: list
                case let text as String:
                    text == "all" || text == "all-linear"
                        ? MemoryEstimate.ModelShape.projectionNames
                        : text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                default: ["q_proj", "v_proj"]
                }
            let training: MemoryEstimate.Training =
                full
                ? .full
                : .lora(rank: int("lora_r") ?? 8, targets: targets, dropout: (c["lora_dropout"] as? NSNumber)?.doubleValue ?? 0)
            let attention = (c["attn_implementation"] as? String ?? "sdpa").lowercased()
            let settings = MemoryEstimate.Settings(
                training: training, weights: format, halfActivations: dtype != "fp32" && dtype != "float32",
                microBatch: try #require(int("batch")), sequenceLength: try #require(int("seq_len")),
                gradientCheckpointing: (c["gradient_checkpointing"] as? Bool) ?? false, memoryEfficientAttention: attention != "eager",
                adaptersInFP32: dtype != "bf16" && dtype != "bfloat16")
            let e = MemoryEstimate.estimate(shape, settings)
            let allocated = e.total - e.bytes("cuda_context") - e.bytes("allocator_slack")
            let measured = try #require(int("peak_bytes"))
            let label =
                "\(c["name"] as? String ?? "h\(shape.hiddenSize)×\(shape.layers)") \(c["mode"] as? String ?? "lora") \(dtype) b\(settings.microBatch)×s\(settings.sequenceLength)"
                + (settings.gradientCheckpointing ? " ckpt" : "")
            return Row(
                index: i, label: label, estimate: allocated, measured: measured, error: Double(allocated - measured) / Double(measured))
        }
    }

    static func table(_ rows: [Row]) -> String {
        rows.map {
            String(format: "#%d %@: estimate %d, measured %d, %+.1f%%", $0.index, $0.label, $0.estimate, $0.measured, 100 * $0.error)
        }
        .joined(separator: "\n")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: path))) func withinFifteenPercentOfMeasuredPeaks() throws {
        let rows = try Self.rows()
        if ProcessInfo.processInfo.environment["HARROW_MEMORY_TABLE"] != nil { print(Self.table(rows)) }
        let misses = rows.filter { abs($0.error) > Self.tolerance }
        for miss in misses where Self.knownMisses[miss.index] == nil {
            let text =
                "case #\(miss.index) \(miss.label): estimate off by \(String(format: "%+.1f%%", 100 * miss.error))\n" + Self.table(rows)
            Issue.record(Comment(rawValue: text))
        }
        // A case listed as a miss that is now within the tolerance should come off the list.
        for index in Self.knownMisses.keys where !misses.contains(where: { $0.index == index }) {
            Issue.record("case #\(index) is listed as a known miss but is within \(Int(Self.tolerance * 100))%")
        }
    }
}
