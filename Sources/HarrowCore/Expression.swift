import Foundation

/// A small, safe expression language for derived parameters (`lora_alpha: {expr: "2 * lora_r"}`) and
/// constraints (`where: "lora_alpha >= lora_r and not (base_model == 'chat' and epochs > 5)"`).
///
/// Python-flavoured, because sweep files come from Python users: `+ - * / // % **`, comparisons,
/// `and or not` (also `&& || !`), `in`, `a if cond else b`, lists `[1, 2]`, strings in either quotes,
/// `true/false/null` (also `True/False/None`), and the functions `min max abs round floor ceil log log2
/// exp sqrt int float`. Names are parameter names, dotted for nested ones (`lora.r`).
public struct Expression: Sendable, CustomStringConvertible {
    public let source: String
    let root: Node
    /// Parameter names the expression reads, in order of first use.
    public let names: [String]

    public var description: String { source }

    public init(_ source: String) throws(ExpressionError) {
        var parser = ExpressionParser(source)
        root = try parser.parseAll()
        self.source = source
        names = parser.names
    }

    private init(source: String, root: Node, names: [String]) {
        self.source = source
        self.root = root
        self.names = names
    }

    /// Resolves names to slots so evaluation is an array index, not a dictionary lookup.
    public func bound(to slots: [String: Int]) throws(ExpressionError) -> Expression {
        for name in names where slots[name] == nil {
            throw ExpressionError(
                "unknown parameter '\(name)'", offset: 0,
                hint: didYouMean(name, slots.keys))
        }
        return Expression(source: source, root: root.bound(to: slots), names: names)
    }

    /// Evaluates a bound expression against values by slot.
    public func evaluate(_ values: [ParamValue]) throws(ExpressionError) -> ParamValue {
        try root.evaluate(values)
    }

    indirect enum Node: Sendable {
        case literal(ParamValue)
        case name(String)
        case slot(Int)
        case list([Node])
        case unary(String, Node)
        case binary(String, Node, Node)
        case conditional(Node, Node, Node)
        case call(String, [Node])

        func bound(to slots: [String: Int]) -> Node {
            switch self {
            case .name(let n): .slot(slots[n]!)
            case .literal, .slot: self
            case .list(let items): .list(items.map { $0.bound(to: slots) })
            case .unary(let op, let x): .unary(op, x.bound(to: slots))
            case .binary(let op, let l, let r): .binary(op, l.bound(to: slots), r.bound(to: slots))
            case .conditional(let c, let a, let b): .conditional(c.bound(to: slots), a.bound(to: slots), b.bound(to: slots))
            case .call(let f, let args): .call(f, args.map { $0.bound(to: slots) })
            }
        }

        func evaluate(_ values: [ParamValue]) throws(ExpressionError) -> ParamValue {
            switch self {
            case .literal(let v): return v
            case .slot(let i): return values[i]
            case .name(let n): throw ExpressionError("unbound parameter '\(n)'", offset: 0)
            case .list(let items):
                var out: [ParamValue] = []
                for item in items { out.append(try item.evaluate(values)) }
                return .list(out)
            case .unary(let op, let x):
                let v = try x.evaluate(values)
                switch (op, v) {
                case ("not", _): return .bool(!(try truth(v)))
                case ("-", .int(let i)): return .int(-i)
                case ("-", .double(let d)): return .double(-d)
                default: throw ExpressionError("cannot apply '\(op)' to \(v.typeName) \(v.json)", offset: 0)
                }
            case .binary("and", let l, let r):
                guard try truth(l.evaluate(values)) else { return .bool(false) }
                return .bool(try truth(r.evaluate(values)))
            case .binary("or", let l, let r):
                if try truth(l.evaluate(values)) { return .bool(true) }
                return .bool(try truth(r.evaluate(values)))
            case .binary(let op, let l, let r):
                return try applyBinary(op, l.evaluate(values), r.evaluate(values))
            case .conditional(let c, let a, let b):
                return try truth(c.evaluate(values)) ? a.evaluate(values) : b.evaluate(values)
            case .call(let f, let args):
                var vs: [ParamValue] = []
                for a in args { vs.append(try a.evaluate(values)) }
                return try applyCall(f, vs)
            }
        }
    }

    static let functions: Set<String> = ["min", "max", "abs", "round", "floor", "ceil", "log", "log2", "exp", "sqrt", "int", "float"]
}

public struct ExpressionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Offset in characters from the start of the expression text.
    public var offset: Int
    public var hint: String?

    public init(_ message: String, offset: Int, hint: String? = nil) {
        self.message = message
        self.offset = offset
        self.hint = hint
    }

    public var description: String { message }
}

// MARK: - Evaluation helpers

private func truth(_ v: ParamValue) throws(ExpressionError) -> Bool {
    if case .bool(let b) = v { return b }
    throw ExpressionError("expected true or false, got \(v.typeName) \(v.json)", offset: 0)
}

private func applyBinary(_ op: String, _ l: ParamValue, _ r: ParamValue) throws(ExpressionError) -> ParamValue {
    switch op {
    case "==": return .bool(l.sameValue(as: r))
    case "!=": return .bool(!l.sameValue(as: r))
    case "in", "not in":
        guard case .list(let items) = r else {
            throw ExpressionError("'\(op)' needs a list on its right, got \(r.typeName)", offset: 0)
        }
        let found = items.contains { $0.sameValue(as: l) }
        return .bool(op == "in" ? found : !found)
    case "<", "<=", ">", ">=":
        let order: Bool
        if let x = l.number, let y = r.number {
            order = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y
        } else if case .string(let x) = l, case .string(let y) = r {
            order = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y
        } else {
            throw ExpressionError("cannot compare \(l.typeName) with \(r.typeName) using '\(op)'", offset: 0)
        }
        return .bool(order)
    case "+":
        if case .string(let x) = l, case .string(let y) = r { return .string(x + y) }
        if case .list(let x) = l, case .list(let y) = r { return .list(x + y) }
        fallthrough
    default:
        return try arithmetic(op, l, r)
    }
}

private func arithmetic(_ op: String, _ l: ParamValue, _ r: ParamValue) throws(ExpressionError) -> ParamValue {
    // Booleans count as 0 and 1, as in Python, so `(a != 1) + (b != 2) <= 1` counts deviations.
    func numeric(_ v: ParamValue) -> ParamValue { if case .bool(let b) = v { .int(b ? 1 : 0) } else { v } }
    let (l, r) = (numeric(l), numeric(r))
    if case .int(let x) = l, case .int(let y) = r {
        switch op {
        case "+": return .int(x &+ y)
        case "-": return .int(x &- y)
        case "*": return .int(x &* y)
        case "//", "%":
            guard y != 0 else { throw ExpressionError("division by zero", offset: 0) }
            let q = Int((Double(x) / Double(y)).rounded(.down))
            return .int(op == "//" ? q : x - q * y)
        case "**" where y >= 0:
            var p = 1
            for _ in 0..<y { p = p &* x }
            return .int(p)
        default: break
        }
    }
    guard let x = l.number, let y = r.number else {
        throw ExpressionError("cannot apply '\(op)' to \(l.typeName) and \(r.typeName)", offset: 0)
    }
    switch op {
    case "+": return .double(x + y)
    case "-": return .double(x - y)
    case "*": return .double(x * y)
    case "/":
        guard y != 0 else { throw ExpressionError("division by zero", offset: 0) }
        return .double(x / y)
    case "//":
        guard y != 0 else { throw ExpressionError("division by zero", offset: 0) }
        return .double((x / y).rounded(.down))
    case "%":
        guard y != 0 else { throw ExpressionError("division by zero", offset: 0) }
        return .double(x - (x / y).rounded(.down) * y)
    case "**": return .double(pow(x, y))
    default: throw ExpressionError("unknown operator '\(op)'", offset: 0)
    }
}

private func applyCall(_ f: String, _ args: [ParamValue]) throws(ExpressionError) -> ParamValue {
    func number(_ v: ParamValue) throws(ExpressionError) -> Double {
        guard let x = v.number else { throw ExpressionError("\(f)() needs numbers, got \(v.typeName)", offset: 0) }
        return x
    }
    switch f {
    case "min", "max":
        let items: [ParamValue]
        if args.count == 1, case .list(let xs) = args[0] { items = xs } else { items = args }
        guard var best = items.first else { throw ExpressionError("\(f)() needs at least one value", offset: 0) }
        for item in items.dropFirst() {
            let (a, b) = (try number(item), try number(best))
            if f == "min" ? a < b : a > b { best = item }
        }
        return best
    default:
        guard args.count == 1 else { throw ExpressionError("\(f)() takes one argument, got \(args.count)", offset: 0) }
        let v = args[0]
        if case .int(let i) = v, ["abs", "round", "floor", "ceil", "int"].contains(f) { return .int(f == "abs" ? abs(i) : i) }
        let x = try number(v)
        switch f {
        case "abs": return .double(abs(x))
        case "round": return .int(Int(x.rounded(.toNearestOrEven)))
        case "floor": return .int(Int(x.rounded(.down)))
        case "ceil": return .int(Int(x.rounded(.up)))
        case "int": return .int(Int(x.rounded(.towardZero)))
        case "float": return .double(x)
        case "log", "log2", "sqrt":
            guard x > 0 || (f == "sqrt" && x == 0) else { throw ExpressionError("\(f)() of \(x) is undefined", offset: 0) }
            return .double(f == "log" ? Foundation.log(x) : f == "log2" ? Foundation.log2(x) : x.squareRoot())
        case "exp": return .double(Foundation.exp(x))
        default: throw ExpressionError("unknown function '\(f)'", offset: 0)
        }
    }
}

// MARK: - Parsing

private struct Token {
    enum Kind: Equatable { case number(ParamValue), string(String), word(String), symbol(String), end }
    var kind: Kind
    var offset: Int
}

struct ExpressionParser {
    private var tokens: [Token] = []
    private var position = 0
    private(set) var names: [String] = []
    private var tokenizeError: ExpressionError?

    init(_ source: String) {
        do { tokens = try Self.tokenize(source) } catch { tokenizeError = error }
    }

    mutating func parseAll() throws(ExpressionError) -> Expression.Node {
        if let tokenizeError { throw tokenizeError }
        let node = try parseConditional()
        guard case .end = peek.kind else { throw unexpected("end of expression") }
        return node
    }

    private var peek: Token { tokens[position] }

    private mutating func advance() -> Token {
        defer { if position < tokens.count - 1 { position += 1 } }
        return tokens[position]
    }

    private mutating func accept(_ symbols: String...) -> String? {
        switch peek.kind {
        case .symbol(let s) where symbols.contains(s), .word(let s) where symbols.contains(s):
            position += 1
            return s
        default: return nil
        }
    }

    private func unexpected(_ expected: String) -> ExpressionError {
        let found: String
        switch peek.kind {
        case .end: found = "end of expression"
        case .number(let v): found = v.json
        case .string(let s): found = JSONText.quote(s)
        case .word(let w), .symbol(let w): found = "'\(w)'"
        }
        return ExpressionError("expected \(expected), found \(found)", offset: peek.offset)
    }

    private mutating func parseConditional() throws(ExpressionError) -> Expression.Node {
        let value = try parseOr()
        guard accept("if") != nil else { return value }
        let condition = try parseOr()
        guard accept("else") != nil else { throw unexpected("'else'") }
        return .conditional(condition, value, try parseConditional())
    }

    private mutating func parseOr() throws(ExpressionError) -> Expression.Node {
        var node = try parseAnd()
        while accept("or", "||") != nil { node = .binary("or", node, try parseAnd()) }
        return node
    }

    private mutating func parseAnd() throws(ExpressionError) -> Expression.Node {
        var node = try parseNot()
        while accept("and", "&&") != nil { node = .binary("and", node, try parseNot()) }
        return node
    }

    private mutating func parseNot() throws(ExpressionError) -> Expression.Node {
        if accept("not", "!") != nil { return .unary("not", try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(ExpressionError) -> Expression.Node {
        let left = try parseSum()
        if let op = accept("==", "!=", "<", "<=", ">", ">=", "in") {
            return .binary(op, left, try parseSum())
        }
        if case .word("not") = peek.kind, position + 1 < tokens.count, case .word("in") = tokens[position + 1].kind {
            position += 2
            return .binary("not in", left, try parseSum())
        }
        return left
    }

    private mutating func parseSum() throws(ExpressionError) -> Expression.Node {
        var node = try parseProduct()
        while let op = accept("+", "-") { node = .binary(op, node, try parseProduct()) }
        return node
    }

    private mutating func parseProduct() throws(ExpressionError) -> Expression.Node {
        var node = try parseUnary()
        while let op = accept("*", "/", "//", "%") { node = .binary(op, node, try parseUnary()) }
        return node
    }

    private mutating func parseUnary() throws(ExpressionError) -> Expression.Node {
        if accept("-") != nil { return .unary("-", try parseUnary()) }
        if accept("+") != nil { return try parseUnary() }
        let base = try parseAtom()
        if accept("**") != nil { return .binary("**", base, try parseUnary()) }
        return base
    }

    private mutating func parseAtom() throws(ExpressionError) -> Expression.Node {
        let token = peek
        switch token.kind {
        case .number(let v):
            position += 1
            return .literal(v)
        case .string(let s):
            position += 1
            return .literal(.string(s))
        case .symbol("("):
            position += 1
            let inner = try parseConditional()
            guard accept(")") != nil else { throw unexpected("')'") }
            return inner
        case .symbol("["):
            position += 1
            var items: [Expression.Node] = []
            if accept("]") == nil {
                repeat { items.append(try parseConditional()) } while accept(",") != nil
                guard accept("]") != nil else { throw unexpected("',' or ']'") }
            }
            return .list(items)
        case .word(let w):
            position += 1
            switch w {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "null", "None": return .literal(.null)
            case "and", "or", "not", "if", "else", "in":
                position -= 1
                throw unexpected("a value")
            default: break
            }
            if accept("(") != nil {
                guard Expression.functions.contains(w) else {
                    throw ExpressionError(
                        "unknown function '\(w)'", offset: token.offset,
                        hint: didYouMean(w, Expression.functions) ?? "functions: \(Expression.functions.sorted().joined(separator: ", "))")
                }
                var args: [Expression.Node] = []
                if accept(")") == nil {
                    repeat { args.append(try parseConditional()) } while accept(",") != nil
                    guard accept(")") != nil else { throw unexpected("',' or ')'") }
                }
                return .call(w, args)
            }
            if !names.contains(w) { names.append(w) }
            return .name(w)
        default:
            throw unexpected("a value")
        }
    }

    private static func tokenize(_ source: String) throws(ExpressionError) -> [Token] {
        let chars = Array(source.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isWord(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || c == "." || ("0"..."9").contains(c) }
        while i < chars.count {
            let c = chars[i]
            let start = i
            if c == " " || c == "\t" || c == "\n" { i += 1; continue }
            if ("0"..."9").contains(c) || (c == "." && i + 1 < chars.count && ("0"..."9").contains(chars[i + 1])) {
                var text = ""
                while i < chars.count,
                    ("0"..."9").contains(chars[i]) || chars[i] == "." || chars[i] == "_"
                        || chars[i] == "e" || chars[i] == "E"
                        || ((chars[i] == "-" || chars[i] == "+") && (chars[i - 1] == "e" || chars[i - 1] == "E"))
                {
                    if chars[i] != "_" { text.unicodeScalars.append(chars[i]) }
                    i += 1
                }
                if let n = Int(text) {
                    tokens.append(Token(kind: .number(.int(n)), offset: start))
                } else if let d = Double(text) {
                    tokens.append(Token(kind: .number(.double(d)), offset: start))
                } else {
                    throw ExpressionError("malformed number '\(text)'", offset: start)
                }
            } else if c == "'" || c == "\"" {
                var text = ""
                i += 1
                while i < chars.count, chars[i] != c {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    text.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard i < chars.count else { throw ExpressionError("unterminated string", offset: start) }
                i += 1
                tokens.append(Token(kind: .string(text), offset: start))
            } else if isWordStart(c) {
                var text = ""
                while i < chars.count, isWord(chars[i]) { text.unicodeScalars.append(chars[i]); i += 1 }
                tokens.append(Token(kind: .word(text), offset: start))
            } else {
                let two = i + 1 < chars.count ? String(c) + String(chars[i + 1]) : ""
                if ["==", "!=", "<=", ">=", "&&", "||", "**", "//"].contains(two) {
                    tokens.append(Token(kind: .symbol(two), offset: start))
                    i += 2
                } else if "+-*/%<>()[],!".unicodeScalars.contains(c) {
                    tokens.append(Token(kind: .symbol(String(c)), offset: start))
                    i += 1
                } else if c == "=" {
                    throw ExpressionError("'=' is not an operator", offset: start, hint: "compare with '=='")
                } else {
                    throw ExpressionError("unexpected character '\(c)'", offset: start)
                }
            }
        }
        tokens.append(Token(kind: .end, offset: chars.count))
        return tokens
    }
}
