import HarrowCore
/// A JSON value written with keys in the given order and no optional whitespace, so output bytes are stable.
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.encoded == b.encoded }

    public var encoded: String {
        switch self {
        case .string(let s): return JSONText.quote(s)
        case .int(let i): return String(i)
        case .array(let items): return "[" + items.map(\.encoded).joined(separator: ", ") + "]"
        case .object(let fields): return "{" + fields.map { JSONText.quote($0.0) + ": " + $0.1.encoded }.joined(separator: ", ") + "}"
        }
    }
}

func jsonLines(_ records: [JSONValue]) -> String { records.map { $0.encoded + "\n" }.joined() }
