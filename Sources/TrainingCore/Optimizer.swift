import Foundation

/// A trainable tensor with its gradient.
public struct Parameter<T: Real>: @unchecked Sendable {
    public let name: String
    public let value: Tensor<T>
    public let grad: Tensor<T>
    /// Norm weights are not decayed, as the Hugging Face Trainer leaves them out of weight decay.
    public let decay: Bool
}

/// AdamW as torch.optim.AdamW: decoupled decay p ← p − lr·λ·p, then the bias-corrected Adam step.
public final class AdamW<T: Real>: @unchecked Sendable {
    public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public private(set) var stepCount = 0
    private let m: [Tensor<T>], v: [Tensor<T>]

    public init(_ params: [Parameter<T>], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        m = params.map { Tensor($0.value.shape) }
        v = params.map { Tensor($0.value.shape) }
    }

    @_specialize(where T == Float)
    public func step(_ params: [Parameter<T>], lr: Double) {
        stepCount += 1
        let b1 = T(beta1), b2 = T(beta2), e = T(eps)
        let c1 = T(1 - Foundation.pow(beta1, Double(stepCount))), c2 = T(1 - Foundation.pow(beta2, Double(stepCount)))
        let stepSize = T(lr) / c1, c2Root = c2.squareRoot()
        for (i, p) in params.enumerated() {
            let w = p.value.data, g = p.grad.data, mi = m[i].data, vi = v[i].data
            let decay = p.decay ? 1 - T(lr * weightDecay) : 1
            for j in 0..<p.value.count {
                let gj = g[j]
                mi[j] = b1 * mi[j] + (1 - b1) * gj
                vi[j] = b2 * vi[j] + (1 - b2) * gj * gj
                w[j] = w[j] * decay - stepSize * mi[j] / (vi[j].squareRoot() / c2Root + e)
            }
        }
    }
}

public enum Gradients {
    @_specialize(where T == Float)
    public static func globalNorm<T>(_ params: [Parameter<T>]) -> Double {
        var sum = 0.0
        for p in params { sum += Double(dot(p.grad.data, p.grad.data, p.grad.count)) }
        return sum.squareRoot()
    }

    /// Scales all gradients so their global norm is at most maxNorm (torch.nn.utils.clip_grad_norm_); returns the
    /// norm before clipping.
    @discardableResult
    @_specialize(where T == Float)
    public static func clip<T>(_ params: [Parameter<T>], maxNorm: Double) -> Double {
        let norm = globalNorm(params)
        guard maxNorm > 0, norm > maxNorm, norm.isFinite else { return norm }
        let scale = T(maxNorm / (norm + 1e-6))
        for p in params { for j in 0..<p.grad.count { p.grad.data[j] *= scale } }
        return norm
    }

    @_specialize(where T == Float)
    public static func zero<T>(_ params: [Parameter<T>]) { for p in params { p.grad.zero() } }
}

/// Linear warmup over the first warmupSteps, then cosine or linear decay to min_lr_ratio · lr at totalSteps,
/// as transformers' get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup (step counted from 0).
public struct LRSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable { case cosine, linear }
    public var peak: Double, warmupSteps: Int, totalSteps: Int, kind: Kind, minRatio: Double

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, kind: Kind, minRatio: Double = 0) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.kind = kind; self.minRatio = minRatio
    }

    public func lr(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        let progress = min(1, Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps)))
        let shape = kind == .cosine ? 0.5 * (1 + Foundation.cos(Double.pi * progress)) : 1 - progress
        return peak * (minRatio + (1 - minRatio) * shape)
    }
}
