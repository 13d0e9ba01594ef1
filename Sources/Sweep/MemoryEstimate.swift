import HarrowCore
import Foundation

/// Issue 33: the accelerator memory one trial's training step needs at its peak, from the model's `config.json` and
/// the trial's settings, before anything runs. `harrow plan` shows it as a column, in `--json`, and term by term with
/// `--memory`.
///
/// Pure: the caller reads `config.json` (`forTrial(_:trainer:config:readModelConfig:)` takes a reader) and the
/// trainer profile's base config. Every byte count below is an integer formula over the model's shape and the
/// trial's settings; the constants are named where they are defined, with where they come from.
///
/// What it models: a PyTorch training step of a Hugging Face decoder (Llama, Qwen2/3, Mistral, Gemma 1–3 layouts),
/// eager autograd, AdamW, one device. It does not model DeepSpeed/FSDP sharding, CPU offload, paged optimisers or
/// 8-bit optimiser states, packing, or the evaluation pass.
public enum MemoryEstimate {

    // MARK: - Constants

    /// Bytes per element of each storage format.
    public static let fp32Bytes = 4
    public static let halfBytes = 2

    /// QLoRA's NF4 storage (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs", §2 "Double
    /// Quantization"): 4 bits per weight, one absmax constant per block of 64 weights; with double quantisation those
    /// constants are themselves quantised to 8 bits in blocks of 256, each block keeping one fp32 constant
    /// (8/64 + 32/(64·256) = 0.127 bits per weight); without it each block of 64 keeps an fp32 absmax (0.5 bits per
    /// weight). bitsandbytes stores them exactly so (`Params4bit`, `blocksize=64`; the nested `QuantState` uses 256).
    public static let nf4BlockSize = 64
    public static let nf4SecondBlockSize = 256

    /// LLM.int8() storage (Dettmers et al. 2022, "LLM.int8(): 8-bit Matrix Multiplication for Transformers at Scale",
    /// §3.1 vector-wise quantisation; bitsandbytes `Int8Params`): one byte per weight and one fp32 scale per output row.
    public static let int8RowScaleBytes = 4

    /// AdamW keeps two running moments per trainable parameter (Loshchilov & Hutter 2019; `torch.optim.AdamW`'s
    /// `exp_avg`, `exp_avg_sq`), each in the parameter's dtype.
    public static let adamStatesPerParameter = 2

    /// `torch.optim.AdamW(foreach=True)`, its default for CUDA tensors, holds one more parameter-sized list while it
    /// steps: the square roots of the second moments (`torch._foreach_sqrt(exp_avg_sqs)` in torch/optim/adamw.py).
    public static let adamForeachTemporaries = 1

    /// LoRA adapters train in fp32: PEFT's `get_peft_model(autocast_adapter_dtype=True)` (the default since PEFT 0.12)
    /// upcasts 16-bit adapter weights to fp32, and LLaMA-Factory casts trainable parameters to fp32 unless `pure_bf16`.
    public static let adapterBytes = fp32Bytes

    /// The CUDA context: the driver's and PyTorch's kernels loaded on the device before the first tensor. About
    /// 300–500 MiB on recent GPUs with CUDA's lazy module loading (CUDA ≥ 11.7, `CUDA_MODULE_LOADING=LAZY`, PyTorch's
    /// default); we take the top of that range. Not in `torch.cuda.max_memory_allocated`, but in what nvidia-smi shows
    /// and what an out-of-memory error counts against.
    public static let cudaContextBytes = 512 << 20

    /// PyTorch's caching allocator reserves more than it hands out (rounded blocks, fragmentation): the gap between
    /// `max_memory_reserved` and `max_memory_allocated`, taken as this fraction of the allocated peak (a stated
    /// margin, typically 5–15% in PyTorch's own memory snapshots of transformer training).
    public static let allocatorSlackFraction = 0.10

    /// Share of a card trials may fill by their estimates, locally (`resources.gpu_memory`) and on Slurm
    /// (`executor.gpu_memory`); the rest is for fragmentation and what the estimate misses.
    public static let cardUsableShare = 0.9

    // MARK: - The model's shape

    public struct ModelShape: Sendable, Hashable {
        public var modelType: String
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var layers: Int
        public var attentionHeads: Int
        public var keyValueHeads: Int
        public var headDim: Int
        public var vocabSize: Int
        public var tiedEmbeddings: Bool
        /// Biases on q, k and v (Qwen2 always has them; elsewhere `attention_bias`, which also puts one on o).
        public var qkvBias: Bool
        public var outputBias: Bool
        public var mlpBias: Bool
        /// The 16-bit or 32-bit dtype the checkpoint is stored in (`torch_dtype`, or `dtype` in transformers ≥ 4.56).
        public var dtype: String?

        public init(
            modelType: String = "llama", hiddenSize: Int, intermediateSize: Int, layers: Int, attentionHeads: Int,
            keyValueHeads: Int? = nil, headDim: Int? = nil, vocabSize: Int, tiedEmbeddings: Bool = false,
            qkvBias: Bool = false, outputBias: Bool = false, mlpBias: Bool = false, dtype: String? = nil
        ) {
            self.modelType = modelType
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.layers = layers
            self.attentionHeads = attentionHeads
            self.keyValueHeads = keyValueHeads ?? attentionHeads
            self.headDim = headDim ?? hiddenSize / max(attentionHeads, 1)
            self.vocabSize = vocabSize
            self.tiedEmbeddings = tiedEmbeddings
            self.qkvBias = qkvBias
            self.outputBias = outputBias
            self.mlpBias = mlpBias
            self.dtype = dtype
        }

        /// One linear projection of a decoder layer (Hugging Face's module names).
        public struct Projection: Sendable, Hashable {
            public var name: String
            public var inputs: Int
            public var outputs: Int
            public var bias: Bool
            public var weights: Int { inputs * outputs }
            public var parameters: Int { weights + (bias ? outputs : 0) }
        }

        /// The seven projections of a layer, in Hugging Face's order.
        public var projections: [Projection] {
            let q = attentionHeads * headDim, kv = keyValueHeads * headDim, h = hiddenSize, i = intermediateSize
            return [
                Projection(name: "q_proj", inputs: h, outputs: q, bias: qkvBias),
                Projection(name: "k_proj", inputs: h, outputs: kv, bias: qkvBias),
                Projection(name: "v_proj", inputs: h, outputs: kv, bias: qkvBias),
                Projection(name: "o_proj", inputs: q, outputs: h, bias: outputBias),
                Projection(name: "gate_proj", inputs: h, outputs: i, bias: mlpBias),
                Projection(name: "up_proj", inputs: h, outputs: i, bias: mlpBias),
                Projection(name: "down_proj", inputs: i, outputs: h, bias: mlpBias)
            ]
        }

        public static let projectionNames = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

        /// RMSNorm weights per layer: before attention and before the MLP (Llama, Mistral, Qwen2, Gemma); Gemma 2 and 3
        /// add one after each (`post_attention_layernorm`, `pre_/post_feedforward_layernorm`); Qwen3 and Gemma 3 add
        /// `q_norm` and `k_norm` over one head.
        public var normParametersPerLayer: Int {
            let sandwich = modelType.hasPrefix("gemma2") || modelType.hasPrefix("gemma3")
            let qkNorm = modelType.hasPrefix("qwen3") || modelType.hasPrefix("gemma3")
            return (sandwich ? 4 : 2) * hiddenSize + (qkNorm ? 2 * headDim : 0)
        }

        /// Weights (and biases) of one layer's projections.
        public var linearParametersPerLayer: Int { projections.reduce(0) { $0 + $1.parameters } }
        /// The input embedding; the output head is another as many unless tied.
        public var embeddingParameters: Int { vocabSize * hiddenSize }
        public var headParameters: Int { tiedEmbeddings ? 0 : vocabSize * hiddenSize }

        /// Every parameter: embeddings, per layer its projections and norms, the final norm, the head unless tied.
        public var parameters: Int {
            embeddingParameters + layers * (linearParametersPerLayer + normParametersPerLayer) + hiddenSize + headParameters
        }

        /// The shape in `config.json`'s Hugging Face layout; a multimodal config's `text_config` when the top level
        /// has no `hidden_size`.
        public static func parse(configJSON text: String) throws(ShapeError) -> ModelShape {
            guard let data = text.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
                var config = object as? [String: Any]
            else { throw ShapeError("config.json is not a JSON object") }
            if config["hidden_size"] == nil, let text = config["text_config"] as? [String: Any] {
                config = text.merging(config.filter { $0.key == "model_type" && text["model_type"] == nil }) { a, _ in a }
            }
            func int(_ key: String) -> Int? {
                guard let n = config[key] as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue == n.doubleValue.rounded(),
                    n.doubleValue >= 1, n.doubleValue < 1e12
                else { return nil }
                return n.intValue
            }
            func required(_ key: String) throws(ShapeError) -> Int {
                guard let v = int(key) else {
                    throw ShapeError(
                        config[key] == nil || config[key] is NSNull
                            ? "config.json has no \(key)"
                            : "config.json's \(key) is not a positive integer")
                }
                return v
            }
            func bool(_ key: String) -> Bool? { (config[key] as? NSNumber).map(\.boolValue) }
            let type = (config["model_type"] as? String) ?? "llama"
            let hidden = try required("hidden_size"), intermediate = try required("intermediate_size")
            let layers = try required("num_hidden_layers"), heads = try required("num_attention_heads")
            let vocab = try required("vocab_size")
            // Defaults as transformers' config classes have them: num_key_value_heads = num_attention_heads;
            // head_dim = hidden_size / num_attention_heads (Gemma's configs state 256); tie_word_embeddings True for
            // Gemma (GemmaConfig) and False for Llama, Mistral and Qwen2; Qwen2's q/k/v always carry biases
            // (Qwen2Attention, no `attention_bias` in its config), elsewhere `attention_bias` (default False) puts one on
            // q, k, v and o.
            let gemma = type.hasPrefix("gemma")
            let attentionBias = bool("attention_bias")
            return ModelShape(
                modelType: type, hiddenSize: hidden, intermediateSize: intermediate, layers: layers, attentionHeads: heads,
                keyValueHeads: int("num_key_value_heads") ?? heads, headDim: int("head_dim") ?? hidden / heads, vocabSize: vocab,
                tiedEmbeddings: bool("tie_word_embeddings") ?? gemma,
                qkvBias: attentionBias ?? (type == "qwen2"), outputBias: attentionBias ?? false,
                mlpBias: bool("mlp_bias") ?? false,
                dtype: (config["torch_dtype"] as? String) ?? (config["dtype"] as? String))
        }
    }

    public struct ShapeError: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    // MARK: - A trial's settings

    /// How the base weights are stored on the device.
    public enum WeightFormat: String, Sendable, Hashable, CaseIterable {
        case fp32, bf16, fp16, int8, nf4
        var quantised: Bool { self == .int8 || self == .nf4 }
        /// Bytes per element of an unquantised tensor in this format (quantised models keep embeddings, norms and the
        /// head in their 16-bit compute dtype).
        var elementBytes: Int { self == .fp32 ? fp32Bytes : halfBytes }
    }

    public enum Training: Sendable, Hashable {
        case full
        case lora(rank: Int, targets: [String], dropout: Double)
    }

    public struct Settings: Sendable, Hashable {
        public var training: Training
        public var weights: WeightFormat
        /// Activations in 16 bits (bf16/fp16 weights or autocast) rather than fp32.
        public var halfActivations: Bool
        public var microBatch: Int
        public var sequenceLength: Int
        public var gradientCheckpointing: Bool
        /// SDPA's memory-efficient or flash kernels keep no seq × seq scores; eager attention does.
        public var memoryEfficientAttention: Bool
        /// NF4 with double-quantised constants (LLaMA-Factory's `double_quantization`, default true).
        public var doubleQuantisation: Bool
        /// A CUDA device (context and caching allocator); false for harrow-train, which trains on the CPU.
        public var cuda: Bool
        /// LoRA adapters in fp32 (PEFT's and LLaMA-Factory's default), or in the 16-bit dtype with everything else
        /// (LLaMA-Factory's `pure_bf16`).
        public var adaptersInFP32: Bool
        /// Micro-batches whose gradients add up before each optimiser step.
        public var gradientAccumulation: Int

        public init(
            training: Training, weights: WeightFormat, halfActivations: Bool? = nil, microBatch: Int, sequenceLength: Int,
            gradientCheckpointing: Bool = false, memoryEfficientAttention: Bool = true, doubleQuantisation: Bool = true,
            cuda: Bool = true, adaptersInFP32: Bool = true, gradientAccumulation: Int = 1
        ) {
            self.training = training
            self.weights = weights
            self.halfActivations = halfActivations ?? (weights != .fp32)
            self.microBatch = microBatch
            self.sequenceLength = sequenceLength
            self.gradientCheckpointing = gradientCheckpointing
            self.memoryEfficientAttention = memoryEfficientAttention
            self.doubleQuantisation = doubleQuantisation
            self.cuda = cuda
            self.adaptersInFP32 = adaptersInFP32
            self.gradientAccumulation = gradientAccumulation
        }

        var activationBytes: Int { halfActivations ? halfBytes : fp32Bytes }
    }

    // MARK: - The estimate

    public struct Term: Sendable, Hashable {
        /// snake_case, as `--json` writes it: weights, lora_params, gradients, optimizer_states, activations, logits,
        /// cuda_context, allocator_slack.
        public var name: String
        public var bytes: Int
        /// How it was counted, with the numbers: `6,738,415,616 params × 2 B (bf16)`.
        public var formula: String
    }

    public struct Estimate: Sendable, Hashable {
        public var terms: [Term]
        /// weights + lora_params + optimizer_states + max(activations + logits, gradients + optimizer_step) +
        /// cuda_context + allocator_slack: the backward pass frees each layer's activations as its gradients fill in, so the two do not
        /// peak together (the sum along the way is linear in the layer, largest at one end).
        /// With gradient accumulation the gradients of the earlier micro-batches stay allocated through each later
        /// backward pass, so they add to the activations instead of following them.
        public var total: Int
        /// What the numbers assume, one short clause each.
        public var assumptions: [String]
        /// Whether the backward pass holds the gradients too (gradient accumulation over several micro-batches).
        public var accumulates = false

        public func bytes(_ name: String) -> Int { terms.first { $0.name == name }?.bytes ?? 0 }
    }

    /// Weight bytes of `n` elements in NF4: n/2 bytes of 4-bit codes plus the block constants.
    public static func nf4Bytes(_ n: Int, doubleQuantisation: Bool) -> Int {
        let blocks = (n + nf4BlockSize - 1) / nf4BlockSize
        let constants =
            doubleQuantisation
            ? blocks + fp32Bytes * ((blocks + nf4SecondBlockSize - 1) / nf4SecondBlockSize)
            : fp32Bytes * blocks
        return (n + 1) / 2 + constants
    }

    /// Per-layer activation bytes kept for the backward pass, per token (`b·s` tokens), for a Hugging Face Llama-style
    /// layer under PyTorch autograd, counted as Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
    /// Transformer Models", §4.1: 34·s·b·h + 5·a·s²·b bytes for a GPT layer in 16 bits) count theirs, each saved tensor
    /// once, here for RMSNorm, RoPE, grouped kv heads and a SwiGLU MLP with `i` = intermediate_size, `kv` = kv heads ×
    /// head_dim, `q` = heads × head_dim, `e` = activation bytes (2 or 4):
    /// - each of the two RMSNorms: its input upcast to fp32 (4·h) and its output (e·h);
    /// - RoPE: q and k before rotation and their `rotate_half` copies (2e·(q + kv));
    /// - SDPA: rotated q, k, v and its output (e·(2q + 2kv)); o_proj's input, a contiguous copy (e·q);
    /// - MLP: gate and up outputs, SiLU's output, their product (4e·i).
    /// Sum: 2·(4 + e)·h + e·(5q + 4kv + 4i); 22h + 8kv + 8i bytes in 16 bits when q = h.
    public static func layerActivationBytesPerToken(_ shape: ModelShape, elementBytes e: Int) -> Int {
        let q = shape.attentionHeads * shape.headDim, kv = shape.keyValueHeads * shape.headDim
        return 2 * (fp32Bytes + e) * shape.hiddenSize + e * (5 * q + 4 * kv + 4 * shape.intermediateSize)
    }

    /// Eager attention keeps its seq × seq probabilities per head: softmax's fp32 output (4) and the copy cast to the
    /// activation dtype that multiplies v (e), in place of Korthikanti's 5·a·s²·b (scores, softmax, dropout mask).
    /// In fp32 the cast is a no-op that returns the same tensor, so one copy is kept.
    public static func eagerAttentionBytesPerScore(elementBytes e: Int) -> Int { e < fp32Bytes ? fp32Bytes + e : fp32Bytes }

    /// Logits bytes per element of b·s·vocab at the start of the backward pass: the head's output in the activation
    /// dtype (e; the model returns it, so it lives until the step ends), transformers' loss upcasting it to fp32 for
    /// cross-entropy, whose log-softmax output is saved (4), and the fp32 gradient the loss's backward writes (4), plus
    /// the fp32 copy itself when the activations are 16-bit (4).
    public static func logitsBytesPerElement(elementBytes e: Int) -> Int { e + fp32Bytes + fp32Bytes + (e < fp32Bytes ? fp32Bytes : 0) }

    public static func estimate(_ shape: ModelShape, _ s: Settings) -> Estimate {
        var terms: [Term] = []
        let e = s.activationBytes
        let formatName = s.weights.rawValue
        let perLayerLinear = shape.linearParametersPerLayer
        let linear = shape.layers * perLayerLinear
        let other = shape.parameters - linear
        var assumptions: [String] = []

        // Weights.
        switch s.weights {
        case .fp32, .bf16, .fp16:
            let bytes = shape.parameters * s.weights.elementBytes
            terms.append(
                Term(
                    name: "weights", bytes: bytes,
                    formula: "\(grouped(shape.parameters)) params × \(s.weights.elementBytes) B (\(formatName))"))
        case .nf4:
            let quantised =
                shape.layers * shape.projections.reduce(0) { $0 + nf4Bytes($1.weights, doubleQuantisation: s.doubleQuantisation) }
            let unquantised = other + shape.layers * shape.projections.reduce(0) { $0 + $1.parameters - $1.weights }
            let bytes = quantised + unquantised * halfBytes
            terms.append(
                Term(
                    name: "weights", bytes: bytes,
                    formula:
                        "\(grouped(linear - shape.layers * shape.projections.reduce(0) { $0 + $1.parameters - $1.weights })) projection weights in NF4 "
                        + "= \(grouped(quantised)) B + \(grouped(unquantised)) other params × 2 B"))
            assumptions.append(
                s.doubleQuantisation
                    ? "NF4: 4 bits a weight, an 8-bit constant per 64 weights and an fp32 one per 256 of those (QLoRA's double quantisation)"
                    : "NF4: 4 bits a weight and an fp32 constant per 64 weights (no double quantisation)")
        case .int8:
            let rows = shape.layers * shape.projections.reduce(0) { $0 + $1.outputs }
            let weights = shape.layers * shape.projections.reduce(0) { $0 + $1.weights }
            let quantised = weights + rows * int8RowScaleBytes
            let unquantised = shape.parameters - weights
            terms.append(
                Term(
                    name: "weights", bytes: quantised + unquantised * halfBytes,
                    formula:
                        "\(grouped(weights)) projection weights × 1 B + \(grouped(rows)) row scales × 4 B + \(grouped(unquantised)) other params × 2 B"
                ))
        }

        // Trainable parameters, their gradients and AdamW's moments.
        let trainable: Int, trainableBytes: Int
        switch s.training {
        case .full:
            trainable = shape.parameters
            trainableBytes = s.weights.elementBytes
            terms.append(Term(name: "lora_params", bytes: 0, formula: "full fine-tuning: no adapters"))
            assumptions.append("full fine-tuning: gradients and AdamW moments in the weights' dtype (\(formatName))")
        case .lora(let rank, let targets, _):
            let chosen = shape.projections.filter { targets.contains($0.name) }
            let perLayer = chosen.reduce(0) { $0 + rank * ($1.inputs + $1.outputs) }
            trainable = shape.layers * perLayer
            trainableBytes = s.adaptersInFP32 || s.weights == .fp32 ? adapterBytes : halfBytes
            let dtype = trainableBytes == adapterBytes ? "fp32" : "16-bit"
            terms.append(
                Term(
                    name: "lora_params", bytes: trainable * trainableBytes,
                    formula:
                        "\(shape.layers) layers × r \(rank) × (in + out) of \(chosen.map(\.name).joined(separator: ", ")) = \(grouped(trainable)) params × \(trainableBytes) B (\(dtype))"
                ))
            assumptions.append(
                !s.adaptersInFP32
                    ? "LoRA adapters, their gradients and AdamW moments in 16 bits (pure_bf16)"
                    : s.cuda
                        ? "LoRA adapters, their gradients and AdamW moments in fp32 (PEFT's autocast_adapter_dtype)"
                        : "LoRA adapters, their gradients and AdamW moments in fp32")
        }
        terms.append(
            Term(
                name: "gradients", bytes: trainable * trainableBytes,
                formula: "\(grouped(trainable)) trainable params × \(trainableBytes) B"))
        terms.append(
            Term(
                name: "optimizer_states", bytes: adamStatesPerParameter * trainable * trainableBytes,
                formula: "AdamW: 2 moments × \(grouped(trainable)) params × \(trainableBytes) B"))
        let stepBytes = adamForeachTemporaries * trainable * trainableBytes
        terms.append(
            Term(
                name: "optimizer_step", bytes: stepBytes,
                formula: "AdamW foreach's √(second moments) while it steps: \(grouped(trainable)) params × \(trainableBytes) B"))

        // Activations.
        let tokens = s.microBatch * s.sequenceLength
        let layerBytes = tokens * layerActivationBytesPerToken(shape, elementBytes: e)
        var loraBytes = 0, loraNote = ""
        if case .lora(let rank, let targets, let dropout) = s.training {
            // Each adapter keeps A's output (r values) for B; with dropout, also its dropped input and a one-byte mask.
            let chosen = shape.projections.filter { targets.contains($0.name) }
            loraBytes = tokens * chosen.reduce(0) { $0 + e * rank + (dropout > 0 ? (e + 1) * $1.inputs : 0) }
            // A frozen projection needs only its weight to pass the gradient back (dx = dy·Wᵀ), so autograd keeps an
            // input that nothing else saves only for an adapted one: o_proj's input copy, down_proj's input (the
            // gate·up product), and the post-attention norm's output that only gate_proj and up_proj read.
            let q = shape.attentionHeads * shape.headDim
            var unsaved = 0
            if !targets.contains("o_proj") { unsaved += e * q }
            if !targets.contains("down_proj") { unsaved += e * shape.intermediateSize }
            if !targets.contains("gate_proj"), !targets.contains("up_proj") { unsaved += e * shape.hiddenSize }
            loraBytes -= tokens * unsaved
            loraNote =
                (dropout > 0 ? " + adapters' A outputs and dropout copies and masks" : " + adapters' A outputs")
                + (unsaved > 0 ? " − \(grouped(unsaved)) B/token frozen projections do not keep" : "")
        }
        let scores =
            s.memoryEfficientAttention
            ? 0
            : s.microBatch * shape.attentionHeads * s.sequenceLength * s.sequenceLength * eagerAttentionBytesPerScore(elementBytes: e)
        let full = layerBytes + loraBytes + scores
        let activations: Int, formula: String
        let perToken = layerActivationBytesPerToken(shape, elementBytes: e)
        let scoreNote =
            s.memoryEfficientAttention
            ? ""
            : " + eager attention \(s.microBatch)·\(shape.attentionHeads)·\(s.sequenceLength)²·\(eagerAttentionBytesPerScore(elementBytes: e)) B"
        if s.gradientCheckpointing {
            // Each layer's input is kept; one layer's activations are rebuilt at a time in the backward pass.
            activations = shape.layers * tokens * shape.hiddenSize * e + full
            formula =
                "checkpointed: \(shape.layers) layer inputs × \(tokens) tokens × \(shape.hiddenSize) × \(e) B + one layer (\(grouped(perToken)) B/token\(loraNote)\(scoreNote))"
        } else {
            activations = shape.layers * full
            formula = "\(shape.layers) layers × \(tokens) tokens × \(grouped(perToken)) B/token\(loraNote)\(scoreNote)"
        }
        terms.append(Term(name: "activations", bytes: activations, formula: formula))
        let accumulates = s.gradientAccumulation > 1
        let logitsPer = logitsBytesPerElement(elementBytes: e)
        let logits = tokens * shape.vocabSize * logitsPer
        terms.append(Term(name: "logits", bytes: logits, formula: "\(tokens) tokens × vocab \(grouped(shape.vocabSize)) × \(logitsPer) B"))

        let allocated =
            terms.filter { ["weights", "lora_params", "optimizer_states"].contains($0.name) }.reduce(0) { $0 + $1.bytes }
            + max(activations + logits + (accumulates ? trainable * trainableBytes : 0), trainable * trainableBytes + stepBytes)
        let context = s.cuda ? cudaContextBytes : 0
        let slack = s.cuda ? Int((Double(allocated) * allocatorSlackFraction).rounded()) : 0
        terms.append(Term(name: "cuda_context", bytes: context, formula: s.cuda ? "stated constant, 512 MiB" : "none: trains on the CPU"))
        terms.append(
            Term(
                name: "allocator_slack", bytes: slack,
                formula: s.cuda ? "10% of the \(grouped(allocated)) B allocated" : "none: trains on the CPU"))
        if !s.cuda {
            assumptions.insert("on the CPU: no CUDA context or caching allocator; saved tensors counted as PyTorch keeps them", at: 0)
        }
        assumptions.append(
            s.memoryEfficientAttention ? "SDPA memory-efficient attention (no seq² scores)" : "eager attention (seq² scores kept)")
        assumptions.append(s.gradientCheckpointing ? "gradient checkpointing on" : "no gradient checkpointing")
        assumptions.append("micro-batch \(s.microBatch) × \(s.sequenceLength) tokens, every sequence at full length")
        if accumulates { assumptions.append("\(s.gradientAccumulation) micro-batches a step: gradients held through each backward pass") }
        return Estimate(terms: terms, total: allocated + context + slack, assumptions: assumptions, accumulates: accumulates)
    }

    /// 6738415616 → "6,738,415,616".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}

// MARK: - From a trial

extension MemoryEstimate {
    /// Why a trial has no estimate, said so `--memory` can print it.
    public struct Unavailable: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// The trainer a trial runs under, which decides the defaults of what the trial does not set.
    enum Trainer: Sendable {
        case harrowTrain, llamaFactory, other

        init(_ trainer: Experiment.Trainer) {
            switch trainer.profile?.kind {
            case .llamafactory?: self = .llamaFactory
            case .hf?: self = .other
            case nil: self = TrainerContract.isHarrowTrain(trainer.command.first ?? "") ? .harrowTrain : .other
            }
        }
    }

    /// harrow-train's defaults for what an estimate reads (`batch_size`, `max_seq_len`, `lora_r`, `lora_dropout`,
    /// `lora_targets`).
    static let harrowTrainDefaults: [String: ParamValue] = {
        let p = TrainerParameters.declared
        return TrainerParameters.defaults(of: [p.batch_size, p.max_seq_len, p.lora_r, p.lora_dropout, p.lora_targets])
    }()

    /// LLaMA-Factory's defaults (hiyouga/LLaMA-Factory@ff6d4d12, src/llamafactory/hparams): `finetuning_type` lora,
    /// `lora_rank` 8, `lora_target` all, `lora_dropout` 0 (finetuning_args.py); `cutoff_len` 2048 (data_args.py);
    /// `disable_gradient_checkpointing` false, `flash_attn` auto, `double_quantization` true (model_args.py);
    /// `per_device_train_batch_size` 8 (transformers' TrainingArguments).
    static let llamaFactoryDefaults: [String: ParamValue] = [
        "finetuning_type": .string("lora"), "lora_rank": .int(8), "lora_target": .string("all"), "lora_dropout": .int(0),
        "cutoff_len": .int(2048), "disable_gradient_checkpointing": .bool(false), "flash_attn": .string("auto"),
        "double_quantization": .bool(true), "per_device_train_batch_size": .int(8)
    ]

    /// Any trainer on transformers' TrainingArguments and PEFT's LoraConfig: `per_device_train_batch_size` 8,
    /// `gradient_checkpointing` false; LoRA `r` 8, `lora_dropout` 0 (PEFT's LoraConfig; its default targets for Llama-style
    /// models are q_proj and v_proj).
    static let transformersDefaults: [String: ParamValue] = [
        "per_device_train_batch_size": .int(8), "gradient_checkpointing": .bool(false), "lora_r": .int(8), "lora_dropout": .int(0),
        "lora_targets": .list([.string("q_proj"), .string("v_proj")])
    ]

    /// A trial's settings under Harrow's, LLaMA-Factory's and TrainingArguments' names: the trial's parameters (under
    /// any of the names, or the profile's `map`), then the profile's base config, then the trainer's defaults.
    struct Lookup {
        var trial: Trial
        var config: [String: ParamValue]
        var profile: TrainerProfile?
        var defaults: [String: ParamValue]

        func value(_ names: [String]) -> ParamValue? {
            let all = names + names.compactMap { name in profile.map { $0.name(of: name) } }.filter { !names.contains($0) }
            for name in all { if let v = trial[name], v != .null { return v } }
            for name in all { if let v = config[name], v != .null { return v } }
            for name in all { if let v = defaults[name] { return v } }
            return nil
        }

        func int(_ names: [String]) -> Int? {
            guard let n = value(names)?.number, n >= 1, n < 1e9, n == n.rounded() else { return nil }
            return Int(n)
        }

        func bool(_ names: [String]) -> Bool? {
            switch value(names) {
            case .bool(let b)?: b
            case .int(let i)?: i != 0
            case .string(let s)?:
                ["true", "yes", "1"].contains(s.lowercased()) ? true : ["false", "no", "0"].contains(s.lowercased()) ? false : nil
            default: nil
            }
        }

        func string(_ names: [String]) -> String? {
            if case .string(let s)? = value(names) { return s }
            return nil
        }
    }

    public static let modelNames = ["base_model", "model_name_or_path"]
    public static let batchNames = ["batch_size", "per_device_train_batch_size"]
    public static let lengthNames = ["max_seq_len", "cutoff_len", "max_length", "max_seq_length"]
    public static let rankNames = ["lora_r", "lora_rank"]
    public static let accumulationNames = ["grad_accum", "gradient_accumulation_steps"]
    public static let targetNames = ["lora_targets", "lora_target", "target_modules"]

    /// The `config.json` a trial's model has: `models/NAME/config.json` for Harrow's shipped `base` and `chat`, else
    /// the folder the trial names (relative paths as the runner resolves them: against the working directory).
    public static func modelConfigPath(_ trial: Trial, trainer: Experiment.Trainer, config: [String: ParamValue] = [:]) -> Result<
        String, Unavailable
    > {
        let lookup = Lookup(trial: trial, config: config, profile: trainer.profile, defaults: [:])
        guard let model = lookup.string(modelNames), !model.isEmpty else {
            return .failure(Unavailable("no base_model or model_name_or_path"))
        }
        let folder = TrainerContract.modelPath(model)
        return .success(folder.hasSuffix(".json") ? folder : (folder.hasSuffix("/") ? folder : folder + "/") + "config.json")
    }

    /// The trial's settings; `shape` gives the checkpoint's dtype where the trainer loads in it.
    public static func settings(
        _ trial: Trial, trainer: Experiment.Trainer, config: [String: ParamValue] = [:],
        shape: ModelShape
    ) -> Result<Settings, Unavailable> {
        let kind = Trainer(trainer)
        let defaults: [String: ParamValue] =
            switch kind {
            case .harrowTrain: harrowTrainDefaults
            case .llamaFactory: llamaFactoryDefaults
            case .other: transformersDefaults
            }
        let s = Lookup(trial: trial, config: config, profile: trainer.profile, defaults: defaults)

        guard let batch = s.int(batchNames) else {
            return .failure(Unavailable("no micro-batch size (batch_size or per_device_train_batch_size)"))
        }
        guard let length = s.int(lengthNames) else {
            return .failure(Unavailable("no sequence length (max_seq_len, cutoff_len or max_length)"))
        }

        // Full fine-tuning or LoRA.
        let type = s.string(["finetuning_type"])?.lowercased()
        if let type, type != "full", type != "lora" {
            return .failure(Unavailable("finetuning_type \(type) is not estimated (full or lora are)"))
        }
        let full = s.bool(["full_finetune"]) == true || type == "full"
        let training: Training
        if full {
            training = .full
        } else {
            guard let rank = s.int(rankNames) else { return .failure(Unavailable("no LoRA rank (lora_r or lora_rank)")) }
            let names: [String] =
                switch s.value(targetNames) {
                case .list(let items)?: items.map(\.plain)
                case .string(let text)?: text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                default: []
                }
            // LLaMA-Factory's `all` and PEFT's `all-linear`: every linear layer but the output head.
            let targets = names.contains { $0 == "all" || $0 == "all-linear" } ? ModelShape.projectionNames : names
            if let unknown = targets.first(where: { !ModelShape.projectionNames.contains($0) }) {
                return .failure(Unavailable("LoRA target \(unknown) is not one of \(ModelShape.projectionNames.joined(separator: ", "))"))
            }
            guard !targets.isEmpty else { return .failure(Unavailable("no LoRA targets (lora_targets or lora_target)")) }
            training = .lora(rank: rank, targets: targets, dropout: s.value(["lora_dropout"])?.number ?? 0)
        }

        // How the weights are stored, and the activations' dtype.
        let bits = s.int(["quantization_bit"]) ?? (s.bool(["load_in_4bit"]) == true ? 4 : s.bool(["load_in_8bit"]) == true ? 8 : nil)
        if bits != nil, full { return .failure(Unavailable("full fine-tuning of quantised weights is not estimated")) }
        if let bits, bits != 4, bits != 8 { return .failure(Unavailable("quantization_bit \(bits) is not estimated (4 or 8 are)")) }
        let half: WeightFormat? = s.bool(["pure_bf16", "bf16"]) == true ? .bf16 : s.bool(["fp16"]) == true ? .fp16 : nil
        let stated = (s.string(["torch_dtype", "dtype"]) ?? "").lowercased()
        let statedFormat: WeightFormat? =
            stated.contains("bfloat16") || stated == "bf16"
            ? .bf16
            : stated.contains("float16") || stated == "fp16" ? .fp16 : stated.contains("float32") || stated == "fp32" ? .fp32 : nil
        let checkpointDtype: WeightFormat = (shape.dtype ?? "").contains("bfloat16") ? .bf16 : .fp16
        var weights: WeightFormat
        switch kind {
        case .harrowTrain:
            // harrow-train keeps everything in fp32 on the CPU.
            weights = .fp32
        case .llamaFactory:
            // LLaMA-Factory loads in the compute dtype (bf16/fp16 as set, else bf16 for a bf16 checkpoint and fp16
            // otherwise: `infer_optim_dtype`), and casts trainable parameters to fp32 unless `pure_bf16`.
            weights = half ?? checkpointDtype
            if full, s.bool(["pure_bf16"]) != true { weights = .fp32 }
        case .other:
            // transformers' from_pretrained loads fp32 unless told a dtype; `bf16`/`fp16` turn on autocast only.
            weights = statedFormat ?? .fp32
        }
        if bits == 4 { weights = .nf4 } else if bits == 8 { weights = .int8 }
        let halfActivations = kind != .harrowTrain && (weights != .fp32 || half != nil)

        let checkpointing: Bool =
            switch kind {
            case .harrowTrain: false
            case .llamaFactory: s.bool(["disable_gradient_checkpointing"]) != true
            case .other: s.bool(["gradient_checkpointing"]) == true
            }
        // Eager attention when asked for (`attn_implementation: eager`, LLaMA-Factory's `flash_attn: disabled`) and in
        // harrow-train, which keeps each sequence's t × t probabilities; otherwise SDPA, transformers' default.
        let attention = (s.string(["attn_implementation", "flash_attn"]) ?? "").lowercased()
        let eager = kind == .harrowTrain || attention == "eager" || attention == "disabled"
        let doubleQuant = s.bool(["double_quantization", "bnb_4bit_use_double_quant"]) ?? (kind == .llamaFactory)
        return .success(
            Settings(
                training: training, weights: weights, halfActivations: halfActivations, microBatch: batch,
                sequenceLength: length, gradientCheckpointing: checkpointing, memoryEfficientAttention: !eager,
                doubleQuantisation: doubleQuant, cuda: kind != .harrowTrain,
                adaptersInFP32: s.bool(["pure_bf16"]) != true, gradientAccumulation: s.int(accumulationNames) ?? 1))
    }

    /// A trial's estimate, or why there is none. `readModelConfig` returns the text of a `config.json` path (nil when
    /// there is no such file); the caller does the reading and may cache it.
    public static func forTrial(
        _ trial: Trial, trainer: Experiment.Trainer, config: [String: ParamValue] = [:],
        readModelConfig: (String) -> String?
    ) -> Result<Estimate, Unavailable> {
        let path: String
        switch modelConfigPath(trial, trainer: trainer, config: config) {
        case .failure(let why): return .failure(why)
        case .success(let p): path = p
        }
        guard let text = readModelConfig(path) else {
            return .failure(Unavailable("no \(path) (a hub name? download the model and name its folder)"))
        }
        let shape: ModelShape
        do { shape = try ModelShape.parse(configJSON: text) } catch { return .failure(Unavailable("\(path): \(error.description)")) }
        return settings(trial, trainer: trainer, config: config, shape: shape).map { estimate(shape, $0) }
    }
}
