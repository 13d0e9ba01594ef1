/// Byte-level tokens (ids 0–255 are the bytes of UTF-8 text) plus a few special tokens for documents and chat turns.
public enum Tokenizer {
    public static let bos: Int32 = 256  // <|begin_of_text|>
    public static let eos: Int32 = 257  // <|end_of_text|>: ends a pretraining document
    public static let system: Int32 = 258  // <|system|>
    public static let user: Int32 = 259  // <|user|>
    public static let assistant: Int32 = 260  // <|assistant|>
    public static let endOfTurn: Int32 = 261  // <|end|>
    public static let vocabSize = 262

    public static let specialNames: [Int32: String] = [
        bos: "<|begin_of_text|>", eos: "<|end_of_text|>", system: "<|system|>",
        user: "<|user|>", assistant: "<|assistant|>", endOfTurn: "<|end|>"
    ]

    public static func encode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) } }

    /// Bytes back to text; special tokens are dropped and invalid UTF-8 is replaced.
    public static func decode(_ tokens: some Sequence<Int32>) -> String {
        String(decoding: tokens.compactMap { $0 < 256 ? UInt8($0) : nil }, as: UTF8.self)
    }
}

public enum Role: String, Sendable {
    case system, user, assistant

    var token: Int32 {
        switch self {
        case .system: Tokenizer.system
        case .user: Tokenizer.user
        case .assistant: Tokenizer.assistant
        }
    }
}

public struct Message: Sendable, Equatable {
    public var role: Role
    public var content: String
    public init(role: Role, content: String) { self.role = role; self.content = content }
}

/// The chat template: `<|begin_of_text|>` then, per message, `<|role|>content<|end|>`.
/// Only the assistant's content and its `<|end|>` are trained on.
public enum ChatTemplate {
    /// Token ids and, per token, whether it is a response token (counted in the loss).
    public static func render(_ messages: [Message]) -> (tokens: [Int32], isResponse: [Bool]) {
        var tokens: [Int32] = [Tokenizer.bos], response = [false]
        for m in messages {
            tokens.append(m.role.token); response.append(false)
            let body = Tokenizer.encode(m.content) + [Tokenizer.endOfTurn]
            tokens += body
            response += Array(repeating: m.role == .assistant, count: body.count)
        }
        return (tokens, response)
    }

    /// A user prompt ready for the assistant's answer: `<|begin_of_text|><|user|>prompt<|end|><|assistant|>`.
    public static func prompt(_ text: String) -> [Int32] { prompt([Message(role: .user, content: text)]) }

    /// A conversation ready for the assistant's next turn: the messages rendered, then `<|assistant|>`.
    public static func prompt(_ messages: [Message]) -> [Int32] { render(messages).tokens + [Tokenizer.assistant] }
}
