import Foundation

/// One training sequence: input tokens and, per position, the next token to predict or −100.
public struct Example: Sendable, Equatable {
    public var tokens: [Int32]
    public var targets: [Int32]
    /// The record's `task_type`, for validation loss per task type.
    public var taskType: String?
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) } }

    /// Shifts a rendered sequence into (input, next-token target), keeping targets only where `trainOn` is true.
    /// Sequences longer than maxSeqLen + 1 tokens are cut at the end.
    public init(sequence: [Int32], trainOn: [Bool], maxSeqLen: Int) {
        let k = min(sequence.count, maxSeqLen + 1)
        tokens = Array(sequence[0..<(k - 1)])
        targets = (1..<k).map { trainOn[$0] ? sequence[$0] : ignoreIndex }
    }
}

public enum DataLoader {
    /// Reads SFT records from JSONL: Alpaca (`instruction`, optional `input`, `output`) or chat (`messages` with
    /// `role` and `content`). Blank lines are skipped; anything else malformed names its file and line.
    public static func loadSFT(_ url: URL) throws -> [[Message]] {
        try loadSFTRecords(url).map(\.messages)
    }

    /// The records with their `task_type` (a string, when a record has one): validation loss is also logged per
    /// task type.
    public static func loadSFTRecords(_ url: URL) throws -> [(messages: [Message], taskType: String?)] {
        try jsonLines(url).map { line, object in
            (try sftRecord(object, file: url.path, line: line), object["task_type"] as? String)
        }
    }

    static func sftRecord(_ object: [String: Any], file: String, line: Int) throws -> [Message] {
        func fail(_ message: String) -> TrainingError { .data(file: file, line: line, message: message) }
        if let messages = object["messages"] {
            guard let list = messages as? [[String: Any]], !list.isEmpty else {
                throw fail("\"messages\" must be a non-empty array of {\"role\", \"content\"} objects")
            }
            let parsed = try list.enumerated().map { i, m -> Message in
                guard let roleName = m["role"] as? String, let role = Role(rawValue: roleName) else {
                    throw fail("message \(i + 1): \"role\" must be \"system\", \"user\" or \"assistant\"")
                }
                guard let content = m["content"] as? String else { throw fail("message \(i + 1): \"content\" must be a string") }
                return Message(role: role, content: content)
            }
            guard parsed.contains(where: { $0.role == .assistant }) else { throw fail("no assistant message to learn from") }
            return parsed
        }
        guard let instruction = object["instruction"] as? String, let output = object["output"] as? String else {
            throw fail("expected {\"instruction\", \"input\", \"output\"} (Alpaca) or {\"messages\": [...]} (chat)")
        }
        var prompt = instruction
        if let input = object["input"] {
            guard let text = input as? String else { throw fail("\"input\" must be a string") }
            if !text.isEmpty { prompt += "\n\n" + text }
        }
        return [Message(role: .user, content: prompt), Message(role: .assistant, content: output)]
    }

    /// Pretraining documents: a `.jsonl` file holds one `{"text": ...}` per line; any other file is one document.
    public static func loadDocuments(_ url: URL) throws -> [String] {
        if url.pathExtension == "jsonl" {
            return try jsonLines(url).map { line, object in
                guard let text = object["text"] as? String else {
                    throw TrainingError.data(file: url.path, line: line, message: "expected {\"text\": \"...\"}")
                }
                return text
            }
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TrainingError.file("cannot read \(url.path)") }
        return [String(decoding: data, as: UTF8.self)]
    }

    /// Documents as one stream `<|begin_of_text|>doc<|end_of_text|>…`, cut into windows of maxSeqLen + 1 tokens
    /// that overlap by one so every token is a target once.
    public static func pretrainingExamples(_ documents: [String], maxSeqLen: Int) -> [Example] {
        var stream: [Int32] = []
        for d in documents { stream.append(Tokenizer.bos); stream += Tokenizer.encode(d); stream.append(Tokenizer.eos) }
        var out: [Example] = []
        var start = 0
        while start + 1 < stream.count {
            let end = min(start + maxSeqLen + 1, stream.count)
            let window = Array(stream[start..<end])
            out.append(Example(sequence: window, trainOn: Array(repeating: true, count: window.count), maxSeqLen: maxSeqLen))
            start = end - 1
        }
        return out
    }

    public static func sftExample(_ messages: [Message], maxSeqLen: Int) -> Example {
        let (tokens, response) = ChatTemplate.render(messages)
        return Example(sequence: tokens, trainOn: response, maxSeqLen: maxSeqLen)
    }

    /// Non-blank lines parsed as JSON objects, numbered from 1.
    static func jsonLines(_ url: URL) throws -> [(line: Int, object: [String: Any])] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TrainingError.file("cannot read \(url.path)") }
        var out: [(Int, [String: Any])] = []
        for (i, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw TrainingError.data(file: url.path, line: i + 1, message: "not a JSON object")
            }
            out.append((i + 1, object))
        }
        return out
    }
}

public enum DataMixing {
    /// docs/DESIGN.md's mix_ratio m: round(m·N/(1−m)) general records for N domain records, drawn by seed without
    /// replacement while enough remain, so m is the general share of the training set.
    public static func generalCount(domain n: Int, mixRatio m: Double) -> Int {
        m <= 0 ? 0 : Int((m * Double(n) / (1 - m)).rounded())
    }

    public static func draw<E>(_ general: [E], count: Int, rng: inout SeededGenerator) -> [E] {
        guard !general.isEmpty else { return [] }
        var out: [E] = []
        while out.count < count {
            let pass = rng.shuffled(general)
            out += pass.prefix(count - out.count)
        }
        return out
    }

    /// Holds out a validation share of the records by seed: max(1, round(fraction·N)) of them, when N ≥ 2.
    public static func split<E>(_ records: [E], validationFraction: Double, rng: inout SeededGenerator) -> (train: [E], validation: [E]) {
        guard records.count >= 2 else { return (records, []) }
        let shuffled = rng.shuffled(records)
        let k = min(records.count - 1, max(1, Int((validationFraction * Double(records.count)).rounded())))
        return (Array(shuffled[k...]), Array(shuffled[..<k]))
    }
}

/// Copies examples into the workspace's token and target buffers, padded on the right to the longest one.
enum Batching {
    static func load<T>(_ examples: [Example], _ indices: some Collection<Int>, into ws: Workspace<T>) -> (batch: Int, seqLen: Int) {
        var t = 1
        for i in indices { t = max(t, examples[i].tokens.count) }
        var r = 0
        for index in indices {
            let e = examples[index], row = r * t
            for i in 0..<t {
                ws.tokens[row + i] = i < e.tokens.count ? e.tokens[i] : Tokenizer.eos
                ws.targets[row + i] = i < e.targets.count ? e.targets[i] : ignoreIndex
            }
            r += 1
        }
        return (indices.count, t)
    }
}
