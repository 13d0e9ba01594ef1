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

/// Where a YAML error is in its text, and what it says, for every reader's `file:line:column` message.
public struct YAMLErrorLocation: Sendable, Equatable {
    public var line: Int
    public var column: Int
    public var problem: String
    /// What the parser was in the middle of, with its own position ("while parsing a flow mapping" at 3:1).
    public var context: (text: String, line: Int, column: Int)?

    public static func == (a: Self, b: Self) -> Bool {
        a.line == b.line && a.column == b.column && a.problem == b.problem && a.context?.text == b.context?.text
    }

    public init(_ error: YamlError, in text: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            (line, column, self.problem) = (mark.line, mark.column, problem)
            self.context = context.map { ($0.text, $0.mark.line, $0.mark.column) }
        case .duplicatedKeysInMapping(let duplicates, let context):
            (line, column) = (context.mark.line, context.mark.column)
            problem = "duplicate key '\(duplicates.joined(separator: "', '"))'"
        case .reader(let problem, let offset, _, _):
            (line, column) = Self.lineColumn(ofUTF8Offset: offset ?? 0, in: text)
            self.problem = "cannot read file: \(problem)"
        default:
            (line, column, problem) = (1, 1, "\(error)")
        }
    }

    static func lineColumn(ofUTF8Offset offset: Int, in text: String) -> (Int, Int) {
        var line = 1, column = 1
        for byte in text.utf8.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return (line, column)
    }
}

/// A YAML file read for its values and their places: every reader of a hand-written file (evalset manifests,
/// gates) composes it here and says where a bad value is as `file:line:column`.
public struct YAMLFile: Sendable {
    public let file: String
    public let text: String

    public init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    /// `file:line:column` of a node (1:1 without one).
    public func place(_ node: Node?) -> String { "\(file):\(node?.mark?.line ?? 1):\(node?.mark?.column ?? 1)" }

    /// The document's root, nil when it is empty; a syntax error, an alias bomb or a list or mapping used as a key
    /// (Yams' conversions would trap on it) comes back as `file:line:column: problem`, the problem prefixed by
    /// `prefix`.
    public func root(prefix: String = "") -> Result<Node?, Problem> {
        do {
            guard let root = try BoundedYAML.compose(yaml: text) else { return .success(nil) }
            if let key = Self.firstNonScalarKey(root) {
                return .failure(Problem("\(place(key)): \(prefix)a key must be text, not a list or mapping"))
            }
            return .success(root)
        } catch let error as YamlError {
            let at = YAMLErrorLocation(error, in: text)
            return .failure(Problem("\(file):\(at.line):\(at.column): \(prefix)\(at.problem)"))
        } catch {
            return .failure(Problem("\(file): \(error)"))
        }
    }

    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    static func firstNonScalarKey(_ node: Node) -> Node? {
        switch node {
        case .scalar, .alias: return nil
        case .sequence(let s): return s.lazy.compactMap(firstNonScalarKey).first
        case .mapping(let m):
            for (k, v) in m {
                if k.scalar == nil { return k }
                if let bad = firstNonScalarKey(v) { return bad }
            }
            return nil
        }
    }
}
