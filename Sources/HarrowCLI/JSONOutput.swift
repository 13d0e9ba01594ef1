import Foundation
import HarrowCore

/// Harrow's JSON on standard output: sorted keys, pretty-printed, slashes as they are (the bytes `jsonText` writes
/// from a dictionary), for `Encodable` output types.
/// `snakeCase`: the keys of types that name them in Swift's camelCase (a diagnosis's evidence), written in
/// snake_case as every other key is, and non-finite numbers as "inf", "-inf", "nan".
func jsonText<T: Encodable>(_ value: T, snakeCase: Bool = false) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    if snakeCase {
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    }
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}

/// An optional that is written as `null` rather than left out, so every key a script reads is always there
/// (synthesised `Encodable` leaves a nil optional out).
@propertyWrapper struct OrNull<Value: Encodable & Sendable>: Encodable, Sendable {
    var wrappedValue: Value?
    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value = wrappedValue { try container.encode(value) } else { try container.encodeNil() }
    }
}

extension ParamValue: Encodable {
    /// As the value is written in trial.json.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): if d.isFinite { try container.encode(d) } else { try container.encodeNil() }
        case .string(let s): try container.encode(s)
        case .list(let items): try container.encode(items)
        }
    }
}

/// One JSON line, keys sorted (`jsonl` output).
func jsonLine<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}

/// Two objects written as one: the keys of both (an output that extends another, as `show --json` extends the run
/// summary).
struct Merged<Base: Encodable & Sendable, Extra: Encodable & Sendable>: Encodable, Sendable {
    var base: Base
    var extra: Extra

    func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        try extra.encode(to: encoder)
    }
}

/// JSON kept as it was stored (a search's proposal), written back unchanged.
enum StoredJSON: Encodable, Sendable {
    case null, bool(Bool), number(Double), integer(Int), string(String), list([StoredJSON]), object([String: StoredJSON])

    init?(text: String) {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) else { return nil }
        self.init(value)
    }

    init(_ value: Any) {
        switch value {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            // JSONSerialization's numbers keep their kind in objCType, as ParamValue(jsonObject:) reads them.
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .number(n.doubleValue)
            default: self = .integer(n.intValue)
            }
        case let list as [Any]: self = .list(list.map(StoredJSON.init))
        case let object as [String: Any]: self = .object(object.mapValues(StoredJSON.init))
        default: self = .null
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .integer(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        case .list(let items): try c.encode(items)
        case .object(let o): try c.encode(o)
        }
    }
}
