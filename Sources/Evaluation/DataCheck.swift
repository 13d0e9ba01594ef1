import Foundation

/// `harrow data check`: what a fine-tuning data file holds before a sweep trains on it, and whether any of its
/// prompts is also an evaluation prompt. Pure: bytes in, a report out; the data is never changed.
///
/// A file is JSON lines (blank lines skipped) or one JSON array of records. Record formats, as LLaMA-Factory
/// describes them (hiyouga/LLaMA-Factory `data/README.md`, the `alpaca` and `sharegpt` formats of
/// `dataset_info.json`), plus the ones Harrow reads (`TrainingCore/Data.swift`, datasets/README.md):
/// - Alpaca: `instruction`, optional `input` (joined to the instruction after a blank line), `output`;
/// - ShareGPT: `conversations`, a list of `{"from": "human"|"gpt"|"system"|"function_call"|"observation", "value"}`;
/// - OpenAI chat: `messages`, a list of `{"role": "system"|"user"|"assistant"|"tool", "content"}` (a string, or a
///   list of `{"type": "text", "text"}` parts);
/// - `prompt` with `response` or `completion` (and evalset items: `prompt` only, read as a reference);
/// - `text` alone (pretraining documents: no prompt; the text counts as the response).
/// Harrow's own records are Alpaca or `messages` with a two-level `task_type` (`qa/dose`).
///
/// Texts are compared as words: lowercased, split at anything that is not a letter or digit. *Exact* means the same
/// words; *near* means a Jaccard similarity of at least `threshold` between the sets of word 5-gram shingles (a text
/// of fewer words is one shingle). MinHash signatures (`hashes` seeded hash functions, banded for locality-sensitive
/// hashing) find the candidate pairs; the Jaccard of their shingle sets, computed exactly, confirms them.
public enum DataCheck {
    public struct Settings: Sendable, Equatable {
        public var hashes = 64
        /// Bands of `hashes / bands` rows: a pair at Jaccard 0.8 shares a band with probability 1 − (1 − 0.8⁴)¹⁶ > 0.999.
        public var bands = 16
        public var threshold = 0.8
        public var shingleWords = 5
        /// A task type with a smaller share of the file's records is flagged.
        public var rareShare = 0.02
        /// Example pairs kept for the duplicate findings (warnings); errors keep every line.
        public var examples = 3
        /// Records longer than this many tokens lose the end of their response to truncation; nil: not checked.
        public var maxSeqLen: Int?
        public var tokens = TokenCount.estimate
        public init() {}
    }

    /// How a record's length in tokens is counted.
    public enum TokenCount: String, Sendable, Equatable, Codable {
        /// UTF-8 bytes / 4, an estimate for subword tokenizers (about 4 bytes a token on English text).
        case estimate = "utf8_bytes/4"
        /// harrow-train's tokenizer, exactly: one token a byte, plus `<|begin_of_text|>` and, per turn, its role
        /// token and `<|end|>` (`TrainingCore/Tokenizer.swift`, `ChatTemplate`).
        case harrowTrain = "harrow-train"

        /// Tokens of a record whose turns hold `bytes` UTF-8 bytes in all, response `response` bytes of them.
        func count(bytes: Int, turns: Int) -> Double {
            switch self {
            case .estimate: Double(bytes) / 4
            case .harrowTrain: Double(1 + bytes + 2 * turns)
            }
        }
    }

    public struct Location: Hashable, Sendable, Codable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public init(file: String, line: Int) { self.file = file; self.line = line }
        public var description: String { "\(file):\(line)" }
    }

    public struct Record: Sendable, Equatable {
        public var location: Location
        /// `alpaca`, `sharegpt`, `messages`, `prompt` or `text`.
        public var format: String
        /// The texts checked against an evalset: every user turn; for Alpaca the joined prompt and, when there is
        /// an input, the instruction and the input alone.
        public var prompts: [String]
        public var response: String?
        public var taskType: String?
        /// UTF-8 bytes of every turn's text (an Alpaca prompt as the trainer joins it) and the number of turns.
        public var bytes = 0
        public var turns = 0
    }

    public struct Malformed: Sendable, Equatable, Codable, CustomStringConvertible {
        public var location: Location
        public var message: String
        public var description: String { "\(location): \(message)" }
    }

    /// Two records whose texts match; `jaccard` is 1 for an exact match.
    public struct Pair: Sendable, Equatable, Codable {
        public var a: Location
        public var b: Location
        public var jaccard: Double
    }

    public struct Duplicates: Sendable, Equatable, Codable {
        /// Exact: records repeating an earlier record's text. Near: pairs of distinct texts.
        public var count = 0
        public var examples: [Pair] = []
    }

    /// Lengths in tokens (counted as `FileReport.tokens` says), nearest-rank percentiles.
    public struct Spread: Sendable, Equatable, Codable {
        public var min: Double, median: Double, p95: Double, max: Double
    }

    public struct Share: Sendable, Equatable, Codable {
        public var name: String
        public var count: Int
        /// Of all the file's records.
        public var share: Double
    }

    public struct Overlap: Sendable, Equatable, Codable {
        /// One pair per contaminated record (the record, then the reference it matches); exact first.
        public var exact: [Pair] = []
        public var near: [Pair] = []
    }

    public struct FileReport: Sendable, Equatable, Codable {
        public var file: String
        public var records = 0
        public var formats: [String: Int] = [:]
        public var malformed: [Malformed] = []
        public var emptyResponses: [Location] = []
        public var responseTokens: Spread?
        /// Whole records (every turn, with the template's tokens) and how they were counted.
        public var recordTokens: Spread?
        public var tokens = TokenCount.estimate
        /// Records over `maxSeqLen` tokens (nil when no length was given): their responses are cut short.
        public var maxSeqLen: Int?
        public var truncated: [Location] = []
        public var taskTypes: [Share] = []
        public var taskGroups: [Share] = []
        public var untyped = 0
        public var rareTaskTypes: [String] = []
        public var duplicateResponses = Duplicates()
        public var nearDuplicateResponses = Duplicates()
        /// Nil without a reference to check against.
        public var overlap: Overlap?

        /// Malformed lines and prompts found in the reference: each makes the check fail.
        public var errors: Int { malformed.count + (overlap.map { $0.exact.count + $0.near.count } ?? 0) }
        public var warnings: Int {
            emptyResponses.count + truncated.count + rareTaskTypes.count + duplicateResponses.count + nearDuplicateResponses.count
        }
    }

    /// Prompts to check training files against (an evalset's items, or another data file), ready to match.
    public struct Reference: Sendable {
        var exact: [[String]: Location] = [:]
        var texts: [(location: Location, shingles: Shingled)] = []
        var index: MinHashIndex
        public var count: Int { texts.count }
    }

    // MARK: Reading

    /// The file's records and the lines that are not one. With `requireResponse` false (a reference file), a record
    /// needs only a prompt.
    public static func parse(_ data: Data, file: String, requireResponse: Bool = true) -> (records: [Record], malformed: [Malformed]) {
        var records: [Record] = [], malformed: [Malformed] = []
        let chunks: [(line: Int, bytes: Data)]
        switch split(data) {
        case .success(let c): chunks = c
        case .failure(let problem): return ([], [Malformed(location: Location(file: file, line: problem.line), message: problem.message)])
        }
        for (line, bytes) in chunks {
            let location = Location(file: file, line: line)
            guard let value = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) else {
                malformed.append(Malformed(location: location, message: "not valid JSON"))
                continue
            }
            guard let object = value as? [String: Any] else {
                malformed.append(Malformed(location: location, message: "not a JSON object"))
                continue
            }
            do {
                records.append(try record(object, at: location, requireResponse: requireResponse))
            } catch {
                malformed.append(Malformed(location: location, message: error.message))
            }
        }
        return (records, malformed)
    }

    struct Problem: Error { var line = 0; var message: String }

    /// JSON lines, or the elements of a top-level array with the line each starts on.
    static func split(_ data: Data) -> Result<[(line: Int, bytes: Data)], Problem> {
        let bytes = [UInt8](data)
        let whitespace: Set<UInt8> = [32, 9, 10, 13]
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        let first = bytes[start...].firstIndex { !whitespace.contains($0) }
        guard let first, bytes[first] == UInt8(ascii: "[") else {
            var out: [(Int, Data)] = []
            for (i, raw) in bytes[start...].split(separator: 10, omittingEmptySubsequences: false).enumerated() {
                if raw.allSatisfy({ whitespace.contains($0) }) { continue }
                out.append((i + 1, Data(raw)))
            }
            return .success(out)
        }
        // A JSON array: find where each top-level element starts and ends, outside strings.
        var out: [(Int, Data)] = []
        var line = 1 + bytes[start..<first].filter { $0 == 10 }.count
        var depth = 1, inString = false, escaped = false, afterComma = false
        var elementStart: Int?, elementLine = 0
        for i in (first + 1)..<bytes.count {
            let b = bytes[i]
            if b == 10 { line += 1 }
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            if depth == 1, elementStart == nil, !whitespace.contains(b), b != UInt8(ascii: ","), b != UInt8(ascii: "]") {
                elementStart = i
                elementLine = line
                afterComma = false
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                guard depth == 0 else { continue }
                guard b == UInt8(ascii: "]") else { return .failure(Problem(line: line, message: "unbalanced brackets")) }
                // JSON has no trailing comma; Python's json and datasets' loader refuse `[{…},]`.
                if afterComma { return .failure(Problem(line: line, message: "a comma before the end of the JSON array")) }
                if let s = elementStart { out.append((elementLine, Data(bytes[s..<i]))) }
                if bytes[(i + 1)...].contains(where: { !whitespace.contains($0) }) {
                    return .failure(Problem(line: line, message: "text after the end of the JSON array"))
                }
                return .success(out)
            case UInt8(ascii: ","):
                guard depth == 1 else { continue }
                guard let s = elementStart else { return .failure(Problem(line: line, message: "an empty element in the JSON array")) }
                out.append((elementLine, Data(bytes[s..<i])))
                elementStart = nil
                afterComma = true
            default: break
            }
        }
        return .failure(Problem(line: line, message: "the JSON array is not closed"))
    }

    static func record(_ o: [String: Any], at location: Location, requireResponse: Bool) throws(Problem) -> Record {
        var taskType: String?
        if let t = o["task_type"], !(t is NSNull) {
            guard let s = t as? String else { throw Problem(message: "\"task_type\" must be a string") }
            taskType = s
        }
        var turns: [String] = []
        func make(_ format: String, _ prompts: [String], _ response: String?) throws(Problem) -> Record {
            if requireResponse, response == nil { throw Problem(message: "no response to learn from") }
            // LLaMA-Factory's `system` and `tools` columns go into the prompt, so into the record's length.
            let columns = ["system", "tools"].compactMap { o[$0] as? String }.filter { !$0.isEmpty }
            return Record(
                location: location, format: format, prompts: prompts, response: response, taskType: taskType,
                bytes: (turns + columns).reduce(0) { $0 + $1.utf8.count }, turns: turns.count + columns.count)
        }
        if let m = o["messages"] {
            guard let list = m as? [[String: Any]], !list.isEmpty else {
                throw Problem(message: "\"messages\" must be a non-empty list of {\"role\", \"content\"} objects")
            }
            var prompts: [String] = [], response: String?
            for (i, message) in list.enumerated() {
                guard let role = message["role"] as? String, ["system", "user", "assistant", "tool", "function", "developer"].contains(role)
                else {
                    throw Problem(
                        message:
                            "message \(i + 1): \"role\" must be \"system\", \"developer\", \"user\", \"assistant\", \"tool\" or \"function\""
                    )
                }
                // An assistant turn may be calls instead of text (OpenAI's function-calling fine-tuning format:
                // `tool_calls` or the older `function_call`, with `content` absent or null): the calls are its text.
                let calls = role == "assistant" && (message["content"] == nil || message["content"] is NSNull) ? self.calls(message) : nil
                guard let content = calls ?? text(of: message["content"]) else {
                    throw Problem(message: "message \(i + 1): \"content\" must be a string or a list of text parts")
                }
                if role == "user" { prompts.append(content) }
                if role == "assistant" { response = content }
                turns.append(content)
            }
            if requireResponse, response == nil { throw Problem(message: "no assistant message to learn from") }
            return try make("messages", prompts, response)
        }
        if let c = o["conversations"] {
            guard let list = c as? [[String: Any]], !list.isEmpty else {
                throw Problem(message: "\"conversations\" must be a non-empty list of {\"from\", \"value\"} objects")
            }
            var prompts: [String] = [], response: String?
            for (i, turn) in list.enumerated() {
                guard let from = turn["from"] as? String,
                    ["human", "gpt", "system", "function_call", "observation", "user", "assistant"].contains(from)
                else {
                    throw Problem(
                        message: "turn \(i + 1): \"from\" must be \"human\", \"gpt\", \"system\", \"function_call\" or \"observation\"")
                }
                guard let value = turn["value"] as? String else { throw Problem(message: "turn \(i + 1): \"value\" must be a string") }
                if from == "human" || from == "user" { prompts.append(value) }
                // LLaMA-Factory trains on a `function_call` turn as the assistant's (its tool-use format).
                if from == "gpt" || from == "assistant" || from == "function_call" { response = value }
                turns.append(value)
            }
            // Preference data (LLaMA-Factory's ranking format): the conversation ends at the prompt and `chosen` is
            // the reply a model is tuned towards.
            if let chosen = o["chosen"] as? [String: Any], let value = chosen["value"] as? String {
                response = value
                turns.append(value)
            }
            if requireResponse, response == nil { throw Problem(message: "no \"gpt\" turn to learn from") }
            return try make("sharegpt", prompts, response)
        }
        if let i = o["instruction"] {
            guard let instruction = i as? String else { throw Problem(message: "\"instruction\" must be a string") }
            var input = ""
            if let v = o["input"], !(v is NSNull) {
                guard let s = v as? String else { throw Problem(message: "\"input\" must be a string") }
                input = s
            }
            var response: String?
            if let v = o["output"] ?? o["chosen"] {
                guard let s = v as? String else { throw Problem(message: "\"output\" must be a string") }
                response = s
            } else if requireResponse {
                throw Problem(message: "Alpaca record without \"output\"")
            }
            let prompts = input.isEmpty ? [instruction] : [instruction + "\n\n" + input, instruction, input]
            turns = [prompts[0]] + (response.map { [$0] } ?? [])
            return try make("alpaca", prompts, response)
        }
        if let p = o["prompt"] {
            guard let prompt = p as? String else { throw Problem(message: "\"prompt\" must be a string") }
            var response: String?
            for key in ["response", "completion"] {
                if let v = o[key] {
                    guard let s = v as? String else { throw Problem(message: "\"\(key)\" must be a string") }
                    response = s
                    break
                }
            }
            if requireResponse, response == nil { throw Problem(message: "\"prompt\" without \"response\" or \"completion\"") }
            turns = [prompt] + (response.map { [$0] } ?? [])
            return try make("prompt", [prompt], response)
        }
        if let t = o["text"] {
            guard let text = t as? String else { throw Problem(message: "\"text\" must be a string") }
            turns = [text]
            return try make("text", [], text)
        }
        throw Problem(
            message: "no known format: expected Alpaca {\"instruction\", \"input\", \"output\"}, ShareGPT "
                + "{\"conversations\"}, OpenAI {\"messages\"}, {\"prompt\", \"response\"} or {\"text\"}")
    }

    /// An OpenAI assistant message's calls as text: each function's name and arguments, one per line.
    static func calls(_ message: [String: Any]) -> String? {
        var functions = (message["tool_calls"] as? [[String: Any]])?.compactMap { $0["function"] as? [String: Any] } ?? []
        if let f = message["function_call"] as? [String: Any] { functions.append(f) }
        guard !functions.isEmpty else { return nil }
        return functions.map { f in
            let arguments = f["arguments"].map { a in (a as? String) ?? String(describing: a) } ?? ""
            return ((f["name"] as? String) ?? "") + " " + arguments
        }.joined(separator: "\n")
    }

    static func text(of content: Any?) -> String? {
        if let s = content as? String { return s }
        if content is NSNull { return "" }
        guard let parts = content as? [[String: Any]] else { return nil }
        var out: [String] = []
        for part in parts {
            // OpenAI's parts carry `text`; LLaMA-Factory's v1 format (`data/v1_sft_demo.jsonl`) carries `value`.
            guard let t = (part["text"] ?? part["value"]) as? String else { return nil }
            out.append(t)
        }
        return out.joined(separator: "\n")
    }

    // MARK: Checking

    /// The prompts of `records`, to check other files against.
    public static func reference(_ records: [Record], settings: Settings = Settings()) -> Reference {
        var r = Reference(index: MinHashIndex(settings: settings))
        for record in records {
            for prompt in record.prompts {
                let w = words(prompt)
                guard !w.isEmpty else { continue }
                if r.exact[w] == nil { r.exact[w] = record.location }
                let s = Shingled(w, settings: settings)
                r.index.insert(s.signature, id: r.texts.count)
                r.texts.append((record.location, s))
            }
        }
        return r
    }

    public static func check(_ data: Data, file: String, against reference: Reference? = nil, settings: Settings = Settings()) -> FileReport
    {
        let (records, malformed) = parse(data, file: file)
        var report = check(records, file: file, against: reference, settings: settings)
        report.malformed = malformed
        return report
    }

    public static func check(_ records: [Record], file: String, against reference: Reference? = nil, settings: Settings = Settings())
        -> FileReport
    {
        var r = FileReport(file: file)
        r.records = records.count
        for record in records { r.formats[record.format, default: 0] += 1 }

        // Lengths and empty responses.
        let responses = records.compactMap { record in record.response.map { (record.location, $0) } }
        r.emptyResponses = responses.filter { $0.1.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }.map(\.0)
        // A response's tokens: its bytes and, for harrow-train, the `<|end|>` trained with it.
        let tokens = responses.map { settings.tokens.count(bytes: $0.1.utf8.count, turns: 0) }.sorted()
        r.responseTokens = spread(tokens)
        r.tokens = settings.tokens
        let lengths = records.map { (record: $0, tokens: settings.tokens.count(bytes: $0.bytes, turns: $0.turns)) }
        r.recordTokens = spread(lengths.map(\.tokens).sorted())
        if let limit = settings.maxSeqLen {
            r.maxSeqLen = limit
            r.truncated = lengths.filter { $0.tokens > Double(limit) }.map(\.record.location)
        }

        // Task types.
        if records.contains(where: { $0.taskType != nil }) {
            var types: [String: Int] = [:], groups: [String: Int] = [:]
            for record in records {
                guard let t = record.taskType else { r.untyped += 1; continue }
                types[t, default: 0] += 1
                groups[String(t.split(separator: "/", maxSplits: 1).first ?? Substring(t)), default: 0] += 1
            }
            let n = Double(records.count)
            r.taskTypes = types.sorted { $0.key < $1.key }.map { Share(name: $0.key, count: $0.value, share: Double($0.value) / n) }
            r.taskGroups = groups.sorted { $0.key < $1.key }.map { Share(name: $0.key, count: $0.value, share: Double($0.value) / n) }
            r.rareTaskTypes = r.taskTypes.filter { $0.share < settings.rareShare }.map(\.name)
        }

        // Duplicate responses: exact (the same words), then near among the distinct texts.
        var firstOf: [[String]: Location] = [:]
        var distinct: [(location: Location, words: [String])] = []
        for (location, response) in responses {
            let w = words(response)
            guard !w.isEmpty else { continue }
            if let first = firstOf[w] {
                r.duplicateResponses.count += 1
                if r.duplicateResponses.examples.count < settings.examples {
                    r.duplicateResponses.examples.append(Pair(a: first, b: location, jaccard: 1))
                }
            } else {
                firstOf[w] = location
                distinct.append((location, w))
            }
        }
        let shingled = distinct.map { Shingled($0.words, settings: settings) }
        var index = MinHashIndex(settings: settings)
        var near: [Pair] = []
        for (j, s) in shingled.enumerated() {
            for i in index.candidates(s.signature).sorted() {
                let jaccard = shingled[i].jaccard(s)
                if jaccard >= settings.threshold { near.append(Pair(a: distinct[i].location, b: distinct[j].location, jaccard: jaccard)) }
            }
            index.insert(s.signature, id: j)
        }
        r.nearDuplicateResponses = Duplicates(count: near.count, examples: Array(near.prefix(settings.examples)))

        // Prompts found in the reference.
        if let reference {
            var overlap = Overlap()
            for record in records {
                var nearest: Pair?
                var exact: Pair?
                for prompt in record.prompts {
                    let w = words(prompt)
                    guard !w.isEmpty else { continue }
                    if let at = reference.exact[w] { exact = Pair(a: record.location, b: at, jaccard: 1); break }
                    let s = Shingled(w, settings: settings)
                    for id in reference.index.candidates(s.signature).sorted() {
                        let jaccard = reference.texts[id].shingles.jaccard(s)
                        if jaccard >= settings.threshold, jaccard > (nearest?.jaccard ?? 0) {
                            nearest = Pair(a: record.location, b: reference.texts[id].location, jaccard: jaccard)
                        }
                    }
                }
                if let exact { overlap.exact.append(exact) } else if let nearest { overlap.near.append(nearest) }
            }
            r.overlap = overlap
        }
        return r
    }

    static func spread(_ sorted: [Double]) -> Spread? {
        guard let first = sorted.first, let last = sorted.last else { return nil }
        return Spread(min: first, median: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95), max: last)
    }

    /// Task types of the training file with fewer than `minimum` records in the validation file: their val loss
    /// (and `val/loss@TYPE`) rests on too few records to read. `count` is the validation records, `share` their
    /// share of the validation file.
    public static func validationGaps(train: FileReport, validation: FileReport, minimum: Int = 3) -> [Share] {
        let held = Dictionary(uniqueKeysWithValues: validation.taskTypes.map { ($0.name, $0.count) })
        return train.taskTypes.compactMap { t in
            let n = held[t.name] ?? 0
            return n < minimum
                ? Share(name: t.name, count: n, share: validation.records > 0 ? Double(n) / Double(validation.records) : 0) : nil
        }
    }

    /// The value at rank ⌈q·n⌉ of sorted values (nearest-rank).
    static func nearestRank(_ sorted: [Double], _ q: Double) -> Double {
        sorted[max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)]
    }

    /// Lowercased runs of letters and digits.
    public static func words(_ text: String) -> [String] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }
}

/// A text's word shingles (hashed) and their MinHash signature.
struct Shingled: Sendable {
    let shingles: Set<UInt64>
    let signature: [UInt64]

    init(_ words: [String], settings: DataCheck.Settings) {
        let k = settings.shingleWords
        var set = Set<UInt64>()
        if words.count <= k {
            set.insert(Self.fnv1a(words))
        } else {
            for i in 0...(words.count - k) { set.insert(Self.fnv1a(words[i..<(i + k)])) }
        }
        shingles = set
        signature = MinHashIndex.seeds(settings.hashes).map { seed in set.map { MinHashIndex.mix($0 ^ seed) }.min() ?? .max }
    }

    func jaccard(_ other: Shingled) -> Double {
        let shared = shingles.intersection(other.shingles).count
        return Double(shared) / Double(shingles.count + other.shingles.count - shared)
    }

    /// FNV-1a (64-bit) over the words with a separator: the same on every platform and run, unlike `Hasher`.
    static func fnv1a<C: Collection<String>>(_ words: C) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for (n, word) in words.enumerated() {
            if n > 0 { h = (h ^ 0x1F) &* 0x0000_0100_0000_01B3 }
            for b in word.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        }
        return h
    }
}

/// Locality-sensitive hashing of MinHash signatures: texts that agree on every row of some band are candidates.
struct MinHashIndex: Sendable {
    let settings: DataCheck.Settings
    var buckets: [Int: [UInt64: [Int]]] = [:]

    init(settings: DataCheck.Settings) { self.settings = settings }

    var rows: Int { max(1, settings.hashes / max(1, settings.bands)) }

    func keys(_ signature: [UInt64]) -> [(band: Int, key: UInt64)] {
        stride(from: 0, to: signature.count - rows + 1, by: rows).enumerated().map { band, start in
            (band, signature[start..<(start + rows)].reduce(0xCBF2_9CE4_8422_2325 as UInt64) { Self.mix($0 ^ $1) })
        }
    }

    mutating func insert(_ signature: [UInt64], id: Int) {
        for (band, key) in keys(signature) { buckets[band, default: [:]][key, default: []].append(id) }
    }

    func candidates(_ signature: [UInt64]) -> Set<Int> {
        var out = Set<Int>()
        for (band, key) in keys(signature) { out.formUnion(buckets[band]?[key] ?? []) }
        return out
    }

    /// The SplitMix64 finaliser (Steele, Lea and Flood, 2014).
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// One seed per hash function, the same on every run.
    static func seeds(_ n: Int) -> [UInt64] {
        (0..<n).map { mix(UInt64($0) &* 0xD1B5_4A32_D192_ED03 &+ 0x4841_5252_4F57) }
    }
}

extension DataCheck {
    /// The check of every dataset a sweep's trials name, against the evalsets it scores with: what `harrow plan`
    /// prints, `harrow sweep` stores with the sweep, and the report shows.
    public struct Night: Sendable, Equatable, Codable {
        public struct File: Sendable, Equatable, Codable {
            /// The trial parameter naming it: `dataset`, `general_dataset` or `val_dataset`.
            public var role: String
            public var sha256: String
            /// True when the findings were read from the store, not computed again.
            public var cached: Bool
            public var report: FileReport
            public init(role: String, sha256: String, cached: Bool, report: FileReport) {
                self.role = role; self.sha256 = sha256; self.cached = cached; self.report = report
            }
        }

        /// A validation file short of records of a training file's task types.
        public struct Gap: Sendable, Equatable, Codable {
            public var train: String
            public var validation: String
            public var types: [Share]
        }

        /// The evalsets' item files every prompt was looked up in.
        public var against: [String] = []
        public var files: [File] = []
        public var validationGaps: [Gap] = []
        /// Datasets named by something other than a readable file (a name a trainer profile resolves), not checked.
        public var notChecked: [String] = []
        /// Evaluation prompts in the data are warnings (`data: {allow_overlap: true}`), not errors.
        public var allowOverlap = false
        /// Fewest validation records of a task type before it is flagged.
        public var minimumValidation = 3

        public init() {}

        public var malformed: Int { files.reduce(0) { $0 + $1.report.malformed.count } }
        public var overlaps: Int { files.reduce(0) { $0 + ($1.report.overlap.map { $0.exact.count + $0.near.count } ?? 0) } }
        /// What makes a sweep refuse to start.
        public var errors: Int { malformed + (allowOverlap ? 0 : overlaps) }
        public var warnings: Int {
            files.reduce(0) { $0 + $1.report.warnings } + validationGaps.reduce(0) { $0 + $1.types.count } + (allowOverlap ? overlaps : 0)
        }

        /// Validation gaps between each training file and each validation file.
        public mutating func findValidationGaps() {
            validationGaps = []
            for v in files where v.role == "val_dataset" {
                for t in files where t.role == "dataset" {
                    let types = DataCheck.validationGaps(train: t.report, validation: v.report, minimum: minimumValidation)
                    if !types.isEmpty { validationGaps.append(Gap(train: t.report.file, validation: v.report.file, types: types)) }
                }
            }
        }

        /// One line per file and per finding, for `harrow plan` and `harrow sweep` (errors first, then warnings).
        public func lines(examples: Int = 3) -> [String] {
            var out: [String] = []
            for f in files {
                let r = f.report
                var parts = ["\(r.records) records"]
                if let s = r.recordTokens {
                    parts.append(
                        String(
                            format: "%.0f–%.0f tokens (%@)", s.min, s.max,
                            r.tokens == .estimate ? "UTF-8 bytes / 4, an estimate" : "harrow-train's tokenizer"))
                }
                if !r.malformed.isEmpty { parts.append("\(r.malformed.count) malformed") }
                if let o = r.overlap, o.exact.count + o.near.count > 0 {
                    parts.append("\(o.exact.count + o.near.count) evaluation prompts")
                }
                if r.warnings > 0 { parts.append("\(r.warnings) warning\(r.warnings == 1 ? "" : "s")") }
                out.append("data: \(r.file) (\(f.role)): " + parts.joined(separator: ", ") + (f.cached ? " (checked before)" : ""))
                for m in r.malformed.prefix(examples) { out.append("  error: \(m)") }
                if let o = r.overlap {
                    let kind = allowOverlap ? "warning" : "error"
                    for p in o.exact.prefix(examples) { out.append("  \(kind): \(p.a): the same prompt as \(p.b)") }
                    for p in o.near.prefix(examples) {
                        out.append(
                            String(format: "  %@: %@: a prompt %.2f similar to %@", kind, p.a.description, p.jaccard, p.b.description))
                    }
                }
                if !r.truncated.isEmpty, let limit = r.maxSeqLen {
                    out.append(
                        "  warning: \(r.truncated.count) record\(r.truncated.count == 1 ? "" : "s") over max_seq_len \(limit) tokens "
                            + "(their responses are cut short), first \(r.truncated[0])")
                }
                if !r.emptyResponses.isEmpty {
                    out.append("  warning: \(r.emptyResponses.count) empty responses, first \(r.emptyResponses[0])")
                }
                for t in r.taskTypes where r.rareTaskTypes.contains(t.name) {
                    out.append(
                        String(
                            format: "  warning: task type %@ is %d of %d records (%.1f%%, under 2%%)", t.name, t.count, r.records,
                            t.share * 100))
                }
                if r.duplicateResponses.count > 0, let p = r.duplicateResponses.examples.first {
                    out.append("  warning: \(r.duplicateResponses.count) records repeat an earlier response, as \(p.b) repeats \(p.a)")
                }
                if r.nearDuplicateResponses.count > 0, let p = r.nearDuplicateResponses.examples.first {
                    out.append(
                        String(
                            format: "  warning: %d pairs of nearly equal responses (MinHash, Jaccard ≥ 0.8), as %@ and %@ (%.2f)",
                            r.nearDuplicateResponses.count, p.a.description, p.b.description, p.jaccard))
                }
            }
            for g in validationGaps {
                let types = g.types.map { "\($0.name) (\($0.count))" }.joined(separator: ", ")
                out.append(
                    "data: \(g.validation) has fewer than \(minimumValidation) records of \(g.train)'s task types \(types): their val/loss@TYPE is noise"
                )
            }
            for path in notChecked { out.append("data: \(path) is not a file here (a name the trainer resolves?): not checked") }
            return out
        }
    }
}
