import Foundation

/// The seven linear projections of a Llama block, by their Hugging Face module names.
public enum Projection: Int, CaseIterable, Sendable {
    case q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj

    public var name: String { String(describing: self) }
    public init?(name: String) {
        guard let p = Projection.allCases.first(where: { $0.name == name }) else { return nil }
        self = p
    }
    /// The submodule holding it: `self_attn` or `mlp`.
    public var parent: String {
        switch self {
        case .q_proj, .k_proj, .v_proj, .o_proj: "self_attn"
        case .gate_proj, .up_proj, .down_proj: "mlp"
        }
    }
    public func inFeatures(_ c: LlamaConfig) -> Int {
        switch self {
        case .q_proj, .k_proj, .v_proj, .gate_proj, .up_proj: c.hidden_size
        case .o_proj: c.num_attention_heads * c.head_dim
        case .down_proj: c.intermediate_size
        }
    }
    public func outFeatures(_ c: LlamaConfig) -> Int {
        switch self {
        case .q_proj: c.num_attention_heads * c.head_dim
        case .k_proj, .v_proj: c.num_key_value_heads * c.head_dim
        case .o_proj, .down_proj: c.hidden_size
        case .gate_proj, .up_proj: c.intermediate_size
        }
    }
}

public struct LoRAConfig: Sendable, Equatable {
    public var r: Int
    public var lora_alpha: Double
    public var lora_dropout: Double
    public var target_modules: [Projection]

    public init(r: Int = 8, lora_alpha: Double = 16, lora_dropout: Double = 0, target_modules: [Projection] = [.q_proj, .v_proj]) {
        self.r = r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules
    }
    public var scaling: Double { lora_alpha / Double(r) }
}

/// One adapter: y += scaling · dropout(x) Aᵀ Bᵀ with A [r, in], B [out, r], as PEFT's lora.Linear.
public final class LoRAAdapter<T: Real>: @unchecked Sendable {
    public let A: Tensor<T>, B: Tensor<T>
    public let dA: Tensor<T>, dB: Tensor<T>
    public let inFeatures: Int, outFeatures: Int, r: Int

    init(r: Int, inFeatures: Int, outFeatures: Int) {
        self.r = r
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        A = Tensor([r, inFeatures]); B = Tensor([outFeatures, r])
        dA = Tensor([r, inFeatures]); dB = Tensor([outFeatures, r])
    }
}

/// Adapters of a whole model, indexed [layer][projection]; the base weights stay frozen.
public final class LoRA<T: Real>: @unchecked Sendable {
    public let config: LoRAConfig
    public let adapters: [[LoRAAdapter<T>?]]

    /// A as PEFT initialises it (kaiming_uniform_ with a = √5, i.e. U(−1/√in, 1/√in)), B zero: a fresh adapter is a no-op.
    public init(config: LoRAConfig, model: LlamaConfig, rng: inout SeededGenerator) {
        self.config = config
        adapters = (0..<model.num_hidden_layers).map { _ in
            Projection.allCases.map { p -> LoRAAdapter<T>? in
                guard config.target_modules.contains(p) else { return nil }
                let a = LoRAAdapter<T>(r: config.r, inFeatures: p.inFeatures(model), outFeatures: p.outFeatures(model))
                let bound = 1 / Double(a.inFeatures).squareRoot()
                for i in 0..<a.A.count { a.A.data[i] = T(rng.uniform(-bound, bound)) }
                return a
            }
        }
    }

    public var all: [LoRAAdapter<T>] { adapters.flatMap { $0.compactMap { $0 } } }

    /// W += scaling · B A for every adapted projection; the merged model gives the same logits without adapters.
    @_specialize(where T == Float)
    public func merge(into weights: LlamaWeights<T>) {
        let s = T(config.scaling)
        for (l, row) in adapters.enumerated() {
            for (pi, adapter) in row.enumerated() {
                guard let a = adapter else { continue }
                T.gemm(
                    transA: false, transB: false, m: a.outFeatures, n: a.inFeatures, k: a.r, alpha: s,
                    a: a.B.data, lda: a.r, b: a.A.data, ldb: a.inFeatures, beta: 1,
                    c: weights.layers[l].projections[pi].data, ldc: a.inFeatures)
            }
        }
    }
}

// MARK: - The adapter's forward and backward, as ops.

/// xd = x ⊙ mask (mask holds 0 or 1/(1−p); nil means no dropout); u = xd Aᵀ; y += scaling · u Bᵀ.
@_specialize(where T == Float)
func loraForward<T: Real>(
    _ y: UnsafeMutablePointer<T>, _ u: UnsafeMutablePointer<T>, _ xd: UnsafeMutablePointer<T>?,
    _ x: UnsafePointer<T>, mask: UnsafePointer<T>?, _ a: LoRAAdapter<T>, rows n: Int, scaling: T
) {
    var input = x
    if let mask, let xd {
        for i in 0..<(n * a.inFeatures) { xd[i] = x[i] * mask[i] }
        input = UnsafePointer(xd)
    }
    linearForward(u, input, a.A.data, rows: n, in: a.inFeatures, out: a.r)
    linearForward(y, u, a.B.data, rows: n, in: a.r, out: a.outFeatures, alpha: scaling, beta: 1)
}

/// dA += duᵀ xd, dB += scaling · dyᵀ u, dx += (du A) ⊙ mask with du = scaling · dy B (dx untouched without
/// `needInput`). `du` holds n·r values and `dxd` n·in values of scratch. The weight gradients go to `dA` and `dB`,
/// the adapter's own unless given.
@_specialize(where T == Float)
func loraBackward<T: Real>(
    _ dx: UnsafeMutablePointer<T>, _ dy: UnsafePointer<T>, _ u: UnsafePointer<T>,
    _ xd: UnsafePointer<T>, mask: UnsafePointer<T>?, _ a: LoRAAdapter<T>, rows n: Int, scaling: T,
    du: UnsafeMutablePointer<T>, dxd: UnsafeMutablePointer<T>,
    dA: UnsafeMutablePointer<T>? = nil, dB: UnsafeMutablePointer<T>? = nil, needInput: Bool = true
) {
    linearBackwardWeight(dB ?? a.dB.data, dy, u, rows: n, in: a.r, out: a.outFeatures, alpha: scaling)
    linearBackwardInput(du, dy, a.B.data, rows: n, in: a.r, out: a.outFeatures, alpha: scaling)
    linearBackwardWeight(dA ?? a.dA.data, du, xd, rows: n, in: a.inFeatures, out: a.r)
    guard needInput else { return }
    if let mask {
        linearBackwardInput(dxd, du, a.A.data, rows: n, in: a.inFeatures, out: a.r)
        for i in 0..<(n * a.inFeatures) { dx[i] += dxd[i] * mask[i] }
    } else {
        linearBackwardInput(dx, du, a.A.data, rows: n, in: a.inFeatures, out: a.r, beta: 1)
    }
}
