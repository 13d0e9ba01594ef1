import Foundation
import Testing
@testable import TrainingCore

/// Finite-difference checks in Float64. Central differences with h = 1e-6 have truncation error O(h²) and
/// rounding error about 1e-16/h ≈ 1e-10, so analytic and numeric gradients must agree to
/// |analytic − numeric| ≤ 1e-6 · max(1, |numeric|) everywhere.
let gradientTolerance = 1e-6

func randomArray(_ n: Int, _ rng: inout SeededGenerator, scale: Double = 1) -> [Double] {
    (0..<n).map { _ in scale * rng.uniform(-1, 1) }
}

/// Compares `analytic` with central differences of `loss` with respect to every element of `x`.
func expectGradient(
    _ label: String, _ x: UnsafeMutablePointer<Double>, count: Int, analytic: [Double],
    loss: () -> Double, sourceLocation: SourceLocation = #_sourceLocation
) {
    let h = 1e-6
    #expect(
        count > 0 && analytic.count == count, "\(label): \(analytic.count) analytic values for \(count) elements",
        sourceLocation: sourceLocation)
    // A NaN or infinite error fails on its own: `max(worst, .nan)` would quietly keep `worst`.
    var worst = 0.0, nonFinite: [Int] = []
    for i in 0..<min(count, analytic.count) {
        let saved = x[i]
        x[i] = saved + h; let up = loss()
        x[i] = saved - h; let down = loss()
        x[i] = saved
        let numeric = (up - down) / (2 * h)
        let error = abs(analytic[i] - numeric) / max(1, abs(numeric))
        if error.isFinite { worst = max(worst, error) } else { nonFinite.append(i) }
    }
    #expect(
        nonFinite.isEmpty && worst <= gradientTolerance,
        "\(label): worst error \(worst); non-finite at \(nonFinite.prefix(5))", sourceLocation: sourceLocation)
}

/// Σ r ⊙ y: a random linear read-out, so dL/dy = r.
func readout(_ y: UnsafePointer<Double>, _ r: [Double]) -> Double {
    var s = 0.0
    for i in 0..<r.count { s += y[i] * r[i] }
    return s
}

@Suite("Finite-difference gradients of every op (Float64)")
struct OpGradientTests {
    @Test func linear() {
        var rng = SeededGenerator(seed: 1)
        let n = 3, inF = 5, outF = 4
        let x = Tensor<Double>([n, inF], values: randomArray(n * inF, &rng))
        let w = Tensor<Double>([outF, inF], values: randomArray(outF * inF, &rng))
        let r = randomArray(n * outF, &rng)
        let y = Tensor<Double>([n, outF]), dy = Tensor<Double>([n, outF], values: r)
        let f = {
            linearForward(y.data, x.data, w.data, rows: n, in: inF, out: outF); return readout(y.data, r)
        }
        let dx = Tensor<Double>([n, inF]), dw = Tensor<Double>([outF, inF])
        linearBackwardInput(dx.data, dy.data, w.data, rows: n, in: inF, out: outF)
        linearBackwardWeight(dw.data, dy.data, x.data, rows: n, in: inF, out: outF)
        expectGradient("dx", x.data, count: x.count, analytic: dx.array, loss: f)
        expectGradient("dW", w.data, count: w.count, analytic: dw.array, loss: f)
    }

    @Test func embedding() {
        var rng = SeededGenerator(seed: 2)
        let table = Tensor<Double>([6, 4], values: randomArray(24, &rng))
        var tokens: [Int32] = [1, 3, 1, 5]
        let r = randomArray(16, &rng)
        let out = Tensor<Double>([4, 4]), dOut = Tensor<Double>([4, 4], values: r), dTable = Tensor<Double>([6, 4])
        tokens.withUnsafeMutableBufferPointer { tk in
            let f = {
                embeddingForward(out.data, table.data, tk.baseAddress!, rows: 4, dim: 4); return readout(out.data, r)
            }
            embeddingBackward(dTable.data, dOut.data, tk.baseAddress!, rows: 4, dim: 4)
            expectGradient("dTable", table.data, count: table.count, analytic: dTable.array, loss: f)
        }
    }

    @Test func rmsNorm() {
        var rng = SeededGenerator(seed: 3)
        let n = 3, d = 10
        let x = Tensor<Double>([n, d], values: randomArray(n * d, &rng)), w = Tensor<Double>([d], values: randomArray(d, &rng))
        let r = randomArray(n * d, &rng)
        let y = Tensor<Double>([n, d]), inv = Tensor<Double>([n])
        let f = {
            rmsNormForward(y.data, inv.data, x.data, w.data, rows: n, dim: d, eps: 1e-5); return readout(y.data, r)
        }
        _ = f()
        let dx = Tensor<Double>([n, d]), dw = Tensor<Double>([d]), dy = Tensor<Double>([n, d], values: r)
        rmsNormBackward(dx.data, dw.data, dy.data, x.data, w.data, inv.data, rows: n, dim: d)
        expectGradient("dx", x.data, count: x.count, analytic: dx.array, loss: f)
        expectGradient("dw", w.data, count: w.count, analytic: dw.array, loss: f)
    }

    @Test func rotaryEmbedding() {
        var rng = SeededGenerator(seed: 4)
        let t = 5, heads = 2, hd = 8, n = 2 * t
        let tables = RotaryTables<Double>(maxPositions: 16, headDim: hd, theta: 10000)
        let x = Tensor<Double>([n, heads * hd], values: randomArray(n * heads * hd, &rng))
        let r = randomArray(x.count, &rng)
        let y = Tensor<Double>([n, heads * hd])
        let f = {
            y.copy(from: x); rope(y.data, rows: n, seqLen: t, heads: heads, headDim: hd, tables: tables); return readout(y.data, r)
        }
        let dx = Tensor<Double>([n, heads * hd], values: r)
        rope(dx.data, rows: n, seqLen: t, heads: heads, headDim: hd, tables: tables, inverse: true)
        expectGradient("dx", x.data, count: x.count, analytic: dx.array, loss: f)
    }

    /// Position 0 is unrotated and element j pairs with j + headDim/2 (rotate_half), not with j + 1.
    @Test func rotaryEmbeddingUsesRotateHalf() {
        let tables = RotaryTables<Double>(maxPositions: 4, headDim: 4, theta: 10000)
        var x: [Double] = [1, 2, 3, 4, 1, 2, 3, 4]
        x.withUnsafeMutableBufferPointer { rope($0.baseAddress!, rows: 2, seqLen: 2, heads: 1, headDim: 4, tables: tables) }
        #expect(Array(x[0..<4]) == [1, 2, 3, 4])
        let c = Double(Float(cos(Float(1)))), s = Double(Float(sin(Float(1))))
        #expect(abs(x[4] - (1 * c - 3 * s)) < 1e-7)
        #expect(abs(x[6] - (3 * c + 1 * s)) < 1e-7)
    }

    /// One query block, and blocks of 2 rows over 7 positions (the last block shorter).
    @Test(arguments: [(4, 32), (7, 2)]) func causalAttentionWithGroupedKVHeads(seqLen: Int, queryBlock: Int) {
        var rng = SeededGenerator(seed: 5)
        var s = AttentionShape(batch: 2, seqLen: seqLen, heads: 4, kvHeads: 2, headDim: 4)
        s.queryBlock = queryBlock
        let n = s.batch * s.seqLen
        let q = Tensor<Double>([n, s.qWidth], values: randomArray(n * s.qWidth, &rng))
        let k = Tensor<Double>([n, s.kvWidth], values: randomArray(n * s.kvWidth, &rng))
        let v = Tensor<Double>([n, s.kvWidth], values: randomArray(n * s.kvWidth, &rng))
        let r = randomArray(n * s.qWidth, &rng)
        let out = Tensor<Double>([n, s.qWidth]), probs = Tensor<Double>([s.probsCount])
        let f = {
            attentionForward(out.data, probs.data, q.data, k.data, v.data, s); return readout(out.data, r)
        }
        _ = f()
        let dq = Tensor<Double>([n, s.qWidth]), dk = Tensor<Double>([n, s.kvWidth]), dv = Tensor<Double>([n, s.kvWidth])
        let dOut = Tensor<Double>([n, s.qWidth], values: r), scratch = Tensor<Double>([s.seqLen * s.seqLen])
        attentionBackward(dq.data, dk.data, dv.data, dOut.data, probs.data, q.data, k.data, v.data, scratch.data, s)
        expectGradient("dq", q.data, count: q.count, analytic: dq.array, loss: f)
        expectGradient("dk", k.data, count: k.count, analytic: dk.array, loss: f)
        expectGradient("dv", v.data, count: v.count, analytic: dv.array, loss: f)
        // Causality: the first position of each sequence sees only itself.
        #expect(probs.data[0] == 1 && probs.data[1] == 0)
    }

    @Test func swiglu() {
        var rng = SeededGenerator(seed: 6)
        let n = 12
        let g = Tensor<Double>([n], values: randomArray(n, &rng, scale: 3)), u = Tensor<Double>([n], values: randomArray(n, &rng))
        let r = randomArray(n, &rng)
        let act = Tensor<Double>([n])
        let f = {
            swigluForward(act.data, g.data, u.data, count: n); return readout(act.data, r)
        }
        let dg = Tensor<Double>([n]), du = Tensor<Double>([n]), dAct = Tensor<Double>([n], values: r)
        swigluBackward(dg.data, du.data, dAct.data, g.data, u.data, count: n)
        expectGradient("dgate", g.data, count: n, analytic: dg.array, loss: f)
        expectGradient("dup", u.data, count: n, analytic: du.array, loss: f)
    }

    @Test func crossEntropyIgnoresMaskedTargets() {
        var rng = SeededGenerator(seed: 7)
        let n = 4, vocab = 7
        let logits = Tensor<Double>([n, vocab], values: randomArray(n * vocab, &rng, scale: 2))
        var targets: [Int32] = [3, ignoreIndex, 0, 6]
        targets.withUnsafeMutableBufferPointer { tp in
            let scratch = Tensor<Double>([n, vocab])
            let f = {
                scratch.copy(from: logits);
                return crossEntropy(scratch.data, targets: tp.baseAddress!, rows: n, vocab: vocab, gradScale: nil).sum / 3
            }
            let grad = logits.clone()
            let result = crossEntropy(grad.data, targets: tp.baseAddress!, rows: n, vocab: vocab, gradScale: 1.0 / 3)
            #expect(result.count == 3)
            #expect((0..<vocab).allSatisfy { grad.data[vocab + $0] == 0 })
            expectGradient("dlogits", logits.data, count: logits.count, analytic: grad.array, loss: f)
        }
    }

    @Test func loraAdapterWithDropoutMask() {
        var rng = SeededGenerator(seed: 8)
        let n = 3, inF = 6, outF = 5, r = 2
        let a = LoRAAdapter<Double>(r: r, inFeatures: inF, outFeatures: outF)
        a.A.buffer.update(fromContentsOf: randomArray(a.A.count, &rng))
        a.B.buffer.update(fromContentsOf: randomArray(a.B.count, &rng))
        let x = Tensor<Double>([n, inF], values: randomArray(n * inF, &rng))
        let mask = Tensor<Double>([n, inF], values: (0..<(n * inF)).map { _ in rng.unit() < 0.7 ? 1 / 0.7 : 0 })
        let read = randomArray(n * outF, &rng)
        let y = Tensor<Double>([n, outF]), u = Tensor<Double>([n, r]), xd = Tensor<Double>([n, inF])
        let f = {
            y.zero(); loraForward(y.data, u.data, xd.data, x.data, mask: mask.data, a, rows: n, scaling: 2); return readout(y.data, read)
        }
        _ = f()
        let dx = Tensor<Double>([n, inF]), dy = Tensor<Double>([n, outF], values: read)
        let du = Tensor<Double>([n, r]), dxd = Tensor<Double>([n, inF])
        loraBackward(dx.data, dy.data, u.data, xd.data, mask: mask.data, a, rows: n, scaling: 2, du: du.data, dxd: dxd.data)
        expectGradient("dx", x.data, count: x.count, analytic: dx.array, loss: f)
        expectGradient("dA", a.A.data, count: a.A.count, analytic: a.dA.array, loss: f)
        expectGradient("dB", a.B.data, count: a.B.count, analytic: a.dB.array, loss: f)
    }
}

/// A tiny model with every shape feature on: grouped kv heads, an untied head, several layers.
func tinyConfig(tied: Bool = false) -> LlamaConfig {
    LlamaConfig(
        vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2,
        num_key_value_heads: 1, max_position_embeddings: 8, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: tied)
}

func randomModel<T: Real>(_ c: LlamaConfig, lora: LoRAConfig?, trainBase: Bool = false, seed: UInt64 = 9) -> LlamaModel<T> {
    var rng = SeededGenerator(seed: seed)
    let w = LlamaWeights<T>(c)
    w.initialise(std: 0.5, rng: &rng)
    // Norm weights away from one, so their gradients are checked in a general position.
    for (_, t) in w.named where t.shape.count == 1 { for i in 0..<t.count { t.data[i] = T(1 + 0.3 * rng.uniform(-1, 1)) } }
    let adapters = lora.map { LoRA<T>(config: $0, model: c, rng: &rng) }
    // B random instead of zero, so gradients reach A.
    for a in adapters?.all ?? [] { for i in 0..<a.B.count { a.B.data[i] = T(0.5 * rng.uniform(-1, 1)) } }
    return LlamaModel(config: c, weights: w, lora: adapters, trainBase: trainBase)
}

func fillBatch<T>(_ ws: Workspace<T>, tokens: [Int32], targets: [Int32]) {
    for i in tokens.indices { ws.tokens[i] = tokens[i]; ws.targets[i] = targets[i] }
}

@Suite("Finite-difference gradients of the whole model (Float64)")
struct ModelGradientTests {
    let tokens: [Int32] = [1, 4, 2, 9, 3, 0, 7, 5, 5, 2, 8, 1]
    let targets: [Int32] = [4, 2, 9, ignoreIndex, 0, 7, 5, 5, 2, 8, 1, 10]

    func meanLoss(_ m: LlamaModel<Double>, _ ws: Workspace<Double>) -> Double {
        m.forward(ws, batch: 2, seqLen: 6, training: false)
        let l = m.loss(ws, batch: 2, seqLen: 6)
        return l.sum / Double(l.count)
    }

    @Test func loraOnEveryProjection() {
        let c = tinyConfig()
        let m: LlamaModel<Double> = randomModel(c, lora: LoRAConfig(r: 2, lora_alpha: 4, target_modules: Projection.allCases))
        let ws = m.makeWorkspace(batch: 2, seqLen: 6)
        fillBatch(ws, tokens: tokens, targets: targets)
        m.forward(ws, batch: 2, seqLen: 6, training: false)
        let count = m.loss(ws, batch: 2, seqLen: 6, gradScale: 1 / 11).count
        #expect(count == 11)
        m.backward(ws, batch: 2, seqLen: 6)
        // Every one of the 7 projections of both layers has an adapter, and each is checked.
        #expect(m.lora!.all.count == 2 * 7)
        for a in m.lora!.all {
            let dA = a.dA.array, dB = a.dB.array
            expectGradient("dA", a.A.data, count: a.A.count, analytic: dA) { meanLoss(m, ws) }
            expectGradient("dB", a.B.data, count: a.B.count, analytic: dB) { meanLoss(m, ws) }
        }
    }

    @Test(arguments: [false, true]) func fullFineTuning(tied: Bool) {
        let c = tinyConfig(tied: tied)
        let m: LlamaModel<Double> = randomModel(c, lora: nil, trainBase: true)
        let ws = m.makeWorkspace(batch: 2, seqLen: 6)
        fillBatch(ws, tokens: tokens, targets: targets)
        m.forward(ws, batch: 2, seqLen: 6, training: false)
        _ = m.loss(ws, batch: 2, seqLen: 6, gradScale: 1 / 11)
        m.backward(ws, batch: 2, seqLen: 6)
        // `zip` stops at the shorter list: every weight must have its gradient, name for name.
        #expect(m.grads!.named.map(\.name) == m.weights.named.map(\.name))
        // embed_tokens, per layer 2 norms and 7 projections, the final norm, and lm_head unless tied.
        #expect(m.weights.named.count == 1 + c.num_hidden_layers * 9 + 1 + (tied ? 0 : 1))
        for (w, g) in zip(m.weights.named, m.grads!.named) {
            expectGradient(w.name, w.tensor.data, count: w.tensor.count, analytic: g.tensor.array) { meanLoss(m, ws) }
        }
    }
}
