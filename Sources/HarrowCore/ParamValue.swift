import Foundation

/// One resolved parameter value, as YAML or an expression yields it.
public enum ParamValue: Sendable, Hashable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)
    case null
    case list([ParamValue])

    public var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    /// Numbers compare by value across int and float (W&B hashes 3e6 and 3000000 alike).
    public func sameValue(as other: ParamValue) -> Bool {
        switch (self, other) {
        case (.list(let a), .list(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.sameValue(as: $1) }
        default:
            if let x = number, let y = other.number { return x == y }
            return self == other
        }
    }

    public var typeName: String {
        switch self {
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .bool: "boolean"
        case .null: "null"
        case .list: "list"
        }
    }
}

// MARK: - Rendering

extension ParamValue {
    /// JSON text. Floats use Swift's shortest round-trip form; non-finite values become null.
    public var json: String {
        var out = ""
        writeJSON(to: &out)
        return out
    }

    public func writeJSON(to out: inout String) {
        switch self {
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? d.description : "null"
        case .string(let s): out += JSONText.quote(s)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .list(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.writeJSON(to: &out)
            }
            out += "]"
        }
    }

    /// Canonical text for trial identity: integral floats are written as integers so 1e3 and 1000 are one trial.
    public func writeCanonical(to out: inout String) {
        switch self {
        case .double(let d) where d.isFinite && d == d.rounded() && abs(d) < 9.0e15:
            out += String(Int(d))
        case .list(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.writeCanonical(to: &out)
            }
            out += "]"
        default:
            writeJSON(to: &out)
        }
    }

    /// Python's `str()`, which W&B's `${args}` macros use: `True`, `None`, `1e-05`, `['q_proj', 'v_proj']`.
    public var python: String {
        switch self {
        case .int(let i): String(i)
        case .double(let d):
            d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : d.description
        case .string(let s): s
        case .bool(let b): b ? "True" : "False"
        case .null: "None"
        case .list(let items): "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        }
    }

    /// Python's `repr()`, as values inside a list or dict print.
    public var pythonRepr: String {
        if case .string(let s) = self {
            return "'" + s.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'"
        }
        return python
    }

    /// YAML that YAML 1.1 loaders (PyYAML: what `wandb.init` and LLaMA-Factory read) and YAML 1.2 ones read back
    /// with the same type. A 1.1 float needs a `.` in its mantissa and a signed exponent, so `5e-05` would be the string
    /// "5e-05" (hiyouga/LLaMA-Factory#4014): it is written `5.0e-05`. Strings are quoted, so `yes` stays a string.
    public var yaml: String {
        switch self {
        case .double(let d):
            if d.isNaN { return ".nan" }
            if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
            let text = d.description
            guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text.contains(".") ? text : text + ".0" }
            var mantissa = String(text[..<e]), exponent = String(text[text.index(after: e)...])
            if !mantissa.contains(".") { mantissa += ".0" }
            if !exponent.hasPrefix("-"), !exponent.hasPrefix("+") { exponent = "+" + exponent }
            return mantissa + "e" + exponent
        case .list(let items): return "[" + items.map(\.yaml).joined(separator: ", ") + "]"
        default: return json
        }
    }

    /// Plain text for `{param.NAME}` placeholders: strings bare, everything else as JSON.
    public var plain: String {
        if case .string(let s) = self { return s }
        return json
    }
}

extension String {
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard contains(target) else { return self }
        return components(separatedBy: target).joined(separator: replacement)
    }
}

// MARK: - Reading back

extension ParamValue {
    /// A value as Foundation's JSONSerialization returns it, keeping int, float and bool apart (`1`, `1.0`,
    /// `true`). An object (an imported trainer's nested config) is kept as its JSON text.
    public init(jsonObject value: Any) {
        switch value {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            default: self = .int(n.intValue)
            }
        case let list as [Any]: self = .list(list.map(ParamValue.init(jsonObject:)))
        case is NSNull: self = .null
        default:
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
            self = .string(data.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)")
        }
    }

    /// A flat JSON object of parameters, keys sorted: what the store keeps.
    public static func objectJSON(_ values: [String: ParamValue]) -> String {
        var out = "{"
        for (i, key) in values.keys.sorted().enumerated() {
            if i > 0 { out += ", " }
            out += JSONText.quote(key) + ": "
            values[key]!.writeJSON(to: &out)
        }
        return out + "}"
    }

    /// A flat JSON object of parameters (`trial.json`, a run's stored params), decoded once.
    /// Floats are read again by JSONDecoder: JSONSerialization on Linux can miss a 17-digit float by one ulp
    /// (0.00048544120805620847 comes back as 0.0004854412080562085), which would change a trial's key and value.
    public static func object(fromJSON text: String) -> [String: ParamValue] { object(fromJSONData: Data(text.utf8)) ?? [:] }

    /// As `object(fromJSON:)`; nil when `data` is not a JSON object.
    public static func object(fromJSONData data: Data) -> [String: ParamValue]? {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        let precise = (try? JSONDecoder().decode([String: PreciseNumbers].self, from: data)) ?? [:]
        return object.reduce(into: [:]) { out, entry in
            let value = ParamValue(jsonObject: entry.value)
            out[entry.key] = precise[entry.key].map { value.refined(by: $0) } ?? value
        }
    }

    /// One JSON value (a fragment such as `2e-4` or `"cosine"`), read as `object(fromJSON:)` reads each of its
    /// values; nil when `text` is not JSON.
    public init?(json text: String) {
        let data = Data(text.utf8)
        guard let value = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) else { return nil }
        let read = ParamValue(jsonObject: value)
        self = (try? JSONDecoder().decode(PreciseNumbers.self, from: data)).map { read.refined(by: $0) } ?? read
    }

    /// The numbers of a JSON value as JSONDecoder reads them (exactly).
    private enum PreciseNumbers: Decodable {
        case number(Double), list([PreciseNumbers]), other
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let d = try? c.decode(Double.self) {
                self = .number(d)
            } else if let l = try? c.decode([PreciseNumbers].self) {
                self = .list(l)
            } else {
                self = .other
            }
        }
    }

    private func refined(by precise: PreciseNumbers) -> ParamValue {
        switch (self, precise) {
        case (.double, .number(let d)): .double(d)
        case (.list(let items), .list(let numbers)) where items.count == numbers.count:
            .list(zip(items, numbers).map { $0.refined(by: $1) })
        default: self
        }
    }

    /// Imported text as the value it spells: `3` an int, `2e-4` a float, `true` a bool, anything else text.
    public init(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let i = Int(t) {
            self = .int(i)
        } else if let d = Double(t), d.isFinite, t.rangeOfCharacter(from: .letters.subtracting(CharacterSet(charactersIn: "eE"))) == nil {
            self = .double(d)
        } else if t == "true" || t == "True" {
            self = .bool(true)
        } else if t == "false" || t == "False" {
            self = .bool(false)
        } else {
            self = .string(text)
        }
    }

    /// The value for Foundation's JSONSerialization (run summaries printed with `--json`).
    public var jsonObject: Any {
        switch self {
        case .int(let i): i
        case .double(let d): d.isFinite ? d as Any : NSNull()
        case .string(let s): s
        case .bool(let b): b
        case .null: NSNull()
        case .list(let items): items.map(\.jsonObject)
        }
    }
}
