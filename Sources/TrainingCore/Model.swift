import Foundation

/// Model shape, with the field names of Hugging Face `LlamaConfig`.
public struct LlamaConfig: Sendable, Equatable {
    public var vocab_size: Int
    public var hidden_size: Int
    public var intermediate_size: Int
    public var num_hidden_layers: Int
    public var num_attention_heads: Int
    public var num_key_value_heads: Int
    public var max_position_embeddings: Int
    public var rms_norm_eps: Double
    public var rope_theta: Double
    public var tie_word_embeddings: Bool

    public init(vocab_size: Int = Tokenizer.vocabSize, hidden_size: Int = 64, intermediate_size: Int = 172,
                num_hidden_layers: Int = 2, num_attention_heads: Int = 4, num_key_value_heads: Int? = nil,
                max_position_embeddings: Int = 128, rms_norm_eps: Double = 1e-5, rope_theta: Double = 10000,
                tie_word_embeddings: Bool = true) {
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads ?? num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.tie_word_embeddings = tie_word_embeddings
    }

    public var head_dim: Int { hidden_size / num_attention_heads }

    /// Problems that make the shape unusable, in words; empty when it is fine.
    public var problems: [String] {
        var p: [String] = []
        if vocab_size < 1 { p.append("vocab_size must be at least 1") }
        if hidden_size < 2 || num_attention_heads < 1 || hidden_size % num_attention_heads != 0 || head_dim % 2 != 0 {
            p.append("hidden_size (\(hidden_size)) must split into num_attention_heads (\(num_attention_heads)) heads of even size")
        }
        if num_key_value_heads < 1 || num_attention_heads % num_key_value_heads != 0 {
            p.append("num_attention_heads (\(num_attention_heads)) must be a multiple of num_key_value_heads (\(num_key_value_heads))")
        }
        if intermediate_size < 1 { p.append("intermediate_size must be at least 1") }
        if num_hidden_layers < 1 { p.append("num_hidden_layers must be at least 1") }
        if max_position_embeddings < 2 { p.append("max_position_embeddings must be at least 2") }
        if !(rms_norm_eps > 0) { p.append("rms_norm_eps must be > 0") }
        if !(rope_theta > 0) { p.append("rope_theta must be > 0") }
        return p
    }
}

/// The weights of one decoder layer; projections are indexed by `Projection.rawValue`, each [out, in].
public final class LayerWeights<T: Real>: @unchecked Sendable {
    public let input_layernorm: Tensor<T>
    public let post_attention_layernorm: Tensor<T>
    public let projections: [Tensor<T>]

    init(_ c: LlamaConfig) {
        input_layernorm = Tensor([c.hidden_size])
        post_attention_layernorm = Tensor([c.hidden_size])
        projections = Projection.allCases.map { Tensor([$0.outFeatures(c), $0.inFeatures(c)]) }
    }
    public subscript(p: Projection) -> Tensor<T> { projections[p.rawValue] }
}

/// All weights, or their gradients (same shapes). `lm_head` is nil when tied to `embed_tokens`.
public final class LlamaWeights<T: Real>: @unchecked Sendable {
    public let embed_tokens: Tensor<T>
    public let layers: [LayerWeights<T>]
    public let norm: Tensor<T>
    public let lm_head: Tensor<T>?

    public init(_ c: LlamaConfig) {
        embed_tokens = Tensor([c.vocab_size, c.hidden_size])
        layers = (0..<c.num_hidden_layers).map { _ in LayerWeights(c) }
        norm = Tensor([c.hidden_size])
        lm_head = c.tie_word_embeddings ? nil : Tensor([c.vocab_size, c.hidden_size])
    }

    /// Hugging Face names in file order.
    public var named: [(name: String, tensor: Tensor<T>)] {
        var out: [(String, Tensor<T>)] = [("model.embed_tokens.weight", embed_tokens)]
        for (i, l) in layers.enumerated() {
            out.append(("model.layers.\(i).input_layernorm.weight", l.input_layernorm))
            for p in Projection.allCases { out.append(("model.layers.\(i).\(p.parent).\(p.name).weight", l[p])) }
            out.append(("model.layers.\(i).post_attention_layernorm.weight", l.post_attention_layernorm))
        }
        out.append(("model.norm.weight", norm))
        if let lm_head { out.append(("lm_head.weight", lm_head)) }
        return out
    }

    /// Normal(0, initializer_range) for matrices and ones for the norms, as LlamaPreTrainedModel initialises them.
    public func initialise(std: Double, rng: inout SeededGenerator) {
        for (_, t) in named {
            if t.shape.count == 1 {
                t.data.update(repeating: 1, count: t.count)
            } else {
                for i in 0..<t.count { t.data[i] = T(std * rng.normal()) }
            }
        }
    }

    public func copy(from other: LlamaWeights<T>) {
        for (a, b) in zip(named, other.named) { a.tensor.copy(from: b.tensor) }
    }

    public func zero() { for (_, t) in named { t.zero() } }
}

/// What the forward pass keeps of one layer for the backward pass.
final class LayerActivations<T: Real> {
    let x, xn1, rms1, q, k, v, probs, attn, h, xn2, rms2, gate, up, act: Tensor<T>
    /// Per adapted projection: u = xd Aᵀ, and with dropout the dropped input and its mask.
    let loraU: [Tensor<T>?], loraXd: [Tensor<T>?], loraMask: [Tensor<T>?]

    init(_ c: LlamaConfig, lora: LoRAConfig?, rows n: Int, seqLen t: Int, batch b: Int) {
        let d = c.hidden_size, qw = c.num_attention_heads * c.head_dim, kvw = c.num_key_value_heads * c.head_dim
        x = Tensor([n, d]); xn1 = Tensor([n, d]); rms1 = Tensor([n])
        q = Tensor([n, qw]); k = Tensor([n, kvw]); v = Tensor([n, kvw])
        probs = Tensor([b * c.num_attention_heads * t * t]); attn = Tensor([n, qw])
        h = Tensor([n, d]); xn2 = Tensor([n, d]); rms2 = Tensor([n])
        gate = Tensor([n, c.intermediate_size]); up = Tensor([n, c.intermediate_size]); act = Tensor([n, c.intermediate_size])
        let adapted = Projection.allCases.map { lora?.target_modules.contains($0) ?? false }
        let dropout = (lora?.lora_dropout ?? 0) > 0
        loraU = Projection.allCases.map { adapted[$0.rawValue] ? Tensor([n, lora!.r]) : nil }
        loraXd = Projection.allCases.map { adapted[$0.rawValue] && dropout ? Tensor([n, $0.inFeatures(c)]) : nil }
        loraMask = Projection.allCases.map { adapted[$0.rawValue] && dropout ? Tensor([n, $0.inFeatures(c)]) : nil }
    }
}

/// Every activation and gradient buffer for batches up to `batch` × `seqLen`, allocated once and reused each step.
public final class Workspace<T: Real>: @unchecked Sendable {
    public let batch: Int, seqLen: Int
    /// Inputs of the current batch: token ids and next-token targets (−100 where there is none), row-major [b, t].
    public let tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
    let layers: [LayerActivations<T>]
    let finalX, finalXn, finalRms: Tensor<T>
    /// Logits [n, vocab]; after the loss with a gradient scale, their gradient.
    public let logits: Tensor<T>
    /// Whether the last forward pass drew dropout masks, so the backward pass uses the same ones.
    var dropoutActive = false
    let dResid, dxn, dq, dk, dv, dAttn, dAct, dGate, dUp, dScores, dLoraU, dLoraX: Tensor<T>

    init(_ c: LlamaConfig, lora: LoRAConfig?, batch b: Int, seqLen t: Int) {
        batch = b; seqLen = t
        let n = b * t, d = c.hidden_size, qw = c.num_attention_heads * c.head_dim
        let kvw = c.num_key_value_heads * c.head_dim, i = c.intermediate_size
        tokens = .allocate(capacity: n); tokens.initialize(repeating: 0, count: n)
        targets = .allocate(capacity: n); targets.initialize(repeating: ignoreIndex, count: n)
        layers = (0..<c.num_hidden_layers).map { _ in LayerActivations(c, lora: lora, rows: n, seqLen: t, batch: b) }
        finalX = Tensor([n, d]); finalXn = Tensor([n, d]); finalRms = Tensor([n])
        logits = Tensor([n, c.vocab_size])
        dResid = Tensor([n, d]); dxn = Tensor([n, d]); dq = Tensor([n, qw]); dk = Tensor([n, kvw]); dv = Tensor([n, kvw])
        dAttn = Tensor([n, qw]); dAct = Tensor([n, i]); dGate = Tensor([n, i]); dUp = Tensor([n, i])
        dScores = Tensor([t * t])
        dLoraU = Tensor([n * (lora?.r ?? 0)])
        dLoraX = Tensor([n * max(d, i, qw)])
    }

    deinit { tokens.deallocate(); targets.deallocate() }
}

/// A Llama-style decoder. Forward and backward are written out below, one layer at a time.
public final class LlamaModel<T: Real>: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights<T>
    /// Gradients of every weight when fine-tuning fully; nil when the base is frozen.
    public let grads: LlamaWeights<T>?
    public let lora: LoRA<T>?
    let rotary: RotaryTables<T>
    /// Draws the dropout masks of the adapters.
    public var dropoutRNG = SeededGenerator(seed: 0)

    public init(config: LlamaConfig, weights: LlamaWeights<T>? = nil, lora: LoRA<T>? = nil, trainBase: Bool = false) {
        self.config = config
        self.weights = weights ?? LlamaWeights(config)
        self.lora = lora
        grads = trainBase ? LlamaWeights(config) : nil
        rotary = RotaryTables(maxPositions: config.max_position_embeddings, headDim: config.head_dim, theta: config.rope_theta)
    }

    public func makeWorkspace(batch: Int, seqLen: Int) -> Workspace<T> {
        precondition(seqLen <= config.max_position_embeddings, "sequence longer than max_position_embeddings")
        return Workspace(config, lora: lora?.config, batch: batch, seqLen: seqLen)
    }

    var headWeight: Tensor<T> { weights.lm_head ?? weights.embed_tokens }

    /// Logits for ws.tokens[0..<b·t] into ws.logits. `training` turns adapter dropout on.
    @_specialize(where T == Float)
    public func forward(_ ws: Workspace<T>, batch b: Int, seqLen t: Int, training: Bool) {
        precondition(b <= ws.batch && t <= ws.seqLen)
        let c = config, n = b * t, d = c.hidden_size
        let shape = AttentionShape(batch: b, seqLen: t, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim)
        let eps = T(c.rms_norm_eps)
        ws.dropoutActive = training && (lora?.config.lora_dropout ?? 0) > 0
        embeddingForward(ws.layers[0].x.data, weights.embed_tokens.data, ws.tokens, rows: n, dim: d)
        for l in 0..<c.num_hidden_layers {
            let a = ws.layers[l], w = weights.layers[l]
            let out = l + 1 < c.num_hidden_layers ? ws.layers[l + 1].x : ws.finalX
            // Attention block: h = x + o_proj(attention(rope(q), rope(k), v)) on input_layernorm(x).
            rmsNormForward(a.xn1.data, a.rms1.data, a.x.data, w.input_layernorm.data, rows: n, dim: d, eps: eps)
            project(.q_proj, layer: l, a.xn1, into: a.q, rows: n, acts: a, training: training)
            project(.k_proj, layer: l, a.xn1, into: a.k, rows: n, acts: a, training: training)
            project(.v_proj, layer: l, a.xn1, into: a.v, rows: n, acts: a, training: training)
            rope(a.q.data, rows: n, seqLen: t, heads: c.num_attention_heads, headDim: c.head_dim, tables: rotary)
            rope(a.k.data, rows: n, seqLen: t, heads: c.num_key_value_heads, headDim: c.head_dim, tables: rotary)
            attentionForward(a.attn.data, a.probs.data, a.q.data, a.k.data, a.v.data, shape)
            project(.o_proj, layer: l, a.attn, into: a.h, rows: n, acts: a, training: training)
            add(a.h.data, a.x.data, n * d)
            // MLP block: out = h + down_proj(silu(gate_proj(x)) ⊙ up_proj(x)) on post_attention_layernorm(h).
            rmsNormForward(a.xn2.data, a.rms2.data, a.h.data, w.post_attention_layernorm.data, rows: n, dim: d, eps: eps)
            project(.gate_proj, layer: l, a.xn2, into: a.gate, rows: n, acts: a, training: training)
            project(.up_proj, layer: l, a.xn2, into: a.up, rows: n, acts: a, training: training)
            swigluForward(a.act.data, a.gate.data, a.up.data, count: n * c.intermediate_size)
            project(.down_proj, layer: l, a.act, into: out, rows: n, acts: a, training: training)
            add(out.data, a.h.data, n * d)
        }
        rmsNormForward(ws.finalXn.data, ws.finalRms.data, ws.finalX.data, weights.norm.data, rows: n, dim: d, eps: eps)
        linearForward(ws.logits.data, ws.finalXn.data, headWeight.data, rows: n, in: d, out: c.vocab_size)
    }

    /// Cross-entropy of ws.logits against ws.targets. With `gradScale` (1 / number of targets in the whole
    /// optimiser step), the logits are replaced by the loss gradient, ready for `backward`.
    @_specialize(where T == Float)
    public func loss(_ ws: Workspace<T>, batch b: Int, seqLen t: Int, gradScale: T? = nil) -> (sum: Double, count: Int) {
        crossEntropy(ws.logits.data, targets: ws.targets, rows: b * t, vocab: config.vocab_size, gradScale: gradScale)
    }

    /// Accumulates gradients into `grads` and the adapters' dA, dB. Expects ws.logits to hold dL/dlogits.
    @_specialize(where T == Float)
    public func backward(_ ws: Workspace<T>, batch b: Int, seqLen t: Int) {
        let c = config, n = b * t, d = c.hidden_size
        let shape = AttentionShape(batch: b, seqLen: t, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim)
        let g = grads
        // Head and final norm.
        linearBackwardInput(ws.dxn.data, ws.logits.data, headWeight.data, rows: n, in: d, out: c.vocab_size)
        if let g { linearBackwardWeight((g.lm_head ?? g.embed_tokens).data, ws.logits.data, ws.finalXn.data, rows: n, in: d, out: c.vocab_size) }
        ws.dResid.zero()
        rmsNormBackward(ws.dResid.data, g?.norm.data, ws.dxn.data, ws.finalX.data, weights.norm.data, ws.finalRms.data, rows: n, dim: d)
        // ws.dResid carries dL/d(residual stream) downwards through the layers.
        for l in stride(from: c.num_hidden_layers - 1, through: 0, by: -1) {
            let a = ws.layers[l], w = weights.layers[l], gl = g?.layers[l]
            // The input gradient of the first layer only matters when the embeddings train.
            let needInput = l > 0 || g != nil
            // MLP block.
            projectBackward(.down_proj, layer: l, dy: ws.dResid, input: a.act, dx: ws.dAct, accumulate: false, rows: n, acts: a, ws: ws)
            swigluBackward(ws.dGate.data, ws.dUp.data, ws.dAct.data, a.gate.data, a.up.data, count: n * c.intermediate_size)
            projectBackward(.gate_proj, layer: l, dy: ws.dGate, input: a.xn2, dx: ws.dxn, accumulate: false, rows: n, acts: a, ws: ws)
            projectBackward(.up_proj, layer: l, dy: ws.dUp, input: a.xn2, dx: ws.dxn, accumulate: true, rows: n, acts: a, ws: ws)
            rmsNormBackward(ws.dResid.data, gl?.post_attention_layernorm.data, ws.dxn.data, a.h.data,
                            w.post_attention_layernorm.data, a.rms2.data, rows: n, dim: d)
            // Attention block.
            projectBackward(.o_proj, layer: l, dy: ws.dResid, input: a.attn, dx: ws.dAttn, accumulate: false, rows: n, acts: a, ws: ws)
            attentionBackward(ws.dq.data, ws.dk.data, ws.dv.data, ws.dAttn.data, a.probs.data, a.q.data, a.k.data, a.v.data,
                              ws.dScores.data, shape)
            rope(ws.dq.data, rows: n, seqLen: t, heads: c.num_attention_heads, headDim: c.head_dim, tables: rotary, inverse: true)
            rope(ws.dk.data, rows: n, seqLen: t, heads: c.num_key_value_heads, headDim: c.head_dim, tables: rotary, inverse: true)
            projectBackward(.q_proj, layer: l, dy: ws.dq, input: a.xn1, dx: ws.dxn, accumulate: false, rows: n, acts: a, ws: ws, needInput: needInput)
            projectBackward(.k_proj, layer: l, dy: ws.dk, input: a.xn1, dx: ws.dxn, accumulate: true, rows: n, acts: a, ws: ws, needInput: needInput)
            projectBackward(.v_proj, layer: l, dy: ws.dv, input: a.xn1, dx: ws.dxn, accumulate: true, rows: n, acts: a, ws: ws, needInput: needInput)
            if needInput {
                rmsNormBackward(ws.dResid.data, gl?.input_layernorm.data, ws.dxn.data, a.x.data, w.input_layernorm.data,
                                a.rms1.data, rows: n, dim: d)
            }
        }
        if let g { embeddingBackward(g.embed_tokens.data, ws.dResid.data, ws.tokens, rows: n, dim: d) }
    }

    /// output = input Wᵀ (+ the adapter's update).
    @_specialize(where T == Float)
    private func project(_ p: Projection, layer l: Int, _ input: Tensor<T>, into output: Tensor<T>, rows n: Int,
                         acts a: LayerActivations<T>, training: Bool) {
        let inF = p.inFeatures(config), outF = p.outFeatures(config)
        linearForward(output.data, input.data, weights.layers[l][p].data, rows: n, in: inF, out: outF)
        guard let lora, let adapter = lora.adapters[l][p.rawValue] else { return }
        var mask: UnsafeMutablePointer<T>? = nil
        if training, let m = a.loraMask[p.rawValue], lora.config.lora_dropout > 0 {
            let keep = 1 - lora.config.lora_dropout, scale = T(1 / keep)
            for i in 0..<(n * inF) { m.data[i] = dropoutRNG.unit() < keep ? scale : 0 }
            mask = m.data
        }
        loraForward(output.data, a.loraU[p.rawValue]!.data, mask == nil ? nil : a.loraXd[p.rawValue]!.data, input.data,
                    mask: mask.map { UnsafePointer($0) }, adapter, rows: n, scaling: T(lora.config.scaling))
    }

    /// dx (=|+=) dy W, plus weight and adapter gradients, with the dropout masks of the last forward pass.
    @_specialize(where T == Float)
    private func projectBackward(_ p: Projection, layer l: Int, dy: Tensor<T>, input: Tensor<T>, dx: Tensor<T>, accumulate: Bool,
                                 rows n: Int, acts a: LayerActivations<T>, ws: Workspace<T>, needInput: Bool = true) {
        let inF = p.inFeatures(config), outF = p.outFeatures(config)
        if needInput {
            linearBackwardInput(dx.data, dy.data, weights.layers[l][p].data, rows: n, in: inF, out: outF, beta: accumulate ? 1 : 0)
        }
        if let g = grads { linearBackwardWeight(g.layers[l][p].data, dy.data, input.data, rows: n, in: inF, out: outF) }
        guard let lora, let adapter = lora.adapters[l][p.rawValue] else { return }
        let mask = ws.dropoutActive ? a.loraMask[p.rawValue] : nil
        let xd = mask == nil ? input : a.loraXd[p.rawValue]!
        loraBackward(needInput ? dx.data : ws.dLoraX.data, dy.data, a.loraU[p.rawValue]!.data, xd.data,
                     mask: mask.map { UnsafePointer($0.data) }, adapter, rows: n, scaling: T(lora.config.scaling),
                     du: ws.dLoraU.data, dxd: ws.dLoraX.data)
    }
}
