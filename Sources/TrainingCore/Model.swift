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

    public init(
        vocab_size: Int = Tokenizer.vocabSize, hidden_size: Int = 64, intermediate_size: Int = 172,
        num_hidden_layers: Int = 2, num_attention_heads: Int = 4, num_key_value_heads: Int? = nil,
        max_position_embeddings: Int = 128, rms_norm_eps: Double = 1e-5, rope_theta: Double = 10000,
        tie_word_embeddings: Bool = true
    ) {
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
    /// sigmoid(gate), so the backward pass does not compute it again.
    let sigmoid: Tensor<T>
    /// Per adapted projection: u = xd Aᵀ, and with dropout the dropped input and its mask.
    let loraU: [Tensor<T>?], loraXd: [Tensor<T>?], loraMask: [Tensor<T>?]

    init(_ c: LlamaConfig, lora: LoRAConfig?, rows n: Int, seqLen t: Int, batch b: Int) {
        let d = c.hidden_size, qw = c.num_attention_heads * c.head_dim, kvw = c.num_key_value_heads * c.head_dim
        x = Tensor([n, d]); xn1 = Tensor([n, d]); rms1 = Tensor([n])
        q = Tensor([n, qw]); k = Tensor([n, kvw]); v = Tensor([n, kvw])
        probs = Tensor([b * c.num_attention_heads * t * t]); attn = Tensor([n, qw])
        h = Tensor([n, d]); xn2 = Tensor([n, d]); rms2 = Tensor([n])
        gate = Tensor([n, c.intermediate_size]); up = Tensor([n, c.intermediate_size]); act = Tensor([n, c.intermediate_size])
        sigmoid = Tensor([n, c.intermediate_size])
        let adapted = Projection.allCases.map { lora?.target_modules.contains($0) ?? false }
        let dropout = (lora?.lora_dropout ?? 0) > 0
        loraU = Projection.allCases.map { adapted[$0.rawValue] ? Tensor([n, lora!.r]) : nil }
        loraXd = Projection.allCases.map { adapted[$0.rawValue] && dropout ? Tensor([n, $0.inFeatures(c)]) : nil }
        loraMask = Projection.allCases.map { adapted[$0.rawValue] && dropout ? Tensor([n, $0.inFeatures(c)]) : nil }
    }
}

/// Every activation and gradient buffer for batches up to `batch` × `seqLen`, allocated once and reused each step.
/// Buffers are row-major with one row per token, so a part of the batch (a range of whole sequences) owns a
/// contiguous range of rows in each of them.
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
    let dResid, dxn, dq, dk, dv, dAttn, dAct, dGate, dUp, dLoraU, dLoraX: Tensor<T>
    /// Softmax-gradient scratch, t·t values per sequence.
    let dScores: Tensor<T>
    /// Row widths of dLoraU and dLoraX.
    let loraRank: Int, loraXWidth: Int
    /// Weight-gradient buffers of parts 1, 2, … of the backward pass (part 0 writes the model's own), made on first use.
    var partSinks: [GradSink<T>] = []
    /// Each part's loss sum and target count (at most one part per sequence).
    let partLossSums: UnsafeMutablePointer<Double>, partLossCounts: UnsafeMutablePointer<Int>
    /// At most this many parts instead of one per BLAS thread (tests compare splits with it).
    var maxParts: Int? = nil

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
        dScores = Tensor([b * t * t])
        loraRank = lora?.r ?? 0
        loraXWidth = max(d, i, qw)
        dLoraU = Tensor([n * loraRank])
        dLoraX = Tensor([n * loraXWidth])
        partLossSums = .allocate(capacity: max(b, 1)); partLossSums.initialize(repeating: 0, count: max(b, 1))
        partLossCounts = .allocate(capacity: max(b, 1)); partLossCounts.initialize(repeating: 0, count: max(b, 1))
    }

    deinit { tokens.deallocate(); targets.deallocate(); partLossSums.deallocate(); partLossCounts.deallocate() }
}

/// Where one part of the backward pass accumulates weight gradients: the base weights' (full fine-tuning) and the
/// adapters' dA, dB, by [layer][projection].
final class GradSink<T: Real> {
    let base: LlamaWeights<T>?
    let dA: [[UnsafeMutablePointer<T>?]], dB: [[UnsafeMutablePointer<T>?]]
    /// Every buffer, in a fixed order, for zeroing and summing.
    let tensors: [Tensor<T>]

    /// The model's own gradients.
    init(model m: LlamaModel<T>) {
        base = m.grads
        let adapters = m.lora?.adapters ?? []
        dA = adapters.map { $0.map { $0?.dA.data } }
        dB = adapters.map { $0.map { $0?.dB.data } }
        tensors = (m.grads?.named.map(\.tensor) ?? []) + (m.lora?.all.flatMap { [$0.dA, $0.dB] } ?? [])
    }

    /// Buffers of the same shapes, owned by this sink.
    init(like m: LlamaModel<T>) {
        base = m.grads.map { _ in LlamaWeights<T>(m.config) }
        let adapters = (m.lora?.adapters ?? []).map { $0.map { $0.map { (Tensor<T>($0.dA.shape), Tensor<T>($0.dB.shape)) } } }
        dA = adapters.map { $0.map { $0?.0.data } }
        dB = adapters.map { $0.map { $0?.1.data } }
        tensors = (base?.named.map(\.tensor) ?? []) + adapters.flatMap { $0.compactMap { $0 }.flatMap { [$0.0, $0.1] } }
    }

    func zero() { for t in tensors { t.zero() } }
}

/// A Llama-style decoder. Forward and backward are written out below, one layer at a time, for a range of whole
/// sequences; the public passes split the batch over `Parallel.parts` such ranges.
public final class LlamaModel<T: Real>: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights<T>
    /// Gradients of every weight when fine-tuning fully; nil when the base is frozen.
    public let grads: LlamaWeights<T>?
    public let lora: LoRA<T>?
    let rotary: RotaryTables<T>
    /// Draws the dropout masks of the adapters.
    public var dropoutRNG = SeededGenerator(seed: 0)
    private lazy var ownSink = GradSink(model: self)
    /// Rows per query block of the attention products (see AttentionShape.queryBlock).
    var attentionQueryBlock = 32

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
        ws.dropoutActive = training && (lora?.config.lora_dropout ?? 0) > 0
        if ws.dropoutActive { drawDropoutMasks(ws, rows: b * t) }
        let parts = Parallel.parts(b, limit: ws.maxParts)
        Parallel.run(parts) { p in
            let r = Parallel.range(p, of: parts, b)
            forwardPart(ws, first: r.lowerBound, count: r.count, seqLen: t)
        }
    }

    /// The masks of every adapter input, drawn in one fixed order (layer, then projection, then row) whatever the split.
    private func drawDropoutMasks(_ ws: Workspace<T>, rows n: Int) {
        guard let lora else { return }
        let keep = 1 - lora.config.lora_dropout, scale = T(1 / keep)
        for l in 0..<config.num_hidden_layers {
            for p in Projection.allCases {
                guard let m = ws.layers[l].loraMask[p.rawValue] else { continue }
                for i in 0..<(n * p.inFeatures(config)) { m.data[i] = dropoutRNG.unit() < keep ? scale : 0 }
            }
        }
    }

    /// Forward pass of sequences first..<first+count.
    @_specialize(where T == Float)
    private func forwardPart(_ ws: Workspace<T>, first: Int, count nb: Int, seqLen t: Int) {
        let c = config, n = nb * t, r0 = first * t, d = c.hidden_size, heads = c.num_attention_heads
        var shape = AttentionShape(batch: nb, seqLen: t, heads: heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim)
        shape.queryBlock = attentionQueryBlock
        let eps = T(c.rms_norm_eps)
        embeddingForward(ws.layers[0].x.data + r0 * d, weights.embed_tokens.data, ws.tokens + r0, rows: n, dim: d)
        rmsNormForward(
            ws.layers[0].xn1.data + r0 * d, ws.layers[0].rms1.data + r0, ws.layers[0].x.data + r0 * d,
            weights.layers[0].input_layernorm.data, rows: n, dim: d, eps: eps)
        for l in 0..<c.num_hidden_layers {
            let a = ws.layers[l], w = weights.layers[l]
            let x = a.x.data + r0 * d, h = a.h.data + r0 * d
            let xn1 = a.xn1.data + r0 * d, xn2 = a.xn2.data + r0 * d
            let q = a.q.data + r0 * shape.qWidth, k = a.k.data + r0 * shape.kvWidth, v = a.v.data + r0 * shape.kvWidth
            let attn = a.attn.data + r0 * shape.qWidth
            let gate = a.gate.data + r0 * c.intermediate_size, up = a.up.data + r0 * c.intermediate_size
            let act = a.act.data + r0 * c.intermediate_size
            let out = (l + 1 < c.num_hidden_layers ? ws.layers[l + 1].x : ws.finalX).data + r0 * d
            // Attention block: h = x + o_proj(attention(rope(q), rope(k), v)) on input_layernorm(x), which the
            // previous layer (or the embedding) has written to xn1.
            project(.q_proj, layer: l, xn1, into: q, rows: n, firstRow: r0, ws: ws)
            project(.k_proj, layer: l, xn1, into: k, rows: n, firstRow: r0, ws: ws)
            project(.v_proj, layer: l, xn1, into: v, rows: n, firstRow: r0, ws: ws)
            rope(q, rows: n, seqLen: t, heads: heads, headDim: c.head_dim, tables: rotary)
            rope(k, rows: n, seqLen: t, heads: c.num_key_value_heads, headDim: c.head_dim, tables: rotary)
            attentionForward(attn, a.probs.data + first * heads * t * t, q, k, v, shape)
            project(.o_proj, layer: l, attn, into: h, rows: n, firstRow: r0, ws: ws)
            // MLP block: out = h + down_proj(silu(gate_proj(x)) ⊙ up_proj(x)) on post_attention_layernorm(h).
            residualRMSNormForward(xn2, a.rms2.data + r0, h, residual: x, w.post_attention_layernorm.data, rows: n, dim: d, eps: eps)
            project(.gate_proj, layer: l, xn2, into: gate, rows: n, firstRow: r0, ws: ws)
            project(.up_proj, layer: l, xn2, into: up, rows: n, firstRow: r0, ws: ws)
            swigluForward(act, gate, up, count: n * c.intermediate_size, sigmoid: a.sigmoid.data + r0 * c.intermediate_size)
            project(.down_proj, layer: l, act, into: out, rows: n, firstRow: r0, ws: ws)
            // The residual sum, normalised for the next layer (or by the final norm).
            if l + 1 < c.num_hidden_layers {
                let next = ws.layers[l + 1]
                residualRMSNormForward(
                    next.xn1.data + r0 * d, next.rms1.data + r0, out, residual: h,
                    weights.layers[l + 1].input_layernorm.data, rows: n, dim: d, eps: eps)
            } else {
                residualRMSNormForward(
                    ws.finalXn.data + r0 * d, ws.finalRms.data + r0, out, residual: h, weights.norm.data,
                    rows: n, dim: d, eps: eps)
            }
        }
        let finalXn = ws.finalXn.data + r0 * d
        linearForward(ws.logits.data + r0 * c.vocab_size, finalXn, headWeight.data, rows: n, in: d, out: c.vocab_size)
    }

    /// Cross-entropy of ws.logits against ws.targets. With `gradScale` (1 / number of targets in the whole
    /// optimiser step), the logits are replaced by the loss gradient, ready for `backward`.
    @_specialize(where T == Float)
    public func loss(_ ws: Workspace<T>, batch b: Int, seqLen t: Int, gradScale: T? = nil) -> (sum: Double, count: Int) {
        let parts = Parallel.parts(b, limit: ws.maxParts), vocab = config.vocab_size
        guard parts > 1 else {
            return crossEntropy(ws.logits.data, targets: ws.targets, rows: b * t, vocab: vocab, gradScale: gradScale)
        }
        let sums = ws.partLossSums, counts = ws.partLossCounts
        Parallel.run(parts) { p in
            let r = Parallel.range(p, of: parts, b)
            let rows = r.lowerBound * t
            let part = crossEntropy(
                ws.logits.data + rows * vocab, targets: ws.targets + rows, rows: r.count * t,
                vocab: vocab, gradScale: gradScale)
            sums[p] = part.sum; counts[p] = part.count
        }
        var sum = 0.0, count = 0
        for p in 0..<parts { sum += sums[p]; count += counts[p] }
        return (sum, count)
    }

    /// Loss sum and target count of each sequence of the batch (no gradient): what validation groups by task type.
    public func exampleLosses(_ ws: Workspace<T>, batch b: Int, seqLen t: Int) -> [(sum: Double, count: Int)] {
        let vocab = config.vocab_size
        return (0..<b).map { r in
            crossEntropy(ws.logits.data + r * t * vocab, targets: ws.targets + r * t, rows: t, vocab: vocab, gradScale: nil)
        }
    }

    /// Accumulates gradients into `grads` and the adapters' dA, dB. Expects ws.logits to hold dL/dlogits.
    @_specialize(where T == Float)
    public func backward(_ ws: Workspace<T>, batch b: Int, seqLen t: Int) {
        let parts = Parallel.parts(b, limit: ws.maxParts)
        while ws.partSinks.count < parts - 1 { ws.partSinks.append(GradSink(like: self)) }
        let own = ownSink
        Parallel.run(parts) { p in
            let r = Parallel.range(p, of: parts, b)
            let sink = p == 0 ? own : ws.partSinks[p - 1]
            if p > 0 { sink.zero() }
            backwardPart(ws, first: r.lowerBound, count: r.count, seqLen: t, into: sink)
        }
        guard parts > 1 else { return }
        // Sum the parts' gradients into the model's, in part order; split by element range when there is a lot.
        let total = own.tensors.reduce(0) { $0 + $1.count }
        let reducers = total >= 1 << 16 ? parts : 1
        Parallel.run(reducers) { p in
            for (i, dst) in own.tensors.enumerated() {
                let r = Parallel.range(p, of: reducers, dst.count)
                for sink in ws.partSinks.prefix(parts - 1) {
                    add(dst.data + r.lowerBound, sink.tensors[i].data + r.lowerBound, r.count)
                }
            }
        }
    }

    /// Backward pass of sequences first..<first+count, weight gradients into `sink`.
    @_specialize(where T == Float)
    private func backwardPart(_ ws: Workspace<T>, first: Int, count nb: Int, seqLen t: Int, into sink: GradSink<T>) {
        let c = config, n = nb * t, r0 = first * t, d = c.hidden_size, heads = c.num_attention_heads
        let inter = c.intermediate_size, vocab = c.vocab_size
        var shape = AttentionShape(batch: nb, seqLen: t, heads: heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim)
        shape.queryBlock = attentionQueryBlock
        let g = sink.base
        let dResid = ws.dResid.data + r0 * d, dxn = ws.dxn.data + r0 * d
        let dq = ws.dq.data + r0 * shape.qWidth, dk = ws.dk.data + r0 * shape.kvWidth, dv = ws.dv.data + r0 * shape.kvWidth
        let dAttn = ws.dAttn.data + r0 * shape.qWidth
        let dAct = ws.dAct.data + r0 * inter, dGate = ws.dGate.data + r0 * inter, dUp = ws.dUp.data + r0 * inter
        // Head and final norm.
        let dLogits = ws.logits.data + r0 * vocab, finalXn = ws.finalXn.data + r0 * d
        linearBackwardInput(dxn, dLogits, headWeight.data, rows: n, in: d, out: vocab)
        if let g { linearBackwardWeight((g.lm_head ?? g.embed_tokens).data, dLogits, finalXn, rows: n, in: d, out: vocab) }
        dResid.update(repeating: 0, count: n * d)
        rmsNormBackward(dResid, g?.norm.data, dxn, ws.finalX.data + r0 * d, weights.norm.data, ws.finalRms.data + r0, rows: n, dim: d)
        // dResid carries dL/d(residual stream) downwards through the layers.
        for l in stride(from: c.num_hidden_layers - 1, through: 0, by: -1) {
            let a = ws.layers[l], w = weights.layers[l], gl = g?.layers[l]
            let xn1 = a.xn1.data + r0 * d, xn2 = a.xn2.data + r0 * d
            // The input gradient of the first layer only matters when the embeddings train.
            let needInput = l > 0 || g != nil
            // MLP block.
            projectBackward(
                .down_proj, layer: l, dy: dResid, input: a.act.data + r0 * inter, dx: dAct, accumulate: false,
                rows: n, firstRow: r0, ws: ws, sink: sink)
            swigluBackward(
                dGate, dUp, dAct, a.gate.data + r0 * inter, a.up.data + r0 * inter, count: n * inter,
                sigmoid: a.sigmoid.data + r0 * inter)
            projectBackward(
                .gate_proj, layer: l, dy: dGate, input: xn2, dx: dxn, accumulate: false, rows: n, firstRow: r0, ws: ws, sink: sink)
            projectBackward(.up_proj, layer: l, dy: dUp, input: xn2, dx: dxn, accumulate: true, rows: n, firstRow: r0, ws: ws, sink: sink)
            rmsNormBackward(
                dResid, gl?.post_attention_layernorm.data, dxn, a.h.data + r0 * d,
                w.post_attention_layernorm.data, a.rms2.data + r0, rows: n, dim: d)
            // Attention block.
            projectBackward(
                .o_proj, layer: l, dy: dResid, input: a.attn.data + r0 * shape.qWidth, dx: dAttn, accumulate: false,
                rows: n, firstRow: r0, ws: ws, sink: sink)
            attentionBackward(
                dq, dk, dv, dAttn, a.probs.data + first * heads * t * t, a.q.data + r0 * shape.qWidth,
                a.k.data + r0 * shape.kvWidth, a.v.data + r0 * shape.kvWidth, ws.dScores.data + first * t * t, shape)
            rope(dq, rows: n, seqLen: t, heads: heads, headDim: c.head_dim, tables: rotary, inverse: true)
            rope(dk, rows: n, seqLen: t, heads: c.num_key_value_heads, headDim: c.head_dim, tables: rotary, inverse: true)
            projectBackward(
                .q_proj, layer: l, dy: dq, input: xn1, dx: dxn, accumulate: false, rows: n, firstRow: r0, ws: ws,
                sink: sink, needInput: needInput)
            projectBackward(
                .k_proj, layer: l, dy: dk, input: xn1, dx: dxn, accumulate: true, rows: n, firstRow: r0, ws: ws,
                sink: sink, needInput: needInput)
            projectBackward(
                .v_proj, layer: l, dy: dv, input: xn1, dx: dxn, accumulate: true, rows: n, firstRow: r0, ws: ws,
                sink: sink, needInput: needInput)
            if needInput {
                rmsNormBackward(
                    dResid, gl?.input_layernorm.data, dxn, a.x.data + r0 * d, w.input_layernorm.data,
                    a.rms1.data + r0, rows: n, dim: d)
            }
        }
        if let g { embeddingBackward(g.embed_tokens.data, dResid, ws.tokens + r0, rows: n, dim: d) }
    }

    /// output = input Wᵀ (+ the adapter's update), for `n` rows starting at row `firstRow` of the workspace.
    @inline(__always)
    @_specialize(where T == Float)
    private func project(
        _ p: Projection, layer l: Int, _ input: UnsafeMutablePointer<T>, into output: UnsafeMutablePointer<T>,
        rows n: Int, firstRow r0: Int, ws: Workspace<T>
    ) {
        let inF = p.inFeatures(config), outF = p.outFeatures(config)
        linearForward(output, input, weights.layers[l][p].data, rows: n, in: inF, out: outF)
        guard let lora, let adapter = lora.adapters[l][p.rawValue] else { return }
        let a = ws.layers[l]
        let mask: UnsafePointer<T>? = ws.dropoutActive ? UnsafePointer(a.loraMask[p.rawValue]!.data + r0 * inF) : nil
        let xd = ws.dropoutActive ? a.loraXd[p.rawValue]!.data + r0 * inF : nil
        loraForward(
            output, a.loraU[p.rawValue]!.data + r0 * adapter.r, xd, input, mask: mask, adapter, rows: n,
            scaling: T(lora.config.scaling))
    }

    /// dx (=|+=) dy W, plus weight and adapter gradients into `sink`, with the dropout masks of the last forward pass.
    @inline(__always)
    @_specialize(where T == Float)
    private func projectBackward(
        _ p: Projection, layer l: Int, dy: UnsafeMutablePointer<T>, input: UnsafeMutablePointer<T>,
        dx: UnsafeMutablePointer<T>, accumulate: Bool, rows n: Int, firstRow r0: Int,
        ws: Workspace<T>, sink: GradSink<T>, needInput: Bool = true
    ) {
        let inF = p.inFeatures(config), outF = p.outFeatures(config)
        if needInput {
            linearBackwardInput(dx, dy, weights.layers[l][p].data, rows: n, in: inF, out: outF, beta: accumulate ? 1 : 0)
        }
        if let g = sink.base { linearBackwardWeight(g.layers[l][p].data, dy, input, rows: n, in: inF, out: outF) }
        guard let lora, let adapter = lora.adapters[l][p.rawValue] else { return }
        let a = ws.layers[l]
        let mask: UnsafePointer<T>? = ws.dropoutActive ? UnsafePointer(a.loraMask[p.rawValue]!.data + r0 * inF) : nil
        let xd = ws.dropoutActive ? a.loraXd[p.rawValue]!.data + r0 * inF : input
        loraBackward(
            dx, dy, a.loraU[p.rawValue]!.data + r0 * adapter.r, xd, mask: mask, adapter, rows: n,
            scaling: T(lora.config.scaling), du: ws.dLoraU.data + r0 * ws.loraRank,
            dxd: ws.dLoraX.data + r0 * ws.loraXWidth,
            dA: sink.dA[l][p.rawValue]!, dB: sink.dB[l][p.rawValue]!, needInput: needInput)
    }
}
