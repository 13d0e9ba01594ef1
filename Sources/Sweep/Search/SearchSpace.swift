import HarrowCore
import Foundation

/// The searched parameters of an experiment, each mapped onto [0, 1] by its prior's distribution function, as
/// W&B's bayes search does (wandb/sweeps@b1dfc5f `src/sweeps/params.py`, `HyperParameter.cdf` and `.ppf`).
/// Constants and derived parameters are not searched: the planner computes them from the point.
public struct SearchSpace: Sendable {
    public struct Dimension: Sendable {
        /// The parameter's slot in the experiment's (sorted) parameter order.
        public var slot: Int
        public var name: String
        public var distribution: Distribution
    }

    public let experiment: Experiment
    public let dimensions: [Dimension]

    public init(_ experiment: Experiment) {
        self.experiment = experiment
        dimensions = experiment.parameters.enumerated().compactMap { slot, p in
            switch p.distribution {
            case .constant, .derived: nil
            default: Dimension(slot: slot, name: p.name, distribution: p.distribution)
            }
        }
    }

    /// A trial's point in the unit cube, or nil when one of its values lies outside the space (a trial of an
    /// earlier version of the file).
    public func point(of trial: Trial) -> [Double]? {
        var x: [Double] = []
        for d in dimensions {
            guard let v = trial.values.indices.contains(d.slot) ? trial.values[d.slot] : nil,
                let u = Self.cdf(d.distribution, v), u.isFinite
            else { return nil }
            x.append(min(max(u, 0), 1))
        }
        return x
    }

    /// The choices of a point of the unit cube, constants filled in, derived parameters left to the planner.
    public func choices(at x: [Double]) -> [Distribution.Choice] {
        var choices: [Distribution.Choice] = experiment.parameters.map {
            switch $0.distribution {
            case .constant(let v): .value(v)
            case .derived(let e): .expr(e)
            default: .value(.null)
            }
        }
        for (d, u) in zip(dimensions, x) { choices[d.slot] = Self.ppf(d.distribution, min(max(u, 0), 1)) }
        return choices
    }

    /// The trial at a point, or nil when `exclude` or `where` drops it.
    public func trial(at x: [Double]) throws(ExperimentError) -> Trial? {
        try Planner.trial(experiment, choices: choices(at: x))
    }

    /// The prior's distribution function at a value (a categorical's index i of n maps to (i + 1) / n, scipy's
    /// `randint.cdf`).
    static func cdf(_ distribution: Distribution, _ value: ParamValue) -> Double? {
        switch distribution {
        case .categorical(let choices):
            guard let i = choices.firstIndex(where: { if case .value(let v) = $0 { v.sameValue(as: value) } else { false } }) else {
                return nil
            }
            return Double(i + 1) / Double(choices.count)
        case .weightedCategorical(let values, let p):
            guard let i = values.firstIndex(where: { $0.sameValue(as: value) }) else { return nil }
            let total = p.reduce(0, +)
            return p[...i].reduce(0, +) / total
        default: break
        }
        guard let x = value.number else { return nil }
        switch distribution {
        case .intUniform(let lo, let hi): return (x - Double(lo) + 1) / (Double(hi) - Double(lo) + 1)
        case .uniform(let lo, let hi), .qUniform(let lo, let hi, _, _): return (x - lo) / (hi - lo)
        case .logUniformValues(let lo, let hi), .qLogUniformValues(let lo, let hi, _, _):
            return x > 0 ? (log(x) - log(lo)) / (log(hi) - log(lo)) : nil
        case .invLogUniformValues(let lo, let hi):
            // 1 − uniform.cdf(log(1/x), −log max, log max − log min)
            return x > 0 ? 1 - (log(1 / x) + log(hi)) / (log(hi) - log(lo)) : nil
        case .normal(let mu, let sigma), .qNormal(let mu, let sigma, _, _): return Normal.cdf((x - mu) / sigma)
        case .logNormal(let mu, let sigma), .qLogNormal(let mu, let sigma, _, _): return x > 0 ? Normal.cdf((log(x) - mu) / sigma) : nil
        case .beta(let a, let b), .qBeta(let a, let b, _, _): return x <= 0 ? 0 : x >= 1 ? 1 : regularizedBeta(x, a, b)
        default: return nil
        }
    }

    /// The prior's quantile function: the value a point of [0, 1] stands for. A categorical's u in (k/n, (k+1)/n]
    /// is choice k (scipy's `randint.ppf`); u = 0, which W&B maps to the last choice by Python's index −1, is the first.
    static func ppf(_ distribution: Distribution, _ u: Double) -> Distribution.Choice {
        func q(_ x: Double, _ step: Double, _ integral: Bool) -> Distribution.Choice { .value(quantized(x, q: step, integral: integral)) }
        switch distribution {
        case .constant(let v): return .value(v)
        case .derived(let e): return .expr(e)
        case .categorical(let choices):
            return choices[min(max(Int((u * Double(choices.count)).rounded(.up)) - 1, 0), choices.count - 1)]
        case .weightedCategorical(let values, let p):
            let total = p.reduce(0, +)
            var cumulative = 0.0
            for (v, w) in zip(values, p) {
                cumulative += w / total
                if u < cumulative { return .value(v) }
            }
            return .value(values[values.count - 1])
        case .intUniform(let lo, let hi):
            let n = Double(hi) - Double(lo) + 1
            return .value(.int(lo + min(max(Int((u * n).rounded(.up)) - 1, 0), hi - lo)))
        case .uniform(let lo, let hi): return .value(.double(lo + (hi - lo) * u))
        case .qUniform(let lo, let hi, let step, let integral): return q(lo + (hi - lo) * u, step, integral)
        case .logUniformValues(let lo, let hi): return .value(.double(exp(log(lo) + (log(hi) - log(lo)) * u)))
        case .qLogUniformValues(let lo, let hi, let step, let integral): return q(exp(log(lo) + (log(hi) - log(lo)) * u), step, integral)
        case .invLogUniformValues(let lo, let hi): return .value(.double(exp(-(-log(hi) + (log(hi) - log(lo)) * (1 - u)))))
        case .normal(let mu, let sigma): return .value(.double(mu + sigma * Normal.quantile(u)))
        case .qNormal(let mu, let sigma, let step, let integral): return q(mu + sigma * Normal.quantile(u), step, integral)
        case .logNormal(let mu, let sigma): return .value(.double(exp(mu + sigma * Normal.quantile(u))))
        case .qLogNormal(let mu, let sigma, let step, let integral): return q(exp(mu + sigma * Normal.quantile(u)), step, integral)
        case .beta(let a, let b): return .value(.double(inverseRegularizedBeta(u, a, b)))
        case .qBeta(let a, let b, let step, let integral): return q(inverseRegularizedBeta(u, a, b), step, integral)
        }
    }
}

extension Normal {
    /// The standard normal's quantile (Acklam's rational approximation refined by one Halley step; |error| < 1e-13).
    static func quantile(_ p: Double) -> Double {
        if p <= 0 { return -.infinity }
        if p >= 1 { return .infinity }
        let a: [Double] = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01,
            2.506628277459239e+00
        ]
        let b: [Double] = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01
        ]
        let c: [Double] = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00,
            2.938163982698783e+00
        ]
        let d: [Double] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        /// A polynomial by Horner's rule, highest coefficient first.
        func poly(_ k: [Double], _ t: Double) -> Double { k.reduce(0) { $0 * t + $1 } }
        var x: Double
        if p < 0.02425 {
            let q = (-2 * log(p)).squareRoot()
            x = poly(c, q) / (poly(d, q) * q + 1)
        } else if p > 1 - 0.02425 {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -poly(c, q) / (poly(d, q) * q + 1)
        } else {
            let q = p - 0.5, r = q * q
            x = poly(a, r) * q / (poly(b, r) * r + 1)
        }
        let e = cdf(x) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        return x - u / (1 + x * u / 2)
    }
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (Numerical Recipes §6.4).
func regularizedBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    let logFront: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
    let front = exp(logFront + a * log(x) + b * log(1 - x))
    if x > (a + 1) / (a + b + 2) { return 1 - regularizedBeta(1 - x, b, a) }
    var f = 1.0, c = 1.0, d = 0.0
    for i in 0...300 {
        let m = Double(i / 2)
        let numerator: Double
        if i == 0 {
            numerator = 1
        } else if i % 2 == 0 {
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        } else {
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        }
        d = 1 + numerator * d
        d = abs(d) < 1e-300 ? 1e-300 : d
        d = 1 / d
        c = 1 + numerator / c
        c = abs(c) < 1e-300 ? 1e-300 : c
        let cd = c * d
        f *= cd
        if abs(1 - cd) < 1e-14 { break }
    }
    return front * (f - 1) / a
}

/// The inverse of I_x(a, b) in x, by bisection (52 halvings reach a double's precision on [0, 1]).
func inverseRegularizedBeta(_ u: Double, _ a: Double, _ b: Double) -> Double {
    var lo = 0.0, hi = 1.0
    for _ in 0..<60 {
        let mid = (lo + hi) / 2
        if regularizedBeta(mid, a, b) < u { lo = mid } else { hi = mid }
    }
    return (lo + hi) / 2
}
