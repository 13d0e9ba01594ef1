import Foundation
import HarrowCore
import Testing

@testable import Tracking

/// A judged evaluation in the store: its values under the names gates read, its replies as paired outcomes, and the
/// judge cache.
struct JudgedStoreTests {
    static let rubric = [
        StoredEval.RubricDimension(name: "helpful", low: 1, high: 5, threshold: 4),
        StoredEval.RubricDimension(name: "harmless", low: 1, high: 5, threshold: 4)
    ]

    /// 40 replies: `helpful` scores by index, `harmless` 1 for the first `harmful` of them; usable when both pass.
    static func judged(harmful: Int, helpfulFrom: Int) -> StoredEval {
        let items = (0..<40).map { i -> StoredEval.Item in
            let scores: [String: Double] = ["helpful": i >= helpfulFrom ? 5 : 2, "harmless": i < harmful ? 1 : 5]
            return StoredEval.Item(
                id: "j\(i)", dimension: "usable", taskType: i < 20 ? "qa/dose" : "safety/refusal",
                correct: scores.values.allSatisfy { $0 >= 4 }, correctNorm: false, chosen: nil, logprobs: nil,
                text: "reply \(i)", scores: scores, rationale: "because \(i)")
        }
        let usable = Double(items.filter(\.correct).count) / 40
        let passes = Double(items.filter { $0.scores!["harmless"]! >= 4 }.count) / 40
        let groups = [
            StoredEval.Group(dimension: "usable", taskType: "", n: 40, acc: usable, accStderr: 0.07, accNorm: usable, accNormStderr: 0.07),
            StoredEval.Group(dimension: "usable", taskType: "qa", n: 20, acc: 0.5, accStderr: 0.1, accNorm: 0.5, accNormStderr: 0.1),
            StoredEval.Group(
                dimension: "harmless", taskType: "", n: 40, acc: passes, accStderr: 0.05, accNorm: passes, accNormStderr: 0.05,
                mean: 4.2, meanStderr: 0.2)
        ]
        var e = StoredEval(
            evalset: "domain-judged", status: "succeeded", total: usable, totalStderr: 0.07, totalNorm: usable, seconds: 1, error: nil,
            groups: groups, items: items)
        e.rubric = rubric
        e.judge = "reference"
        return e
    }

    @Test func aJudgedSetsValuesAreNamedForGatesAndLeaveTheMainSetAlone() throws {
        let (store, runs) = try storeWithRuns(1)
        let main = StoredEval(
            evalset: "domain-3h", status: "succeeded", total: 0.6, totalStderr: 0.02, totalNorm: 0.6, seconds: 1, error: nil,
            groups: [
                StoredEval.Group(dimension: "harmless", taskType: "", n: 120, acc: 0.9, accStderr: 0.03, accNorm: 0.9, accNormStderr: 0.03)
            ],
            items: [])
        try store.save(Self.judged(harmful: 10, helpfulFrom: 5), run: runs[0].rowID)
        try store.save(main, run: runs[0].rowID)
        let stored = try #require(try store.evals(run: runs[0].rowID, items: true).first { $0.evalset == "domain-judged" })
        #expect(stored.rubric == Self.rubric && stored.judge == "reference")
        #expect(stored.items.first?.scores == ["helpful": 2, "harmless": 1] && stored.items.first?.rationale == "because 0")
        #expect(stored.groups.first { $0.dimension == "harmless" }?.mean == 4.2)
        let values = try store.values(of: runs[0])
        // The judged set is not the main set: `harmless` and `total` stay the choice set's.
        #expect(values["harmless"]?.value == 0.9 && values["total"]?.value == 0.6)
        #expect(values["usable"]?.value == 30.0 / 40)
        #expect(values["harmless/usable"]?.value == 30.0 / 40 && values["harmless/mean"]?.value == 4.2)
        #expect(values["usable/qa"]?.value == 0.5)
    }

    @Test func twoJudgedRunsArePairedReplyByReply() throws {
        let (store, runs) = try storeWithRuns(2)
        // B is more helpful on 5 replies and harmful on 15 more: usable falls by 10 replies of 40.
        try store.save(Self.judged(harmful: 5, helpfulFrom: 10), run: runs[0].rowID)
        try store.save(Self.judged(harmful: 20, helpfulFrom: 5), run: runs[1].rowID)
        let evidence = PairedEvidence.between(try store.outcomes(of: runs[0]), try store.outcomes(of: runs[1])).byName
        let harmless = try #require(evidence["harmless/usable"]), helpful = try #require(evidence["helpful/usable"])
        let usable = try #require(evidence["usable"])
        #expect(harmless.n == 40 && abs(harmless.delta + 15.0 / 40) < 1e-12 && harmless.significant, "\(harmless)")
        #expect(abs(helpful.delta - 5.0 / 40) < 1e-12 && !helpful.significant, "5 discordant replies decide nothing: \(helpful)")
        #expect(abs(usable.delta + 10.0 / 40) < 1e-12 && usable.significant, "\(usable)")
        #expect(evidence["usable/safety/refusal"] != nil && evidence["harmless/usable/qa/dose"] != nil)
    }

    @Test func theJudgeCacheKeepsAJudgementByJudgeAndRequest() throws {
        let store = try temporaryStore()
        #expect(store.cachedJudgement(judge: "reference", request: "{\"reply\":\"a\"}") == nil)
        try store.cacheJudgement(judge: "reference", request: "{\"reply\":\"a\"}", scores: ["helpful": 4], rationale: "ok")
        #expect(store.cachedJudgement(judge: "reference", request: "{\"reply\":\"a\"}")?.scores == ["helpful": 4])
        #expect(store.cachedJudgement(judge: "openai:m@x", request: "{\"reply\":\"a\"}") == nil)
        #expect(store.cachedJudgement(judge: "reference", request: "{\"reply\":\"b\"}") == nil)
    }
}
