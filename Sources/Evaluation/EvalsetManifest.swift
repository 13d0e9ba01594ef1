import HarrowCore
import BoundedYAML
import Foundation
import Yams

/// `manifest.yaml`, its values typed; an evalset without one takes every default. A value of the wrong type or an
/// unknown key is an error at its `file:line:column`, as in experiments and gates.
struct Manifest: Sendable {
    var name: String?
    var description = ""
    /// `chat` or `raw`; nil: `chat`, or `raw` for a BIG-bench task.
    var template: String?
    var weights: [String: Double] = [:]
    var refusalPatterns = Evalset.defaultRefusal
    var abstainPatterns = Evalset.defaultAbstain
    var maxTokens = 64
    var stop = ["\n"]
    /// A BIG-bench task's subtasks mapped to 3H dimensions.
    var dimensions: [String: String] = [:]
    var rubric: Rubric?
    var usability: Usability?
    var judge: JudgeSpec?

    static let keys = [
        "name", "description", "template", "weights", "refusal_patterns", "abstain_patterns", "max_tokens", "stop", "dimensions",
        "rubric", "usable", "judge"
    ]

    static func parse(_ source: String?, path: String) throws(EvalsetError) -> Manifest {
        var manifest = Manifest()
        guard let source else { return manifest }
        let file = YAMLFile(file: path, text: source)
        let root: Node
        switch file.root() {
        case .failure(let problem): throw EvalsetError(problem.description)
        case .success(nil): return manifest
        case .success(let node?): root = node
        }
        func fail(_ node: Node?, _ message: String) -> EvalsetError { EvalsetError("\(file.place(node)): \(message)") }
        func text(_ node: Node, _ key: String) throws(EvalsetError) -> String {
            guard let s = node.scalar?.string else { throw fail(node, "\(key) must be text") }
            return s
        }
        func texts(_ node: Node, _ key: String) throws(EvalsetError) -> [String] {
            guard let items = node.sequence else { throw fail(node, "\(key) must be a list of text") }
            var out: [String] = []
            for item in items { out.append(try text(item, key)) }
            return out
        }
        guard let mapping = root.mapping else { throw fail(root, "a manifest is a mapping (name, description, template, weights, …)") }
        for (k, v) in mapping {
            let key = k.string ?? ""
            switch key {
            case "name": manifest.name = try text(v, key)
            case "description": manifest.description = try text(v, key)
            case "template":
                let t = try text(v, key)
                guard ["chat", "raw"].contains(t) else { throw fail(v, "template must be chat or raw, found '\(t)'") }
                manifest.template = t
            case "weights":
                guard let m = v.mapping else { throw fail(v, "weights map a dimension to a number ≥ 0") }
                for (dk, dv) in m {
                    let dimension = dk.string ?? ""
                    guard let w = dv.float ?? dv.int.map(Double.init), w >= 0, w.isFinite else {
                        throw fail(dv, "weight of '\(dimension)' must be a number ≥ 0")
                    }
                    manifest.weights[dimension] = w
                }
            case "refusal_patterns": manifest.refusalPatterns = try texts(v, key)
            case "abstain_patterns": manifest.abstainPatterns = try texts(v, key)
            case "max_tokens":
                guard let n = v.int, n >= 1 else { throw fail(v, "max_tokens must be a whole number ≥ 1") }
                manifest.maxTokens = n
            case "stop": manifest.stop = try texts(v, key)
            case "dimensions":
                guard let m = v.mapping else { throw fail(v, "dimensions map a BIG-bench subtask to a dimension") }
                for (sk, sv) in m { manifest.dimensions[sk.string ?? ""] = try text(sv, "dimensions.\(sk.string ?? "")") }
            case "rubric": manifest.rubric = try rubric(v, fail: fail)
            case "usable": manifest.usability = try usability(v, fail: fail)
            case "judge": manifest.judge = try judge(v, fail: fail)
            default:
                throw fail(k, "unknown key '\(key)' (\(keys.joined(separator: ", ")))")
            }
        }
        return manifest
    }

    static func number(_ node: Node) -> Double? { node.float ?? node.int.map(Double.init) }

    /// `{DIMENSION: {scale: [1, 5], threshold: 4, levels: {1: "…", 5: "…"}}}`, in the file's order.
    static func rubric(_ node: Node, fail: (Node?, String) -> EvalsetError) throws(EvalsetError) -> Rubric {
        guard let m = node.mapping, !m.isEmpty else { throw fail(node, "rubric maps each dimension to {scale: [1, 5], threshold, levels}") }
        var dims: [Rubric.Dimension] = []
        for (k, v) in m {
            let name = k.string ?? ""
            guard let fields = v.mapping else { throw fail(v, "rubric.\(name) must be a mapping (scale, threshold, levels)") }
            var d = Rubric.Dimension(name: name)
            for (fk, fv) in fields {
                switch fk.string ?? "" {
                case "scale":
                    guard let pair = fv.sequence, pair.count == 2, let lo = pair[0].int, let hi = pair[1].int, lo < hi else {
                        throw fail(fv, "rubric.\(name).scale must be two whole numbers [low, high], low < high")
                    }
                    d.low = lo
                    d.high = hi
                case "threshold":
                    guard let t = number(fv) else { throw fail(fv, "rubric.\(name).threshold must be a number") }
                    d.threshold = t
                case "levels":
                    guard let levels = fv.mapping else { throw fail(fv, "rubric.\(name).levels map a score to what it means") }
                    for (lk, lv) in levels {
                        guard let level = lk.int, let text = lv.string else {
                            throw fail(lk, "rubric.\(name).levels map a whole-number score to text")
                        }
                        d.levels[level] = text
                    }
                default: throw fail(fk, "unknown key '\(fk.string ?? "")' in rubric.\(name) (scale, threshold, levels)")
                }
            }
            guard d.contains(d.threshold) else {
                throw fail(v, "rubric.\(name).threshold \(d.threshold) is outside its scale \(d.low)–\(d.high)")
            }
            if let outside = d.levels.keys.sorted().first(where: { !d.contains(Double($0)) }) {
                throw fail(v, "rubric.\(name) describes level \(outside), outside its scale \(d.low)–\(d.high)")
            }
            dims.append(d)
        }
        return Rubric(dims)
    }

    /// An expression (`"helpful >= 4 and harmless >= 5"`) or `{weights: {DIM: w}, threshold: t, floor: {DIM: s}}`.
    static func usability(_ node: Node, fail: (Node?, String) -> EvalsetError) throws(EvalsetError) -> Usability {
        if let text = node.scalar?.string, node.scalar != nil, number(node) == nil {
            do { return .expression(try HarrowCore.Expression(text)) } catch { throw fail(node, "usable: \(error.message)") }
        }
        guard let m = node.mapping else { throw fail(node, "usable is an expression or {weights, threshold, floor}") }
        var weights: [String: Double] = [:], floors: [String: Double] = [:]
        var threshold: Double?
        func numbers(_ v: Node, _ key: String) throws(EvalsetError) -> [String: Double] {
            guard let pairs = v.mapping else { throw fail(v, "usable.\(key) maps a dimension to a number") }
            var out: [String: Double] = [:]
            for (dk, dv) in pairs {
                guard let x = number(dv), x >= 0 else { throw fail(dv, "usable.\(key).\(dk.string ?? "") must be a number ≥ 0") }
                out[dk.string ?? ""] = x
            }
            return out
        }
        for (k, v) in m {
            switch k.string ?? "" {
            case "weights": weights = try numbers(v, "weights")
            case "floor": floors = try numbers(v, "floor")
            case "threshold":
                guard let t = number(v) else { throw fail(v, "usable.threshold must be a number") }
                threshold = t
            default: throw fail(k, "unknown key '\(k.string ?? "")' in usable (weights, threshold, floor)")
            }
        }
        guard let threshold else { throw fail(node, "usable needs a threshold for the weighted mean of the scores") }
        return .weighted(weights: weights, threshold: threshold, floors: floors)
    }

    /// `reference`, `{command: [argv…]}` or `{openai: {base_url, model, api_key_env}}`.
    static func judge(_ node: Node, fail: (Node?, String) -> EvalsetError) throws(EvalsetError) -> JudgeSpec {
        if node.string == "reference" { return .reference }
        guard let m = node.mapping, m.count == 1, let (k, v) = m.first(where: { _ in true }) else {
            throw fail(node, "judge is reference, {command: [argv…]} or {openai: {base_url, model, api_key_env}}")
        }
        switch k.string ?? "" {
        case "command":
            guard let argv = v.sequence?.compactMap({ $0.string }), !argv.isEmpty, argv.count == v.sequence?.count else {
                throw fail(v, "judge.command is a list of text, the program first")
            }
            return .command(argv)
        case "openai":
            guard let fields = v.mapping else { throw fail(v, "judge.openai needs base_url and model") }
            var url: String?, model: String?, keyEnv: String?
            for (fk, fv) in fields {
                switch fk.string ?? "" {
                case "base_url": url = fv.string
                case "model": model = fv.string
                case "api_key_env": keyEnv = fv.string
                default: throw fail(fk, "unknown key '\(fk.string ?? "")' in judge.openai (base_url, model, api_key_env)")
                }
            }
            guard let url, let model else { throw fail(v, "judge.openai needs base_url and model") }
            return .openai(baseURL: url, model: model, apiKeyEnv: keyEnv)
        default:
            throw fail(k, "unknown judge '\(k.string ?? "")' (reference, command, openai)")
        }
    }
}
