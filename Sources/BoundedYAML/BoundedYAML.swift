import Yams

/// YAML from files that arrive in pull requests (experiments, dashboards, gates, evalset manifests), read with a
/// bound on what its aliases expand to. A few lines of nested aliases ("billion laughs": 9 aliases of 9 aliases, 9
/// levels deep) compose cheaply, since an alias shares its anchor's node, but expand to hundreds of millions of
/// nodes for whoever walks them.
public enum BoundedYAML {
    /// The most nodes a document may expand to, counting every node an alias repeats. Shipped files have a few
    /// hundred.
    public static let maximumNodes = 100_000

    /// `Yams.compose`, refusing a document that expands past `limit` nodes with a `YamlError.composer` whose mark
    /// is the top-level entry (or the root) where the budget ran out.
    public static func compose(yaml: String, limit: Int = maximumNodes) throws -> Node? {
        guard let root = try Yams.compose(yaml: yaml) else { return nil }
        var budget = limit
        let entries: [(Node, Node)] = root.mapping.map { Array($0) } ?? [(root, root)]
        budget -= 1
        for (key, value) in entries where !spend(&budget, on: value) {
            let problem = "this value expands to more than \(limit) YAML nodes through aliases; a file that large is refused"
            guard let mark = key.mark ?? root.mark else { throw TooLarge(description: problem) }
            throw YamlError.composer(context: nil, problem: problem, mark, yaml: yaml)
        }
        return root
    }

    /// Only for a document without positions (Yams gives every composed node one).
    public struct TooLarge: Error, CustomStringConvertible { public var description: String }

    /// Walks `node` as its reader would, spending one unit a node; false once the budget is spent (so the walk
    /// stops after at most `limit` nodes, however large the expansion).
    static func spend(_ budget: inout Int, on node: Node) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .scalar, .alias: return true
        case .sequence(let s): return s.allSatisfy { spend(&budget, on: $0) }
        case .mapping(let m): return m.allSatisfy { spend(&budget, on: $0.key) && spend(&budget, on: $0.value) }
        }
    }
}
