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

    static let keys = [
        "name", "description", "template", "weights", "refusal_patterns", "abstain_patterns", "max_tokens", "stop", "dimensions"
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
            default:
                throw fail(k, "unknown key '\(key)' (\(keys.joined(separator: ", ")))")
            }
        }
        return manifest
    }
}
