import Foundation
import Testing
@testable import TrainingCore

/// The batch split over threads: any number of parts gives the same gradients up to rounding, and a given number of
/// parts gives the same bits every time.
@Suite("Parallel passes")
struct ParallelTests {
    static let config = LlamaConfig(
        vocab_size: 30, hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2,
        num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64)
    static let batch = 3, seqLen = 37

    /// Loss and every gradient of one forward + backward with at most `parts` parts.
    func run(parts: Int, lora: LoRAConfig?, trainBase: Bool) -> (loss: Double, grads: [[Float]]) {
        let m: LlamaModel<Float> = randomModel(Self.config, lora: lora, trainBase: trainBase, seed: 21)
        m.dropoutRNG = SeededGenerator(seed: 4)
        let ws = m.makeWorkspace(batch: Self.batch, seqLen: Self.seqLen)
        ws.maxParts = parts
        var rng = SeededGenerator(seed: 8)
        let n = Self.batch * Self.seqLen
        for i in 0..<n {
            ws.tokens[i] = Int32(rng.next() % 30)
            ws.targets[i] = i % 5 == 0 ? ignoreIndex : Int32(rng.next() % 30)
        }
        // Two micro-batches accumulate, the second one shorter.
        m.forward(ws, batch: Self.batch, seqLen: Self.seqLen, training: true)
        let l = m.loss(ws, batch: Self.batch, seqLen: Self.seqLen, gradScale: 1 / Float(n))
        m.backward(ws, batch: Self.batch, seqLen: Self.seqLen)
        m.forward(ws, batch: 2, seqLen: 20, training: true)
        _ = m.loss(ws, batch: 2, seqLen: 20, gradScale: 1 / Float(n))
        m.backward(ws, batch: 2, seqLen: 20)
        let grads = (m.grads?.named.map(\.tensor.array) ?? []) + (m.lora?.all.flatMap { [$0.dA.array, $0.dB.array] } ?? [])
        return (l.sum, grads)
    }

    @Test(
        arguments: [
            (LoRAConfig(r: 4, lora_dropout: 0.1, target_modules: Projection.allCases), false),
            (LoRAConfig(r: 4), false), (nil, true)
        ] as [(LoRAConfig?, Bool)])
    func splitsAgree(lora: LoRAConfig?, trainBase: Bool) {
        let one = run(parts: 1, lora: lora, trainBase: trainBase)
        let two = run(parts: 2, lora: lora, trainBase: trainBase), again = run(parts: 2, lora: lora, trainBase: trainBase)
        let three = run(parts: 3, lora: lora, trainBase: trainBase)
        #expect(two.loss == again.loss && two.grads == again.grads, "two parts must be deterministic")
        #expect(!one.grads.isEmpty)
        // A NaN loss or gradient fails here: `max(0, .nan)` is 0, so the maxima below would hide it.
        #expect(one.loss.isFinite && one.grads.allSatisfy { $0.allSatisfy { $0.isFinite } }, "one part: loss \(one.loss)")
        for other in [two, three] {
            #expect(other.loss.isFinite && abs(one.loss - other.loss) <= 1e-5 * abs(one.loss), "loss \(one.loss) vs \(other.loss)")
            // `zip` stops at the shorter list: the same tensors, each of the same size.
            #expect(other.grads.map(\.count) == one.grads.map(\.count))
            for (a, b) in zip(one.grads, other.grads) {
                #expect(b.allSatisfy { $0.isFinite }, "a gradient is not finite")
                let scale = a.reduce(0) { max($0, abs($1)) }
                let diff = zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
                #expect(diff <= 1e-4 * max(scale, 1e-6), "max difference \(diff) at scale \(scale)")
            }
        }
    }
}

@Suite("Vectorised kernels")
struct VectorKernelTests {
    @Test func floatExpMatchesTheLibrary() {
        var worst = 0.0, checked = 0
        var x: Float = -87
        while x < 88 {
            var v = SIMD8<Float>()
            for l in 0..<8 { v[l] = x + Float(l) * 0.0013 }
            let e = Float.exp(v)
            for l in 0..<8 {
                let reference = Foundation.exp(Double(v[l]))
                let error = abs(Double(e[l]) - reference) / reference
                // A NaN error counts as infinite: `max(worst, .nan)` would keep `worst`.
                worst = max(worst, error.isNaN ? .infinity : error)
                checked += 1
            }
            x += 0.0917
        }
        // −87 up to 88 in Float steps of 0.0917 is 1909 vectors of 8.
        #expect(checked == 8 * 1909, "\(checked) values checked")
        #expect(worst < 3e-7, "worst relative error \(worst)")
        // Far below the range: tiny, never NaN or negative; above: finite.
        #expect(Float.exp(SIMD8(repeating: -1000))[0] >= 0 && Float.exp(SIMD8(repeating: -1000))[0] < 1e-37)
        #expect(Float.exp(SIMD8(repeating: 1000))[0].isFinite)
    }

    @Test func maskedScaleClearsThePadding() {
        let row = UnsafeMutablePointer<Float>.allocate(capacity: 21)
        defer { row.deallocate() }
        for keep in 0...21 {
            for j in 0..<21 { row[j] = Float(j + 1) }
            multiply(row, by: 2, keep: keep, width: 21)
            for j in 0..<21 { #expect(row[j] == (j < keep ? Float(2 * (j + 1)) : 0)) }
        }
    }
}
