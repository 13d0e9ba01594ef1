import HarrowCore
import Foundation

/// How one parameter gets its values: W&B's parameter specs plus Harrow's derived expressions.
public enum Distribution: Sendable {
    case constant(ParamValue)
    /// `values:`; an entry may be an expression, so tied and free variants share one axis
    /// (`lora_alpha: {values: [16, {expr: "2 * lora_r"}]}`).
    case categorical([Choice])
    case weightedCategorical([ParamValue], probabilities: [Double])
    case intUniform(min: Int, max: Int)
    case uniform(min: Double, max: Double)
    case qUniform(min: Double, max: Double, q: Double, integral: Bool)
    case logUniformValues(min: Double, max: Double)
    case invLogUniformValues(min: Double, max: Double)
    case qLogUniformValues(min: Double, max: Double, q: Double, integral: Bool)
    case normal(mu: Double, sigma: Double)
    case qNormal(mu: Double, sigma: Double, q: Double, integral: Bool)
    case logNormal(mu: Double, sigma: Double)
    case qLogNormal(mu: Double, sigma: Double, q: Double, integral: Bool)
    case beta(a: Double, b: Double)
    case qBeta(a: Double, b: Double, q: Double, integral: Bool)
    /// Computed from other parameters after they are chosen.
    case derived(Expression)

    public enum Choice: Sendable {
        case value(ParamValue)
        case expr(Expression)
    }

    /// W&B's distribution names, in its schema's spelling.
    public var name: String {
        switch self {
        case .constant: "constant"
        case .categorical: "categorical"
        case .weightedCategorical: "categorical_w_probabilities"
        case .intUniform: "int_uniform"
        case .uniform: "uniform"
        case .qUniform: "q_uniform"
        case .logUniformValues: "log_uniform_values"
        case .invLogUniformValues: "inv_log_uniform_values"
        case .qLogUniformValues: "q_log_uniform_values"
        case .normal: "normal"
        case .qNormal: "q_normal"
        case .logNormal: "log_normal"
        case .qLogNormal: "q_log_normal"
        case .beta: "beta"
        case .qBeta: "q_beta"
        case .derived: "expr"
        }
    }

    /// The finite value list a grid walks, or nil where W&B's grid refuses the distribution.
    /// `int_uniform` is inclusive of max; `q_uniform` follows `numpy.arange(min, max, q)`, so max is excluded.
    public var gridChoices: [Choice]? {
        switch self {
        case .constant(let v): return [.value(v)]
        case .categorical(let choices): return choices
        case .intUniform(let lo, let hi): return (lo...hi).map { .value(.int($0)) }
        case .qUniform(let lo, _, let q, let integral):
            let n = gridCount ?? 0
            return (0..<max(n, 0)).map { i in .value(quantized(lo + Double(i) * q, q: q, integral: integral)) }
        default: return nil
        }
    }

    /// Grid size without materialising it (Int.max when it does not fit), nil where a grid cannot enumerate it.
    /// Callers check this before `gridChoices`: a wide `int_uniform` would otherwise be built value by value.
    var gridCount: Int? {
        switch self {
        case .intUniform(let lo, let hi):
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            return overflow || span == .max ? .max : span + 1
        case .qUniform(let lo, let hi, let q, _):
            let n = ((hi - lo) / q).rounded(.up)
            return n.isNaN ? 0 : n >= Double(Int.max) ? .max : max(Int(n), 0)
        default: return gridChoices?.count
        }
    }

    /// One random draw. Derived and expression choices are resolved by the planner afterwards.
    func sample(_ rng: inout SplitMix64) -> Choice {
        func q(_ x: Double, _ q: Double, _ integral: Bool) -> Choice { .value(quantized(x, q: q, integral: integral)) }
        switch self {
        case .constant(let v): return .value(v)
        case .categorical(let choices): return choices[rng.below(choices.count)]
        case .weightedCategorical(let values, let p):
            var u = rng.unit() * p.reduce(0, +)
            for (v, w) in zip(values, p) {
                if u < w { return .value(v) }
                u -= w
            }
            return .value(values[values.count - 1])
        case .intUniform(let lo, let hi):
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            if !overflow, span < .max { return .value(.int(lo + rng.below(span + 1))) }
            // Wider than Int: draw the offset over all of UInt64 (hi > lo, so the span fits in it).
            let width = UInt64(bitPattern: Int64(hi &- lo))
            var r = rng.next()
            if width < .max { while r > width { r = rng.next() } }
            return .value(.int(lo &+ Int(bitPattern: UInt(r))))
        case .uniform(let lo, let hi): return .value(.double(lo + (hi - lo) * rng.unit()))
        case .qUniform(let lo, let hi, let step, let integral): return q(lo + (hi - lo) * rng.unit(), step, integral)
        case .logUniformValues(let lo, let hi): return .value(.double(exp(log(lo) + (log(hi) - log(lo)) * rng.unit())))
        case .invLogUniformValues(let lo, let hi):
            return .value(.double(exp(-(-log(hi) + (log(hi) - log(lo)) * rng.unit()))))
        case .qLogUniformValues(let lo, let hi, let step, let integral):
            return q(exp(log(lo) + (log(hi) - log(lo)) * rng.unit()), step, integral)
        case .normal(let mu, let sigma): return .value(.double(mu + sigma * rng.gaussian()))
        case .qNormal(let mu, let sigma, let step, let integral): return q(mu + sigma * rng.gaussian(), step, integral)
        case .logNormal(let mu, let sigma): return .value(.double(exp(mu + sigma * rng.gaussian())))
        case .qLogNormal(let mu, let sigma, let step, let integral): return q(exp(mu + sigma * rng.gaussian()), step, integral)
        case .beta(let a, let b): return .value(.double(rng.beta(a, b)))
        case .qBeta(let a, let b, let step, let integral): return q(rng.beta(a, b), step, integral)
        case .derived(let e): return .expr(e)
        }
    }
}

/// W&B's `round(x / q) * q`, an integer when q is one.
func quantized(_ x: Double, q: Double, integral: Bool) -> ParamValue {
    let v = (x / q).rounded(.toNearestOrEven) * q
    // Past Int's range (or not finite) the value stays a Double rather than trapping.
    if integral, let i = Int(exactly: v) { return .int(i) }
    // Trim the binary noise of the multiplication (0.30000000000000004 → 0.3) at q's precision.
    let decimals = max(0, Int((-log10(q)).rounded(.up)) + 6)
    let scale = pow(10.0, Double(min(decimals, 15)))
    return .double((v * scale).rounded() / scale)
}

/// The draws only sweeps need, on the shared generator.
extension SplitMix64 {
    /// Gamma(shape, 1) by Marsaglia and Tsang's method.
    mutating func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * pow(max(unit(), .leastNonzeroMagnitude), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = gaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = unit()
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    mutating func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(a), y = gamma(b)
        return x / (x + y)
    }
}
