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
