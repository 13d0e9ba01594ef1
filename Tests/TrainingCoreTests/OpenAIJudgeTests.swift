import Evaluation
import Foundation
import Testing

/// Harrow's OpenAI-compatible judge client against a real server: `harrow-train serve` on loopback over a tiny model.
/// (`make check-openai` drives the same server with the official `openai` Python client.)
@Suite("the OpenAI judge against harrow-train serve")
struct OpenAIJudgeTests {
    static let rubric = Rubric([
        Rubric.Dimension(name: "helpful", levels: [1: "wrong", 5: "complete"]), Rubric.Dimension(name: "honest"),
        Rubric.Dimension(name: "harmless", threshold: 5)
    ])

    static func requests(_ n: Int) -> [JudgeRequest] {
        (0..<n).map {
            JudgeRequest(
                item: "i\($0)", prompt: "Dose of Zorb?", reply: "Take \($0 * 10) mg.", reference: "10 mg twice daily", notes: nil,
                rubric: rubric)
        }
    }

    /// A cache in memory, as the store keeps one.
    final class MemoryCache: JudgeCache, @unchecked Sendable {
        var kept: [String: Judgement] = [:]
        let lock = NSLock()
        func judgement(judge: String, request: String) -> Judgement? { lock.withLock { kept[judge + request] } }
        func save(_ j: Judgement, judge: String, request: String) { lock.withLock { kept[judge + request] = j } }
    }

    static func completions(_ log: String) -> Int { log.split(separator: "\n").filter { $0.contains("POST /v1/chat/completions") }.count }

    @Test func theJudgeScoresEveryReplyOnTheRubricAndTheCacheAsksNothingTwice() async throws {
        let server = try ServeProcess(seed: 5)
        defer { server.stop() }
        let judge = OpenAIJudge(baseURL: "http://127.0.0.1:\(server.port)/v1", model: server.name, concurrency: 2)
        let cache = MemoryCache()
        let first = try await judge.judge(Self.requests(4), judge: "openai", cache: cache)
        #expect(first.cached == 0 && first.judgements.count == 4)
        for j in first.judgements {
            #expect(Set(j.scores.keys) == ["helpful", "honest", "harmless"] && j.scores.values.allSatisfy { (1...5).contains($0) })
        }
        let again = try await judge.judge(Self.requests(5), judge: "openai", cache: cache)
        #expect(again.cached == 4 && again.judgements.prefix(4) == first.judgements[...])
        let log = server.stop().log
        #expect(Self.completions(log) == 5, "4 requests, then only the one new reply: \(log)")
    }

    @Test func aReplyThatIsNotTheRubricsJSONIsAskedAgainThenQuoted() async throws {
        let server = try ServeProcess(seed: 6)
        defer { server.stop() }
        // Without a schema the tiny model writes whatever it writes: not JSON for the rubric.
        let judge = OpenAIJudge(baseURL: "http://127.0.0.1:\(server.port)/v1", model: server.name, retries: 2, schema: false)
        await #expect {
            _ = try await judge.judge(Self.requests(1))
        } throws: { error in
            let d = "\(error)"
            return d.contains("gave no valid answer for item i0 in 3 tries") && d.contains("«")
        }
        #expect(Self.completions(server.stop().log) == 3)
    }

    @Test func aServerThatDoesNotServeTheModelIsAnErrorNotARetry() async throws {
        let server = try ServeProcess(seed: 7)
        defer { server.stop() }
        let judge = OpenAIJudge(baseURL: "http://127.0.0.1:\(server.port)/v1", model: "gpt-judge", retries: 3)
        await #expect {
            _ = try await judge.judge(Self.requests(1))
        } throws: { error in
            "\(error)".contains("the judge server said 404") && "\(error)".contains("gpt-judge")
        }
        #expect(Self.completions(server.stop().log) == 1)
    }

    @Test func aServerThatIsNotThereFailsAfterItsRetries() async throws {
        // A port nothing listens on: connection refused, retried with backoff, then an error naming the server.
        let judge = OpenAIJudge(baseURL: "http://127.0.0.1:9/v1", model: "m", retries: 1, backoff: 0.05)
        await #expect {
            _ = try await judge.judge(Self.requests(1))
        } throws: { error in
            "\(error)".contains("failed 2 times")
        }
    }
}
