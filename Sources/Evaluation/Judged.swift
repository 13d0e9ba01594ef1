import Foundation
import HarrowCore

/// A chat turn of a judged item's prompt.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A judged evalset's rubric (docs/DESIGN.md's judged evalsets): each dimension's scale, the score from which a reply
/// passes on it, and what its levels mean, in the manifest's order.
public struct Rubric: Sendable, Equatable {
    public struct Dimension: Sendable, Equatable {
        public var name: String
        public var low: Int
        public var high: Int
        /// A reply at or above this score passes on the dimension (`DIMENSION/usable`).
        public var threshold: Double
        public var levels: [Int: String]

        public init(name: String, low: Int = 1, high: Int = 5, threshold: Double = 4, levels: [Int: String] = [:]) {
            self.name = name
            self.low = low
            self.high = high
            self.threshold = threshold
            self.levels = levels
        }

        public func contains(_ score: Double) -> Bool { score >= Double(low) && score <= Double(high) }
    }

    public var dimensions: [Dimension]

    public init(_ dimensions: [Dimension]) { self.dimensions = dimensions }

    public var names: [String] { dimensions.map(\.name) }
    public subscript(name: String) -> Dimension? { dimensions.first { $0.name == name } }
}

/// When a reply is usable, from its scores: a weighted mean at or above a threshold (with optional floors, so a
/// harmful reply is never usable however helpful), or an expression of Harrow's expression language over the
/// dimension names.
public enum Usability: Sendable {
    case weighted(weights: [String: Double], threshold: Double, floors: [String: Double])
    case expression(HarrowCore.Expression)

    /// Every dimension weighs 1; usable from the rubric's own thresholds on every dimension.
    public static func `default`(_ rubric: Rubric) -> Usability {
        .weighted(
            weights: [:], threshold: rubric.dimensions.map(\.threshold).min() ?? 0,
            floors: Dictionary(rubric.dimensions.map { ($0.name, $0.threshold) }) { a, _ in a })
    }

    public func isUsable(_ scores: [String: Double], rubric: Rubric) throws(ExpressionError) -> Bool {
        switch self {
        case .weighted(let weights, let threshold, let floors):
            let w = rubric.names.map { weights[$0] ?? 1 }
            let sum = w.reduce(0, +)
            let mean = sum > 0 ? zip(rubric.names, w).map { (scores[$0] ?? 0) * $1 }.reduce(0, +) / sum : 0
            return mean >= threshold && floors.allSatisfy { (scores[$0] ?? 0) >= $1 }
        case .expression(let e):
            let names = rubric.names
            let bound = try e.bound(to: Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }))
            let value = try bound.evaluate(names.map { .double(scores[$0] ?? 0) })
            guard case .bool(let b) = value else {
                throw ExpressionError("the usability formula must be true or false, found \(value.typeName)", offset: 0)
            }
            return b
        }
    }
}

/// Which judge scores a judged evalset's replies.
public enum JudgeSpec: Sendable, Equatable {
    /// A process speaking docs/DESIGN.md's judge protocol.
    case command([String])
    /// An OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp's server, TGI, `harrow-train serve`).
    case openai(baseURL: String, model: String, apiKeyEnv: String?)
    /// `ReferenceJudge`: rules against each item's reference; needs no model.
    case reference

    /// How the judge is named in the store, the cache key and the report.
    public var name: String {
        switch self {
        case .command(let argv): "command:" + argv.joined(separator: " ")
        case .openai(let url, let model, _): "openai:\(model)@\(url)"
        case .reference: "reference"
        }
    }
}

/// One reply to judge.
public struct JudgeRequest: Sendable, Equatable {
    public var item: String
    public var prompt: String
    public var messages: [ChatMessage]?
    public var reply: String
    public var reference: String?
    public var notes: String?
    /// Patterns (regular expressions) of what a reply must not do, for judges that read them (`ReferenceJudge`).
    public var avoid: [String]
    public var rubric: Rubric

    public init(
        item: String, prompt: String, messages: [ChatMessage]? = nil, reply: String, reference: String? = nil, notes: String? = nil,
        avoid: [String] = [], rubric: Rubric
    ) {
        self.avoid = avoid
        self.item = item
        self.prompt = prompt
        self.messages = messages
        self.reply = reply
        self.reference = reference
        self.notes = notes
        self.rubric = rubric
    }

    /// The request as the judge protocol writes it, keys sorted (also the judge cache's key).
    public func line(id: Int) -> String {
        var fields: [(String, String)] = [("id", String(id))]
        if let messages {
            fields.append(
                (
                    "prompt",
                    "["
                        + messages.map { "{\"content\":\(JSONText.quote($0.content)),\"role\":\(JSONText.quote($0.role))}" }
                        .joined(separator: ",") + "]"
                ))
        } else {
            fields.append(("prompt", JSONText.quote(prompt)))
        }
        fields.append(("reference", reference.map(JSONText.quote) ?? "null"))
        fields.append(("notes", notes.map(JSONText.quote) ?? "null"))
        if !avoid.isEmpty { fields.append(("avoid", "[" + avoid.map(JSONText.quote).joined(separator: ",") + "]")) }
        fields.append(("reply", JSONText.quote(reply)))
        fields.append(("rubric", rubric.json))
        return "{" + fields.sorted { $0.0 < $1.0 }.map { "\(JSONText.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}

extension Rubric {
    /// `{"helpful": {"levels": {"1": "…"}, "scale": [1, 5]}, …}`, keys sorted.
    var json: String {
        "{"
            + dimensions.sorted { $0.name < $1.name }.map { d in
                let levels = d.levels.keys.sorted().map { "\(JSONText.quote(String($0))):\(JSONText.quote(d.levels[$0]!))" }
                return "\(JSONText.quote(d.name)):{\"levels\":{\(levels.joined(separator: ","))},\"scale\":[\(d.low),\(d.high)]}"
            }.joined(separator: ",") + "}"
    }
}

/// A judge's scores for one reply, each within its rubric scale, and why.
public struct Judgement: Sendable, Equatable, Codable {
    public var scores: [String: Double]
    public var rationale: String

    public init(scores: [String: Double], rationale: String) {
        self.scores = scores
        self.rationale = rationale
    }

    /// A judge protocol response: `{"id", "scores": {DIM: n}, "rationale"}` or `{"id", "error"}`. A line that is
    /// neither, or scores missing a rubric dimension or outside its scale, is an error quoting the line.
    public static func parse(_ line: String, rubric: Rubric) throws(ScorerError) -> (id: Int, judgement: Result<Judgement, ScorerError>) {
        let quoted = "«\(line.prefix(300))»"
        guard let o = try? JSONDecoder().decode([String: Field].self, from: Data(line.utf8)), case .number(let n)? = o["id"],
            let id = Int(exactly: n)
        else { throw ScorerError("the judge wrote a line that is not a response: \(quoted)") }
        if case .text(let e)? = o["error"] { return (id, .failure(ScorerError(e))) }
        return (id, .success(try from(o, rubric: rubric, quoted: quoted)))
    }

    /// The scores and rationale of a JSON object's text (the content of a chat-completions reply: the scores at the
    /// top level or under `scores`).
    static func from(json text: String, rubric: Rubric) throws(ScorerError) -> Judgement {
        let quoted = "«\(text.prefix(300))»"
        guard let o = try? JSONDecoder().decode([String: Field].self, from: Data(text.utf8)) else {
            throw ScorerError("not a JSON object: \(quoted)")
        }
        return try from(o, rubric: rubric, quoted: quoted)
    }

    static func from(_ o: [String: Field], rubric: Rubric, quoted: String) throws(ScorerError) -> Judgement {
        let raw: [String: Field]
        if case .object(let scores)? = o["scores"] { raw = scores } else { raw = o }
        var scores: [String: Double] = [:]
        for d in rubric.dimensions {
            // A JSON number only: `true` or "4" is not a score.
            guard case .number(let n)? = raw[d.name] else {
                throw ScorerError("the judge's answer has no number for '\(d.name)': \(quoted)")
            }
            guard d.contains(n) else {
                throw ScorerError("the judge scored '\(d.name)' \(n) outside its scale \(d.low)–\(d.high): \(quoted)")
            }
            scores[d.name] = n
        }
        guard case .text(let rationale)? = o["rationale"] else { return Judgement(scores: scores, rationale: "") }
        return Judgement(scores: scores, rationale: rationale)
    }

    /// A JSON value as a judge's answer uses it.
    enum Field: Decodable {
        case number(Double), text(String), object([String: Field]), other

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if (try? c.decode(Bool.self)) != nil {
                self = .other
            } else if let n = try? c.decode(Double.self) {
                self = .number(n)
            } else if let s = try? c.decode(String.self) {
                self = .text(s)
            } else if let o = try? c.decode([String: Field].self) {
                self = .object(o)
            } else {
                self = .other
            }
        }
    }
}

/// Scores replies: a judge process, a chat-completions server, or rules.
public protocol JudgeBackend: Sendable {
    /// One judgement per request, in order; throws when the judge fails or answers badly.
    func judge(_ requests: [JudgeRequest], environment: [String: String]) async throws -> [Judgement]
}

/// Judgements already made, by the judge's name and the request: a rerun of an evaluation asks the judge nothing new.
public protocol JudgeCache: Sendable {
    func judgement(judge: String, request: String) -> Judgement?
    func save(_ j: Judgement, judge: String, request: String)
}

extension JudgeBackend {
    /// The requests the cache does not know go to the judge; the new judgements are kept.
    public func judge(
        _ requests: [JudgeRequest], judge name: String, cache: (any JudgeCache)?, environment: [String: String] = [:]
    ) async throws -> (judgements: [Judgement], cached: Int) {
        let keys = requests.map { $0.line(id: 0) }
        var out = keys.map { key in cache?.judgement(judge: name, request: key) }
        let missing = out.indices.filter { out[$0] == nil }
        if !missing.isEmpty {
            let fresh = try await judge(missing.map { requests[$0] }, environment: environment)
            for (i, j) in zip(missing, fresh) {
                out[i] = j
                cache?.save(j, judge: name, request: keys[i])
            }
        }
        return (out.map { $0! }, requests.count - missing.count)
    }
}
