import Foundation
import HarrowCore

// OpenAI's chat completions API as `harrow-train serve` speaks it (docs/DESIGN.md's judge protocol names the server):
// the request read and checked, the reply's shape, the error's shape. Pure: bytes in, values or JSON text out.
// Shapes follow openai-python's types (github.com/openai/openai-python): src/openai/types/chat/chat_completion.py
// (ChatCompletion, Choice) and chat_completion_message.py at commit 0444895, src/openai/types/completion_usage.py and
// src/openai/types/model.py at 08b8179, src/openai/types/shared/error_object.py at 295bdf1.

/// A JSON value as a request body carries it. Booleans, integers and other numbers stay apart (a `1` is no `true`, a
/// `2.5` no integer), so a check can say exactly what is wrong. Object keys have no order once decoded.
public indirect enum JSONInput: Decodable, Equatable, Sendable {
    case null, bool(Bool), int(Int), number(Double), string(String), array([JSONInput]), object([String: JSONInput])

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONInput].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONInput].self))
    }

    /// The value as JSON text (numbers as Swift prints them, which JSON reads back).
    public var text: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .number(let d): d.isFinite ? String(d) : "null"
        case .string(let s): JSONText.quote(s)
        case .array(let a): "[" + a.map(\.text).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.keys.sorted().map { JSONText.quote($0) + ": " + o[$0]!.text }.joined(separator: ", ") + "}"
        }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// An error as OpenAI's API answers it, `{"error": {"message", "type", "param", "code"}}` (ErrorObject in openai-python's
/// src/openai/types/shared/error_object.py), with its HTTP status.
public struct ChatAPIError: Error, Equatable, Sendable {
    public var status: Int
    public var message: String
    public var type = "invalid_request_error"
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.code = code
    }

    /// 400: the request is wrong.
    public static func invalid(_ message: String, param: String?, code: String? = nil) -> ChatAPIError {
        ChatAPIError(status: 400, message: message, param: param, code: code)
    }

    /// 404 with code `model_not_found`, OpenAI's answer to a model it does not serve (its message is quoted in
    /// github.com/Shopify/roast/issues/13).
    public static func modelNotFound(_ model: String) -> ChatAPIError {
        ChatAPIError(
            status: 404, message: "The model `\(model)` does not exist or you do not have access to it.", param: "model",
            code: "model_not_found")
    }

    public var json: String {
        let optional = { (s: String?) in s.map(JSONText.quote) ?? "null" }
        return
            "{\"error\": {\"message\": \(JSONText.quote(message)), \"type\": \(JSONText.quote(type)), \"param\": \(optional(param)), \"code\": \(optional(code))}}"
    }
}

/// How the reply is written: free text, free text asked to be a JSON object, or a JSON object decoded to a schema.
public enum ReplyFormat: Equatable, Sendable {
    case text, jsonObject
    case jsonSchema(ObjectSchema)
}

/// A chat completions request this server can answer. Sampling parameters (temperature, top_p, seed) are checked
/// and dropped: decoding is greedy.
public struct ChatCompletionRequest: Equatable, Sendable {
    public var model: String
    public var messages: [Message]
    /// `max_completion_tokens`, else `max_tokens`; nil: as many as the context leaves.
    public var maxTokens: Int?
    public var stop: [String]
    public var format: ReplyFormat

    public init(model: String, messages: [Message], maxTokens: Int? = nil, stop: [String] = [], format: ReplyFormat = .text) {
        self.model = model
        self.messages = messages
        self.maxTokens = maxTokens
        self.stop = stop
        self.format = format
    }

    /// Reads a request body. A model other than `servedModel` is a 404, as OpenAI answers; everything else wrong is a 400
    /// naming the parameter.
    public static func parse(_ body: Data, servedModel: String) throws(ChatAPIError) -> ChatCompletionRequest {
        guard let json = try? JSONDecoder().decode(JSONInput.self, from: body) else {
            throw .invalid("The request body is not valid JSON: send a JSON object with Content-Type: application/json.", param: nil)
        }
        guard case .object(let o) = json else { throw .invalid("The request body must be a JSON object, not \(json.kind).", param: nil) }
        func given(_ name: String) -> JSONInput? { o[name] == .null ? nil : o[name] }

        guard case .string(let model)? = given("model") else {
            throw .invalid("You must provide a model parameter (a string).", param: "model")
        }
        guard model == servedModel else { throw .modelNotFound(model) }

        if let stream = given("stream") {
            guard case .bool(let on) = stream else { throw .invalid("stream must be a boolean, not \(stream.kind).", param: "stream") }
            if on { throw .invalid("Streaming is not supported by this server: send stream false (or leave it out).", param: "stream") }
        }
        if let n = given("n"), n != .int(1) {
            throw .invalid("This server answers with one choice: n must be 1, not \(n.text).", param: "n")
        }
        try checkNumber(given("temperature"), "temperature", 0...2)
        try checkNumber(given("top_p"), "top_p", 0...1)
        if let seed = given("seed") {
            guard case .int = seed else { throw .invalid("seed must be an integer, not \(seed.kind).", param: "seed") }
        }
        if let logprobs = given("logprobs"), logprobs != .bool(false) {
            throw .invalid("logprobs are not supported by this server: leave logprobs out or false.", param: "logprobs")
        }
        if let tools = given("tools"), tools != .array([]) {
            throw .invalid("Tools are not supported by this server.", param: "tools")
        }

        let messages = try parseMessages(given("messages"))
        var maxTokens: Int?
        for name in ["max_completion_tokens", "max_tokens"] {
            guard maxTokens == nil, let value = given(name) else { continue }
            guard case .int(let n) = value, n >= 1 else {
                throw .invalid("\(name) must be an integer of at least 1, not \(value.text).", param: name)
            }
            maxTokens = n
        }
        return ChatCompletionRequest(
            model: model, messages: messages, maxTokens: maxTokens, stop: try parseStop(given("stop")),
            format: try parseFormat(given("response_format")))
    }

    private static func checkNumber(_ value: JSONInput?, _ name: String, _ range: ClosedRange<Double>) throws(ChatAPIError) {
        let number: Double
        switch value {
        case nil: return
        case .int(let i)?: number = Double(i)
        case .number(let d)?: number = d
        case let other?: throw .invalid("\(name) must be a number, not \(other.kind).", param: name)
        }
        guard range.contains(number) else {
            throw .invalid("\(name) must be between \(range.lowerBound) and \(range.upperBound), not \(number).", param: name)
        }
    }

    /// Roles system, developer (read as system, as OpenAI's newer name for it), user and assistant; content a string or
    /// a list of text parts, joined with newlines.
    private static func parseMessages(_ value: JSONInput?) throws(ChatAPIError) -> [Message] {
        guard case .array(let list)? = value, !list.isEmpty else {
            throw .invalid("messages must be a non-empty list of {\"role\", \"content\"} objects.", param: "messages")
        }
        var messages: [Message] = []
        for (i, item) in list.enumerated() {
            let at = "messages[\(i)]"
            guard case .object(let m) = item else { throw .invalid("\(at) must be an object, not \(item.kind).", param: at) }
            let role: Role
            switch m["role"] {
            case .string("system")?, .string("developer")?: role = .system
            case .string("user")?: role = .user
            case .string("assistant")?: role = .assistant
            case let other:
                throw .invalid(
                    "\(at).role \(other?.text ?? "is missing"): this server takes system, developer, user and assistant messages.",
                    param: "\(at).role")
            }
            switch m["content"] {
            case .string(let text)?: messages.append(Message(role: role, content: text))
            case .array(let parts)?:
                var texts: [String] = []
                for (j, part) in parts.enumerated() {
                    guard case .object(let p) = part, p["type"] == .string("text"), case .string(let text)? = p["text"] else {
                        throw .invalid(
                            "\(at).content[\(j)] must be a text part {\"type\": \"text\", \"text\": \"…\"}; this server reads text only.",
                            param: "\(at).content")
                    }
                    texts.append(text)
                }
                messages.append(Message(role: role, content: texts.joined(separator: "\n")))
            case let other:
                throw .invalid(
                    "\(at).content must be a string or a list of text parts, not \(other?.kind ?? "missing").", param: "\(at).content")
            }
        }
        return messages
    }

    /// A string or a list of up to 4 non-empty strings (OpenAI's limit).
    private static func parseStop(_ value: JSONInput?) throws(ChatAPIError) -> [String] {
        let items: [JSONInput]
        switch value {
        case nil: return []
        case .string?: items = [value!]
        case .array(let list)?: items = list
        case let other?: throw .invalid("stop must be a string or a list of strings, not \(other.kind).", param: "stop")
        }
        var stop: [String] = []
        for item in items {
            guard case .string(let s) = item, !s.isEmpty else {
                throw .invalid("stop must hold non-empty strings, not \(item.text).", param: "stop")
            }
            stop.append(s)
        }
        guard stop.count <= 4 else { throw .invalid("stop takes up to 4 sequences, not \(stop.count).", param: "stop") }
        return stop
    }

    private static func parseFormat(_ value: JSONInput?) throws(ChatAPIError) -> ReplyFormat {
        guard let value else { return .text }
        guard case .object(let f) = value, case .string(let type)? = f["type"] else {
            throw .invalid("response_format must be an object with a type.", param: "response_format")
        }
        switch type {
        case "text": return .text
        case "json_object": return .jsonObject
        case "json_schema":
            guard case .object(let spec)? = f["json_schema"] else {
                throw .invalid(
                    "response_format json_schema needs a json_schema object {\"name\", \"schema\"}.", param: "response_format.json_schema")
            }
            return .jsonSchema(try ObjectSchema.parse(spec))
        default:
            throw .invalid(
                "response_format.type \(JSONText.quote(type)) is not supported: use text, json_object or json_schema.",
                param: "response_format.type")
        }
    }
}

/// A flat object schema the server can always satisfy: each property an integer (bounded or an enum), a number or a
/// string from an enum, a boolean, or a generated string. The reply is the object's structure written literally, each
/// closed value chosen by likelihood and each open string generated (docs/DESIGN.md's judge protocol).
public struct ObjectSchema: Equatable, Sendable {
    public enum Value: Equatable, Sendable {
        /// JSON texts to choose among.
        case choice([String])
        /// A generated string of at most this many characters.
        case string(maxLength: Int)
    }

    public var name: String
    /// In the order written: `required`'s, then the other properties by name (a decoded object has no key order).
    public var properties: [(name: String, value: Value)]

    public static func == (a: ObjectSchema, b: ObjectSchema) -> Bool {
        a.name == b.name && a.properties.map(\.name) == b.properties.map(\.name) && a.properties.map(\.value) == b.properties.map(\.value)
    }

    /// A string property without maxLength gets this many characters at most.
    public static let defaultStringLength = 64
    /// The most values an integer property may allow: each is a branch the model scores.
    public static let maxChoices = 256

    public init(name: String, properties: [(name: String, value: Value)]) {
        self.name = name
        self.properties = properties
    }

    /// Reads `{"name", "schema", "strict"?, "description"?}`; anything the server could not guarantee is a 400 naming it.
    public static func parse(_ spec: [String: JSONInput]) throws(ChatAPIError) -> ObjectSchema {
        let param = "response_format.json_schema"
        guard case .string(let name)? = spec["name"], !name.isEmpty else {
            throw .invalid("\(param).name must be a non-empty string.", param: "\(param).name")
        }
        guard case .object(let schema)? = spec["schema"] else {
            throw .invalid("\(param).schema must be a JSON schema object.", param: "\(param).schema")
        }
        let at = "\(param).schema"
        let unsupported = "this server decodes a flat object of integer, number, string and boolean properties"
        for key in schema.keys.sorted() where !["type", "properties", "required", "additionalProperties"].contains(key) {
            guard !annotations.contains(key) else { continue }
            throw .invalid("\(at): \(key) is not supported; \(unsupported).", param: at)
        }
        guard schema["type"] == .string("object") else {
            throw .invalid("\(at).type must be \"object\"; \(unsupported).", param: at)
        }
        guard case .object(let properties)? = schema["properties"], !properties.isEmpty else {
            throw .invalid("\(at).properties must be a non-empty object; \(unsupported).", param: at)
        }
        if let extra = schema["additionalProperties"] {
            guard case .bool = extra else {
                throw .invalid("\(at).additionalProperties must be a boolean, not \(extra.kind); \(unsupported).", param: at)
            }
        }
        var order: [String] = []
        switch schema["required"] {
        case nil: break
        case .array(let names)?:
            for n in names {
                guard case .string(let s) = n, properties[s] != nil, !order.contains(s) else {
                    throw .invalid("\(at).required must list property names once each; \(n.text) is not one.", param: at)
                }
                order.append(s)
            }
        case let other?: throw .invalid("\(at).required must be a list of property names, not \(other.kind).", param: at)
        }
        order += properties.keys.filter { !order.contains($0) }.sorted()
        var fields: [(name: String, value: Value)] = []
        for n in order {
            guard case .object(let p) = properties[n]! else {
                throw .invalid("\(at).properties.\(n) must be a schema object.", param: "\(at).properties.\(n)")
            }
            fields.append((n, try value(p, at: "\(at).properties.\(n)")))
        }
        return ObjectSchema(name: name, properties: fields)
    }

    /// Keywords that describe and do not constrain.
    private static let annotations: Set<String> = ["title", "description", "$schema", "$id", "$comment", "default", "examples"]

    private static func value(_ p: [String: JSONInput], at: String) throws(ChatAPIError) -> Value {
        guard case .string(let type)? = p["type"] else {
            throw .invalid("\(at).type must be one of integer, number, string, boolean.", param: at)
        }
        let allowed: Set<String> =
            switch type {
            case "integer": ["type", "minimum", "maximum", "enum"]
            case "number": ["type", "enum"]
            case "string": ["type", "enum", "maxLength"]
            case "boolean": ["type"]
            default: []
            }
        guard !allowed.isEmpty else {
            throw .invalid("\(at).type \(JSONText.quote(type)) is not supported: use integer, number, string or boolean.", param: at)
        }
        for key in p.keys.sorted() where !allowed.contains(key) && !annotations.contains(key) {
            throw .invalid(
                "\(at): \(key) is not supported for a \(type); this server reads \(allowed.sorted().joined(separator: ", ")).", param: at)
        }
        if case .array(let values)? = p["enum"] {
            guard !values.isEmpty, values.count <= maxChoices else {
                throw .invalid("\(at).enum must list 1 to \(maxChoices) values.", param: at)
            }
            for v in values {
                let fits: Bool
                switch (type, v) {
                case ("integer", .int), ("number", .int), ("number", .number), ("string", .string): fits = true
                default: fits = false
                }
                guard fits else { throw .invalid("\(at).enum holds \(v.text), which is not of type \(type).", param: at) }
            }
            var texts: [String] = []
            for t in values.map(\.text) where !texts.contains(t) { texts.append(t) }
            return .choice(texts)
        } else if let e = p["enum"] {
            throw .invalid("\(at).enum must be a list, not \(e.kind).", param: at)
        }
        switch type {
        case "integer":
            guard case .int(let low)? = p["minimum"], case .int(let high)? = p["maximum"], low <= high else {
                throw .invalid("\(at): an integer needs an enum or integer minimum and maximum (minimum ≤ maximum).", param: at)
            }
            guard high - low < maxChoices else {
                throw .invalid(
                    "\(at): \(low)…\(high) allows \(high - low + 1) values; this server chooses among at most \(maxChoices).", param: at)
            }
            return .choice((low...high).map(String.init))
        case "number": throw .invalid("\(at): a number needs an enum of its allowed values.", param: at)
        case "boolean": return .choice(["true", "false"])
        default:
            switch p["maxLength"] {
            case nil: return .string(maxLength: defaultStringLength)
            case .int(let n)? where n >= 0: return .string(maxLength: n)
            case let other?: throw .invalid("\(at).maxLength must be a non-negative integer, not \(other.text).", param: at)
            }
        }
    }

    /// What the reply is made of, in order.
    public enum Segment: Equatable, Sendable {
        /// Structure written as is.
        case literal(String)
        /// One of these JSON texts, chosen by the model's likelihood of it followed by `then` (the character that
        /// closes the value, so "1," and "10," compete as whole values).
        case choice([String], then: String)
        /// String contents generated until a closing quote or `maxLength` tokens, then JSON-escaped.
        case string(maxLength: Int)
    }

    /// `{"a": ` choice `, "b": "` string `"}`: the object written with `": "` and `", "` between its parts.
    public var segments: [Segment] {
        var out: [Segment] = [], text = "{", pendingChoice: [String]?
        func flush(_ literal: String) {
            if let values = pendingChoice { out.append(.choice(values, then: String(literal.prefix(1)))); pendingChoice = nil }
            out.append(.literal(literal))
        }
        for (i, p) in properties.enumerated() {
            text += (i > 0 ? ", " : "") + JSONText.quote(p.name) + ": "
            switch p.value {
            case .choice(let values):
                flush(text)
                pendingChoice = values
                text = ""
            case .string(let n):
                flush(text + "\"")
                out.append(.string(maxLength: n))
                text = "\""
            }
        }
        flush(text + "}")
        return out.filter { $0 != .literal("") }
    }
}

public enum FinishReason: String, Sendable {
    /// The reply ended by itself (an end token, a stop sequence, the schema's closing brace).
    case stop
    /// It was cut at max_tokens or at the end of the model's context.
    case length
}

/// The JSON bodies the server answers with.
public enum ChatCompletionJSON {
    /// A ChatCompletion: one choice, no logprobs.
    public static func completion(
        id: String, created: Int, model: String, content: String, finishReason: FinishReason, promptTokens: Int, completionTokens: Int
    ) -> String {
        let message = "{\"role\": \"assistant\", \"content\": \(JSONText.quote(content)), \"refusal\": null}"
        let choice = "{\"index\": 0, \"message\": \(message), \"finish_reason\": \"\(finishReason.rawValue)\", \"logprobs\": null}"
        let usage =
            "{\"prompt_tokens\": \(promptTokens), \"completion_tokens\": \(completionTokens), \"total_tokens\": \(promptTokens + completionTokens)}"
        return
            "{\"id\": \(JSONText.quote(id)), \"object\": \"chat.completion\", \"created\": \(created), \"model\": \(JSONText.quote(model)), \"choices\": [\(choice)], \"usage\": \(usage)}"
    }

    /// A Model object.
    public static func model(id: String, created: Int) -> String {
        "{\"id\": \(JSONText.quote(id)), \"object\": \"model\", \"created\": \(created), \"owned_by\": \"harrow\"}"
    }

    /// The list `GET /v1/models` answers with.
    public static func modelList(id: String, created: Int) -> String {
        "{\"object\": \"list\", \"data\": [\(model(id: id, created: created))]}"
    }
}
