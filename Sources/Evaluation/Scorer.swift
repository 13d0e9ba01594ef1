import Foundation
import Subprocess
import SystemPackage

/// One request of the score protocol (docs/DESIGN.md).
public enum ScoreRequest: Sendable {
    case loglikelihood(prompt: String, continuation: String, template: String)
    case generate(prompt: String, maxTokens: Int, stop: [String], template: String)
    /// Generation after chat turns, rendered by the model's chat template.
    case chat(messages: [ChatMessage], maxTokens: Int, stop: [String])

    func line(id: Int) -> String {
        var o: [String: Any] = ["id": id]
        switch self {
        case .loglikelihood(let p, let c, let t):
            o["prompt"] = p; o["continuation"] = c; o["template"] = t
        case .generate(let p, let m, let s, let t):
            o["prompt"] = p; o["max_tokens"] = m; o["stop"] = s; o["template"] = t
        case .chat(let messages, let m, let s):
            o["messages"] = messages.map { ["role": $0.role, "content": $0.content] }; o["max_tokens"] = m; o["stop"] = s
            o["template"] = "chat"
        }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

public enum ScoreResponse: Sendable, Equatable {
    case loglikelihood(logprob: Double, tokens: Int, greedy: Bool)
    case text(String)
    case error(String)
}

public struct ScorerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Answers score requests: a scorer process talked to as it runs (`Scorer`), or one run as a batch job whose
/// requests and answers are files (a cluster's evaluation job).
public protocol ScoreBackend: Sendable {
    func score(_ requests: [ScoreRequest], environment: [String: String]) async throws -> [ScoreResponse]
}

extension ScoreRequest {
    /// The requests as the scorer reads them: one JSON line each, ids in order.
    public static func lines(_ requests: [ScoreRequest]) -> String {
        requests.enumerated().map { $1.line(id: $0) + "\n" }.joined()
    }
}

extension ScoreResponse {
    /// A batch scorer's output, by request id: every one of `count` answered, or an error naming the first missing.
    public static func parse(lines text: String, count: Int) throws -> [ScoreResponse] {
        var answers: [Int: ScoreResponse] = [:]
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let (id, response) = try Scorer.parse(String(line))
            answers[id] = response
        }
        if let missing = (0..<count).first(where: { answers[$0] == nil }) {
            throw ScorerError("the scorer answered \(answers.count) of \(count) requests (none for \(missing))")
        }
        return (0..<count).map { answers[$0]! }
    }
}

/// A scorer process speaking JSON lines on stdin/stdout. Requests are written while answers are read, with
/// a bounded window in flight, so neither pipe fills up and blocks the other side.
public struct Scorer: ScoreBackend {
    public var argv: [String]
    public var window: Int
    /// A scorer that sends no answer for this long while answers are due is stopped (seconds).
    public var idleTimeout: Double

    /// A scorer still running this long after the exchange ended (all answers in, or its stdout closed)
    /// is killed with its process group (seconds).
    public var exitGrace: Double

    /// Ten minutes: loading a large model before the first answer stays well inside it.
    public static let defaultIdleTimeout = 600.0

    public init(argv: [String], window: Int = 64, idleTimeout: Double = Scorer.defaultIdleTimeout, exitGrace: Double = 30) {
        self.argv = argv
        self.window = window
        self.idleTimeout = idleTimeout
        self.exitGrace = exitGrace
    }

    public func score(_ requests: [ScoreRequest], environment: [String: String] = [:]) async throws -> [ScoreResponse] {
        let exchange = LineExchange(argv: argv, window: window, idleTimeout: idleTimeout, exitGrace: exitGrace, role: "scorer")
        return try await exchange.run(requests.enumerated().map { $1.line(id: $0) }, environment: environment, parse: Self.parse)
    }

    package static func parse(_ line: String) throws -> (Int, ScoreResponse) {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], let id = o["id"] as? Int else {
            throw ScorerError("the scorer wrote a line that is not a response: \(line.prefix(200))")
        }
        if let e = o["error"] as? String { return (id, .error(e)) }
        if let text = o["text"] as? String { return (id, .text(text)) }
        if let lp = (o["logprob"] as? NSNumber)?.doubleValue {
            return (id, .loglikelihood(logprob: lp, tokens: (o["n_tokens"] as? Int) ?? 0, greedy: (o["is_greedy"] as? Bool) ?? false))
        }
        throw ScorerError("response \(id) has neither logprob, text nor error")
    }
}

/// When the scorer last answered, for stopping one that went silent.
actor AnswerClock {
    private var last = ContinuousClock.now
    private(set) var didTimeOut = false

    func answered() { last = .now }
    func timedOut() { didTimeOut = true }
    /// Seconds since the last answer (or the start).
    func silence() -> Double {
        let d = ContinuousClock.now - last
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// Bounds the requests in flight.
actor Window {
    private var free: Int
    private var closed = false
    private var waiting: [CheckedContinuation<Bool, Never>] = []

    init(size: Int) { free = max(1, size) }

    /// Waits for room; false once the answers have ended and nothing more should be sent.
    func acquire() async -> Bool {
        if closed { return false }
        if free > 0 { free -= 1; return true }
        return await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume(returning: true) }
    }

    func close() {
        closed = true
        for w in waiting { w.resume(returning: false) }
        waiting.removeAll()
    }
}
