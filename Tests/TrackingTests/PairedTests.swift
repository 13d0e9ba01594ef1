import Foundation
import HarrowCore
import Testing
@testable import Tracking

/// Paired tests of two models on the same items, and the store keeping what they need: the starting checkpoint's
/// outcome per item.
@Suite struct PairedTests {
    @Test func mcnemarIsTheExactBinomialTailOfTheDiscordantItems() {
        // 10 items only A got right, 2 only B, 8 both, 5 neither: p = 2 · P(X ≤ 2), X ~ Bin(12, ½) = 2 · 79/4096
        // (scipy.stats.binomtest(2, 12).pvalue = 0.03857421875).
        let a = [Bool](repeating: true, count: 10) + [false, false] + [Bool](repeating: true, count: 8) + [Bool](repeating: false, count: 5)
        let b = [Bool](repeating: false, count: 10) + [true, true] + [Bool](repeating: true, count: 8) + [Bool](repeating: false, count: 5)
        let t = Paired.mcnemar(a, b)
        #expect(t.n == 25 && t.onlyA == 10 && t.onlyB == 2)
        #expect(abs(t.p - 0.03857421875) < 1e-12, "\(t.p)")
        #expect(abs(t.delta - (10.0 / 25 - 18.0 / 25)) < 1e-12)
        #expect(Paired.mcnemar(b, a).p == t.p, "the test is symmetric")
        #expect(Paired.mcnemar(a, a).p == 1, "no discordant item is no evidence")
        #expect(abs(Paired.binomialTwoSided(0, 5) - 0.0625) < 1e-12)
        #expect(Paired.binomialTwoSided(3, 6) == 1, "a tie is capped at 1")
    }

    @Test func bootstrapReadsAShiftAndItsAbsence() {
        let a = (0..<200).map { Double($0 % 7) }
        let shifted = Paired.bootstrap(a, a.map { $0 + 1 })
        #expect(shifted.delta == 1 && shifted.low == 1 && shifted.high == 1)
        #expect(shifted.p == 2.0 / Double(shifted.resamples + 1), "every resample is above zero")
        let same = Paired.bootstrap(a, a)
        #expect(same.delta == 0 && same.p == 1)
        #expect(Paired.bootstrap(a, a.map { $0 + 1 }) == shifted, "seeded: the same data gives the same numbers")
    }

    /// On 0/±1 differences the percentile interval is close to the normal one, mean ± 1.96 · sd/√n.
    @Test func bootstrapIntervalAgreesWithTheNormalApproximation() {
        var rng = SplitMix64(seed: 3)
        let n = 400
        let d = (0..<n).map { _ -> Double in let u = rng.unit(); return u < 0.2 ? -1 : u < 0.5 ? 1 : 0 }
        let r = Paired.bootstrap([Double](repeating: 0, count: n), d)
        let mean = d.reduce(0, +) / Double(n)
        let sd = (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)).squareRoot()
        let half = 1.96 * sd / Double(n).squareRoot()
        #expect(abs(r.delta - mean) < 1e-12)
        #expect(abs(r.low - (mean - half)) < 0.25 * half && abs(r.high - (mean + half)) < 0.25 * half, "\(r) vs \(mean) ± \(half)")
        #expect(r.low < mean && mean < r.high)
    }

    @Test func forgettingIsComparedThroughEachRunsOwnStart() {
        // Run A forgot 20 of 100 items its start knew; run B, from another start, forgot 5.
        func outcomes(_ right: Set<Int>) -> ItemOutcomes {
            ItemOutcomes((0..<100).map { (id: "g\($0)", dimension: "general", correct: right.contains($0)) })
        }
        let startA = outcomes(Set(0..<60)), runA = outcomes(Set(20..<60))
        let startB = outcomes(Set(0..<30)), runB = outcomes(Set(5..<30))
        let e = PairedEvidence.compare(mainA: nil, mainB: nil, generalA: runA, generalB: runB, generalStartA: startA, generalStartB: startB)
        let f = try! #require(e.forgetting)
        #expect(abs(f.delta - 0.15) < 1e-12, "B's forgetting (−0.05) minus A's (−0.20)")
        #expect(f.low > 0 && f.p < 0.01, "\(f)")
        // Against their runs alone, A scores higher (0.40 vs 0.25): the raw scores tell the opposite story.
        #expect(e.dimensions["general"]!.delta < 0)
    }

    @Test func theStoreKeepsTheStartingCheckpointsItems() throws {
        let (store, runs) = try storeWithRuns(1)
        func item(_ id: String, _ dimension: String, _ correct: Bool) -> StoredEval.Item {
            StoredEval.Item(id: id, dimension: dimension, taskType: "qa/x", correct: correct, correctNorm: correct, chosen: nil, logprobs: nil, text: nil)
        }
        let startItems = (0..<30).map { item("h\($0)", "helpful", $0 < 10) }
        try store.saveCheckpointScore("abc123", evalset: "domain-3h", total: 10.0 / 30, items: startItems)
        #expect(try store.checkpointItems("abc123", evalset: "domain-3h").count == 30)
        #expect(try store.checkpointItems("abc123", evalset: "general").isEmpty)
        var e = StoredEval(evalset: "domain-3h", status: "succeeded", total: 25.0 / 30, totalStderr: 0.05, totalNorm: nil, baseline: 10.0 / 30,
                           seconds: 1, error: nil, groups: [], items: (0..<30).map { item("h\($0)", "helpful", $0 < 25) })
        e.baselineCheckpoint = "abc123"
        try store.save(e, run: runs[0].rowID)
        #expect(try store.evals(run: runs[0].rowID).first?.baselineCheckpoint == "abc123")
        let o = try store.outcomes(of: runs[0])
        let evidence = PairedEvidence.start(main: o.main, mainStart: o.mainStart, general: o.general, generalStart: o.generalStart)
        let helpful = try #require(evidence.dimensions["helpful"])
        #expect(helpful.onlyA == 0 && helpful.onlyB == 15 && abs(helpful.delta - 0.5) < 1e-12 && helpful.p < 1e-4, "\(helpful)")
        #expect(o.general == nil && evidence.dimensions["general"] == nil)
    }
}
