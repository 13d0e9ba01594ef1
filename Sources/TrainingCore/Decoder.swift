import Foundation

/// Inference with a key/value cache, for scoring. A prefix (an item's prompt and the words all its choices begin
/// with) runs once; the choices then run as branches after it, each attending to the cached prefix and to itself.
/// Greedy generation appends one token at a time instead of running the whole sequence again for each token. The
/// logits are the full forward pass's, up to the order of float sums (a test holds them to it).
final class Decoder {
    let model: LlamaModel<Float>
    let maxLength: Int
    /// Tokens in the cache.
    private(set) var length = 0
    /// Keys and values of the cached tokens, per layer: [maxLength, kvWidth] each.
    private var keys: [[Float]], values: [[Float]]
    private let c: LlamaConfig
    private var kvWidth: Int { c.num_key_value_heads * c.head_dim }

    /// `model` must carry no adapter (merge it into the weights first).
    init(_ model: LlamaModel<Float>) {
        precondition(model.lora == nil, "merge the adapter into the weights before decoding")
        self.model = model
        c = model.config
        maxLength = c.max_position_embeddings
        let width = c.num_key_value_heads * c.head_dim
        keys = Array(repeating: [Float](repeating: 0, count: maxLength * width), count: c.num_hidden_layers)
        values = keys
    }

    func reset() { length = 0 }
    /// Forgets cached tokens past `n`.
    func truncate(to n: Int) { length = min(length, n) }

    /// Room left in the cache.
    var room: Int { maxLength - length }

    /// Runs each branch after the cached tokens and returns its logits, [branch.count × vocab] per branch. With
    /// `commit` (one branch only) its keys and values join the cache. Branches must fit the room left.
    func run(_ branches: [[Int32]], commit: Bool = false) -> [[Float]] {
        precondition(!commit || branches.count == 1, "only one branch can join the cache")
        let t = branches.map(\.count).max() ?? 0
        precondition(t > 0 && t <= room, "branches must be non-empty and fit the cache")
        let nb = branches.count, n = nb * t, d = c.hidden_size, inter = c.intermediate_size
        let heads = c.num_attention_heads, hd = c.head_dim, qWidth = heads * hd, kvw = kvWidth
        let eps = Float(c.rms_norm_eps), w = model.weights

        var tokens = [Int32](repeating: Tokenizer.eos, count: n)
        for (b, branch) in branches.enumerated() { for (i, token) in branch.enumerated() { tokens[b * t + i] = token } }
        var x = [Float](repeating: 0, count: n * d), xn = x, h = x, out = x, invRms = [Float](repeating: 0, count: n)
        var q = [Float](repeating: 0, count: n * qWidth), attn = q
        var k = [Float](repeating: 0, count: n * kvw), v = k
        var gate = [Float](repeating: 0, count: n * inter), up = gate, act = gate

        embeddingForward(&x, w.embed_tokens.data, tokens, rows: n, dim: d)
        rmsNormForward(&xn, &invRms, x, w.layers[0].input_layernorm.data, rows: n, dim: d, eps: eps)
        for l in 0..<c.num_hidden_layers {
            let lw = w.layers[l]
            linearForward(&q, xn, lw[.q_proj].data, rows: n, in: d, out: qWidth)
            linearForward(&k, xn, lw[.k_proj].data, rows: n, in: d, out: kvw)
            linearForward(&v, xn, lw[.v_proj].data, rows: n, in: d, out: kvw)
            rope(&q, rows: n, seqLen: t, heads: heads, headDim: hd, tables: model.rotary, firstPosition: length)
            rope(&k, rows: n, seqLen: t, heads: c.num_key_value_heads, headDim: hd, tables: model.rotary, firstPosition: length)
            attend(&attn, q, k, v, keys[l], values[l], lengths: branches.map(\.count), t: t)
            if commit {
                let rows = branches[0].count
                keys[l].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: length * kvw).update(from: k, count: rows * kvw) }
                values[l].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: length * kvw).update(from: v, count: rows * kvw) }
            }
            // h = x + o_proj(attn), normalised; out = h + down_proj(silu(gate) ⊙ up), normalised for the next layer.
            linearForward(&h, attn, lw[.o_proj].data, rows: n, in: qWidth, out: d)
            residualRMSNormForward(&xn, &invRms, &h, residual: x, lw.post_attention_layernorm.data, rows: n, dim: d, eps: eps)
            linearForward(&gate, xn, lw[.gate_proj].data, rows: n, in: d, out: inter)
            linearForward(&up, xn, lw[.up_proj].data, rows: n, in: d, out: inter)
            swigluForward(&act, gate, up, count: n * inter)
            linearForward(&out, act, lw[.down_proj].data, rows: n, in: inter, out: d)
            let norm = l + 1 < c.num_hidden_layers ? w.layers[l + 1].input_layernorm.data : w.norm.data
            residualRMSNormForward(&xn, &invRms, &out, residual: h, norm, rows: n, dim: d, eps: eps)
            swap(&x, &out)
        }
        var logits = [Float](repeating: 0, count: n * c.vocab_size)
        linearForward(&logits, xn, model.headWeight.data, rows: n, in: d, out: c.vocab_size)
        if commit { length += branches[0].count }
        return branches.enumerated().map { b, branch in Array(logits[(b * t * c.vocab_size)..<((b * t + branch.count) * c.vocab_size)]) }
    }

    /// Causal attention of each branch's rows over the cached tokens and the branch's own rows up to each one.
    private func attend(
        _ attn: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
        _ cachedK: UnsafePointer<Float>, _ cachedV: UnsafePointer<Float>, lengths: [Int], t: Int
    ) {
        let heads = c.num_attention_heads, hd = c.head_dim, qWidth = heads * hd, kvw = kvWidth, group = heads / c.num_key_value_heads
        let scale = 1 / Float(hd).squareRoot()
        var scores = [Float](repeating: 0, count: length + t)
        for (b, count) in lengths.enumerated() {
            for i in 0..<count {
                let row = b * t + i
                for head in 0..<heads {
                    let kvh = head / group, qp = q + row * qWidth + head * hd, o = attn + row * qWidth + head * hd
                    func key(_ j: Int) -> UnsafePointer<Float> {
                        j < length ? cachedK + j * kvw + kvh * hd : k + (b * t + j - length) * kvw + kvh * hd
                    }
                    func value(_ j: Int) -> UnsafePointer<Float> {
                        j < length ? cachedV + j * kvw + kvh * hd : v + (b * t + j - length) * kvw + kvh * hd
                    }
                    let n = length + i + 1
                    var m = -Float.infinity
                    for j in 0..<n { scores[j] = scale * dot(qp, key(j), hd); m = max(m, scores[j]) }
                    var sum: Float = 0
                    for j in 0..<n { scores[j] = Foundation.exp(scores[j] - m); sum += scores[j] }
                    o.update(repeating: 0, count: hd)
                    for j in 0..<n { axpy(o, value(j), scores[j] / sum, hd) }
                }
            }
        }
    }
}
