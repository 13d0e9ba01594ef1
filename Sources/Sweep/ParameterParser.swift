import HarrowCore
import Foundation
import Yams

extension ExperimentParser {
    typealias Parsed = (path: [String], parameter: Experiment.Parameter)

    /// `parameters:` and nested `parameters:` blocks. A bare scalar is a constant and a bare list is `values:`,
    /// as shorthand; everything W&B accepts keeps its meaning.
    mutating func parseParameters(_ node: Node, prefix: [String]) -> [Parsed] {
        guard let m = node.mapping else {
            error(node, "`parameters` must be a mapping of parameter names to specs")
            return []
        }
        if m.count == 0 { error(node, "`parameters` is empty", hint: "name at least one parameter") }
        var out: [Parsed] = []
        for (keyNode, spec) in m {
            guard let key = keyNode.scalar?.string else { error(keyNode, "parameter names must be plain text"); continue }
            guard isValidName(key) else {
                error(
                    keyNode, "'\(key)' is not a valid parameter name",
                    hint: "start with a letter or _, then letters, digits, _, . or -")
                continue
            }
            let path = prefix + [key]
            if let specMap = spec.mapping, let nested = specMap["parameters"] {
                if specMap.count > 1 {
                    error(keyNode, "a nested parameter block holds only `parameters:`")
                }
                out += parseParameters(nested, prefix: path)
                continue
            }
            // W&B's constant whose value is a mapping (`optimizer: {value: {lr: 0.1, beta: 0.9}}`). A trial's values
            // are scalars and lists, so each entry becomes a constant of its own under the joined name
            // (`optimizer.lr`, `optimizer.beta`): what a nested `parameters:` block of constants gives.
            if let specMap = spec.mapping, let v = specMap["value"], let entries = v.mapping {
                checkKeys(specMap, allowed: ["value", "distribution"], in: "the spec of '\(path.joined(separator: "."))'")
                if let d = specMap["distribution"], d.scalar?.string != "constant" {
                    error(d, "`value` gives '\(path.joined(separator: "."))' one value; its distribution can only be 'constant'")
                }
                out += constants(entries, node: v, prefix: path)
                continue
            }
            let name = path.joined(separator: ".")
            if let d = distribution(spec, name: name) {
                out.append((path, .init(name: name, distribution: d, location: location(keyNode))))
            }
        }
        return out
    }

    /// The entries of a mapping under `value:`, each a constant named by its path; nested mappings join further.
    private mutating func constants(_ entries: Node.Mapping, node: Node, prefix: [String]) -> [Parsed] {
        if entries.count == 0 {
            error(
                node, "the `value` of '\(prefix.joined(separator: "."))' is an empty mapping",
                hint: "give it at least one entry, or remove the parameter")
        }
        var out: [Parsed] = []
        for (keyNode, item) in entries {
            guard let key = keyNode.scalar?.string, isValidName(key) else {
                error(
                    keyNode, "'\(keyNode.scalar?.string ?? "")' is not a valid name for an entry of '\(prefix.joined(separator: "."))'",
                    hint: "start with a letter or _, then letters, digits, _, . or -")
                continue
            }
            let path = prefix + [key]
            if let nested = item.mapping {
                out += constants(nested, node: item, prefix: path)
            } else if let v = value(item) {
                out.append((path, .init(name: path.joined(separator: "."), distribution: .constant(v), location: location(keyNode))))
            } else {
                error(item, "unsupported value in '\(path.joined(separator: "."))'")
            }
        }
        return out
    }

    private func isValidName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0))
        }
    }

    private mutating func distribution(_ spec: Node, name: String) -> Distribution? {
        switch spec {
        case .scalar:
            return value(spec).map { .constant($0) }
        case .sequence(let seq):
            return choices(Array(seq), node: spec, name: name).map { .categorical($0) }
        case .alias:
            error(spec, "aliases are not supported in parameter specs")
            return nil
        case .mapping(let m):
            let keysKnown = checkKeys(m, allowed: Experiment.specKeys.filter { $0 != "parameters" }, in: "the spec of '\(name)'")
            if let e = m["expr"] {
                if m.count > 1 { error(spec, "'\(name)' has `expr` and other keys; an expression stands alone") }
                return expression(e).map { .derived($0) }
            }
            let kind: String
            if let d = m["distribution"] {
                guard let text = string(d, "distribution") else { return nil }
                guard Experiment.distributionNames.contains(text) || Experiment.logBoundDistributions[text] != nil else {
                    error(
                        d, "unknown distribution '\(text)'",
                        hint: didYouMean(text, Experiment.distributionNames)
                            ?? "one of: \(Experiment.distributionNames.joined(separator: ", "))")
                    return nil
                }
                kind = text
            } else if m["values"] != nil {
                kind = m["probabilities"] != nil ? "categorical_w_probabilities" : "categorical"
            } else if m["min"] != nil || m["max"] != nil {
                let ints = [m["min"], m["max"]].allSatisfy { n in n.map { if case .int? = value($0) { true } else { false } } ?? true }
                kind = ints ? "int_uniform" : "uniform"
            } else if m["value"] != nil {
                kind = "constant"
            } else {
                // A misspelt key was already reported; "needs values" would only repeat it.
                if !keysKnown { return nil }
                error(
                    spec, "'\(name)' needs `values`, `value`, `min`/`max`, `distribution` or `expr`",
                    hint: "e.g. `\(name): {values: [1, 2, 3]}`")
                return nil
            }
            return build(kind, m, node: spec, name: name)
        }
    }

    private mutating func build(_ kind: String, _ m: Node.Mapping, node: Node, name: String) -> Distribution? {
        func required(_ key: String) -> Node? {
            if let n = m[key] { return n }
            error(node, "distribution '\(kind)' of '\(name)' needs `\(key)`")
            return nil
        }
        func optional(_ key: String, _ fallback: Double) -> (Double, Bool)? {
            guard let n = m[key] else { return (fallback, fallback == fallback.rounded()) }
            return number(n, key)
        }
        func bounds(positive: Bool = false) -> (Double, Double, Bool)? {
            guard let lo = required("min"), let hi = required("max"),
                let (a, ai) = number(lo, "min"), let (b, bi) = number(hi, "max")
            else { return nil }
            guard a < b else {
                error(hi, "`max` (\(hi.scalar?.string ?? "")) must be greater than `min` (\(lo.scalar?.string ?? "")) for '\(name)'")
                return nil
            }
            if positive, a <= 0 { error(lo, "'\(kind)' needs `min` > 0 (it samples the logarithm)"); return nil }
            return (a, b, ai && bi)
        }
        func step() -> (Double, Bool)? {
            guard let (q, qi) = optional("q", 1) else { return nil }
            guard q > 0 else { error(m["q"], "`q` must be greater than 0"); return nil }
            return (q, qi)
        }
        func sigma() -> (Double, Double)? {
            guard let (mu, _) = optional("mu", 0), let (s, _) = optional("sigma", 1) else { return nil }
            guard s >= 0 else { error(m["sigma"], "`sigma` must not be negative"); return nil }
            return (mu, s)
        }
        func shape() -> (Double, Double)? {
            guard let (a, _) = optional("a", 1), let (b, _) = optional("b", 1) else { return nil }
            guard a > 0, b > 0 else { error(m["a"] ?? m["b"] ?? node, "beta needs `a` > 0 and `b` > 0"); return nil }
            return (a, b)
        }
        switch kind {
        case "constant":
            guard let v = required("value") else { return nil }
            guard let value = value(v) else { error(v, "`value` must be a scalar or a list"); return nil }
            return .constant(value)
        case "categorical":
            guard let v = required("values") else { return nil }
            guard case .sequence(let seq) = v else { error(v, "`values` must be a list, found \(describe(v))"); return nil }
            return choices(Array(seq), node: v, name: name).map { .categorical($0) }
        case "categorical_w_probabilities":
            guard let v = required("values"), let p = required("probabilities") else { return nil }
            guard case .list(let values)? = value(v), !values.isEmpty else {
                error(v, "`values` must be a non-empty list of values"); return nil
            }
            guard case .list(let ps)? = value(p) else { error(p, "`probabilities` must be a list of numbers"); return nil }
            let probabilities = ps.compactMap(\.number)
            guard probabilities.count == ps.count, probabilities.allSatisfy({ $0 >= 0 }) else {
                error(p, "`probabilities` must be numbers ≥ 0"); return nil
            }
            guard probabilities.count == values.count else {
                error(p, "\(probabilities.count) probabilities for \(values.count) values"); return nil
            }
            guard abs(probabilities.reduce(0, +) - 1) < 1e-6 else {
                error(p, "probabilities sum to \(probabilities.reduce(0, +)), not 1"); return nil
            }
            return .weightedCategorical(values, probabilities: probabilities)
        case "int_uniform":
            guard let (lo, hi, ints) = bounds() else { return nil }
            guard ints else { error(m["min"], "'int_uniform' needs whole-number `min` and `max`"); return nil }
            guard let l = Int(exactly: lo), let h = Int(exactly: hi) else {
                error(m["min"], "'int_uniform' needs `min` and `max` between -9.2e18 and 9.2e18 (Int's range)"); return nil
            }
            return .intUniform(min: l, max: h)
        case "uniform":
            return bounds().map { .uniform(min: $0.0, max: $0.1) }
        case "q_uniform":
            guard let (lo, hi, ints) = bounds(), let (q, qi) = step() else { return nil }
            return .qUniform(min: lo, max: hi, q: q, integral: ints && qi)
        case "log_uniform", "q_log_uniform", "inv_log_uniform":
            return logBounded(kind, m, node: node, name: name, bounds: bounds(), step: kind == "q_log_uniform" ? step() : nil)
        case "log_uniform_values":
            return bounds(positive: true).map { .logUniformValues(min: $0.0, max: $0.1) }
        case "inv_log_uniform_values":
            return bounds(positive: true).map { .invLogUniformValues(min: $0.0, max: $0.1) }
        case "q_log_uniform_values":
            guard let (lo, hi, _) = bounds(positive: true), let (q, qi) = step() else { return nil }
            return .qLogUniformValues(min: lo, max: hi, q: q, integral: qi)
        case "normal": return sigma().map { .normal(mu: $0.0, sigma: $0.1) }
        case "log_normal": return sigma().map { .logNormal(mu: $0.0, sigma: $0.1) }
        case "q_normal":
            guard let (mu, s) = sigma(), let (q, qi) = step() else { return nil }
            return .qNormal(mu: mu, sigma: s, q: q, integral: qi)
        case "q_log_normal":
            guard let (mu, s) = sigma(), let (q, qi) = step() else { return nil }
            return .qLogNormal(mu: mu, sigma: s, q: q, integral: qi)
        case "beta": return shape().map { .beta(a: $0.0, b: $0.1) }
        case "q_beta":
            guard let (a, b) = shape(), let (q, qi) = step() else { return nil }
            return .qBeta(a: a, b: b, q: q, integral: qi)
        default:
            return nil
        }
    }

    /// W&B's deprecated distributions whose `min` and `max` are natural logs, sampled as W&B samples them
    /// (wandb/sweeps@b1dfc5f src/sweeps/params.py: `loguniform_v1_ppf` is exp(uniform(min, max)), `q_log_uniform_v1_ppf`
    /// rounds that to q, `inv_log_uniform_v1_ppf` is exp(−uniform(min, max))). Each is its `_values` form with bounds
    /// e^min and e^max (e^−max and e^−min for the inverse), which W&B's own `_v2` ppf reduces to; a warning names it.
    private mutating func logBounded(
        _ kind: String, _ m: Node.Mapping, node: Node, name: String,
        bounds: (Double, Double, Bool)?, step: (Double, Bool)?
    ) -> Distribution? {
        guard let (a, b, _) = bounds, let replacement = Experiment.logBoundDistributions[kind] else { return nil }
        if kind == "q_log_uniform", step == nil { return nil }
        let (lo, hi) = kind == "inv_log_uniform" ? (exp(-b), exp(-a)) : (exp(a), exp(b))
        guard lo > 0, hi.isFinite, lo < hi else {
            error(
                m["min"] ?? node, "'\(kind)' of '\(name)' samples e^min to e^max, which is not a range of positive numbers a Double holds",
                hint: "its bounds are natural logs: e.g. min: -11.5, max: -6.9 for 1.0e-5 to 1.0e-3")
            return nil
        }
        var exact = "distribution: \(replacement), min: \(lo), max: \(hi)"
        if kind == "q_log_uniform", let q = m["q"]?.scalar?.string { exact += ", q: \(q)" }
        warning(
            m["distribution"] ?? node,
            "distribution '\(kind)' is deprecated in W&B (its bounds are natural logs); sampled as \(replacement) from "
                + String(format: "%.3g to %.3g", lo, hi),
            hint: "write `\(exact)` (the same draws)")
        switch kind {
        case "inv_log_uniform": return .invLogUniformValues(min: lo, max: hi)
        case "q_log_uniform": return step.map { .qLogUniformValues(min: lo, max: hi, q: $0.0, integral: $0.1) }
        default: return .logUniformValues(min: lo, max: hi)
        }
    }

    /// A `values:` list; an entry `{expr: "..."}` is computed per trial.
    private mutating func choices(_ items: [Node], node: Node, name: String) -> [Distribution.Choice]? {
        guard !items.isEmpty else {
            error(node, "'\(name)' has an empty value list", hint: "give at least one value, or remove the parameter")
            return nil
        }
        var out: [Distribution.Choice] = []
        for item in items {
            if let m = item.mapping {
                guard m.count == 1, let e = m["expr"] else {
                    error(
                        item, "a value of '\(name)' is a mapping; values are scalars, lists or `{expr: \"…\"}`",
                        hint: "for a group of related settings use nested `parameters:`")
                    continue
                }
                if let parsed = expression(e) { out.append(.expr(parsed)) }
            } else if let v = value(item) {
                out.append(.value(v))
            } else {
                error(item, "unsupported value in '\(name)'")
            }
        }
        return out.count == items.count ? out : nil
    }

    mutating func expression(_ node: Node) -> Expression? {
        guard case .scalar(let s) = node else {
            error(node, "an expression must be text, e.g. \"2 * lora_r\"")
            return nil
        }
        do {
            let e = try Expression(s.string)
            expressionNodes[e.source] = node
            return e
        } catch {
            diagnostics.append(
                Diagnostic(.error, location(in: node, offset: error.offset), "bad expression: \(error.message)", hint: error.hint))
            return nil
        }
    }
}
