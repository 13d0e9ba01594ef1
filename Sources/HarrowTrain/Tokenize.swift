import Foundation
import ArgumentParser
import TrainingCore

/// Token ids as the trainer sees them, for checking another tokenizer (such as the tokenizer.json of a checkpoint)
/// against this one.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Read JSON lines {\"text\"} or {\"messages\", \"add_generation_prompt\"} on stdin; print {\"ids\"} per line (text: bytes only; messages: the chat template)."
    )

    func run() throws {
        while let line = readLine() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
            var ids: [Int32]?
            if let text = o["text"] as? String {
                ids = Tokenizer.encode(text)
            } else if let list = o["messages"] as? [[String: Any]] {
                let messages = list.compactMap { m in
                    (m["role"] as? String).flatMap(Role.init(rawValue:)).flatMap { r in
                        (m["content"] as? String).map { Message(role: r, content: $0) }
                    }
                }
                if messages.count == list.count {
                    ids = ChatTemplate.render(messages).tokens + (o["add_generation_prompt"] as? Bool == true ? [Tokenizer.assistant] : [])
                }
            }
            print(
                ids.map { "{\"ids\": [\($0.map(String.init).joined(separator: ", "))]}" }
                    ?? "{\"error\": \"expected {\\\"text\\\"} or {\\\"messages\\\"} with roles system, user or assistant\"}")
        }
    }
}
