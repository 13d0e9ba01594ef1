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

    /// Worked cases (onlyA, onlyB, n): p from scipy 1.17.1 `binomtest(min(b, c), b + c).pvalue` (statsmodels'
    /// `mcnemar(table, exact=True)` is the same test); the 95% interval from Agresti and Min's formula and the items
    /// for 80% power from Connor's, both computed independently in Python (`scipy.stats.norm.ppf` for the quantiles).
    static let worked: [(onlyA: Int, onlyB: Int, n: Int, p: Double, low: Double, high: Double, items: Int?)] = [
        (10, 2, 25, 0.03857421875, -0.5329663956786128, -0.05962619691397969, 35),
        (0, 0, 40, 1, -0.04666580915571557, 0.04666580915571557, nil),  // every item agrees
        (3, 3, 30, 1, -0.1620492900542571, 0.1620492900542571, nil),  // a tie
        (0, 6, 20, 0.03125, 0.06640074312344088, 0.4790538023311045, 24),
        (25, 42, 176, 0.04980011429472864, 0.005796837969410079, 0.1852143979856461, 318),
        (59, 126, 500, 9.384602382193314e-07, 0.08151418374843314, 0.1854180871679015, 160)
    ]

    @Test func mcnemarMatchesWorkedValues() {
        for w in Self.worked {
            // Outcomes that make those counts: onlyA items A alone got right, onlyB items B alone, the rest both wrong.
            let a = (0..<w.n).map { $0 < w.onlyA }
            let b = (0..<w.n).map { $0 >= w.onlyA && $0 < w.onlyA + w.onlyB }
            let t = Paired.mcnemar(a, b)
            #expect(t.onlyA == w.onlyA && t.onlyB == w.onlyB && t.n == w.n)
            #expect(abs(t.p - w.p) <= 1e-12 * max(1, w.p), "\(w): p \(t.p)")
            #expect(abs(t.interval.low - w.low) < 1e-12 && abs(t.interval.high - w.high) < 1e-12, "\(w): \(t.interval)")
            #expect(t.itemsFor80Power == w.items, "\(w): \(String(describing: t.itemsFor80Power))")
            #expect(t.summary.decidable == (w.onlyA + w.onlyB >= 6), "six discordant items are the fewest that can reach p < 0.05")
        }
    }

    @Test func normalQuantileMatchesScipy() {
        // scipy.stats.norm.ppf
        for (q, z) in [
            (0.975, 1.959963984540054), (0.8, 0.8416212335729143), (0.01, -2.3263478740408408), (0.999, 3.090232306167813),
            (1e-6, -4.753424308822899), (0.5, 0)
        ] {
            #expect(abs(Paired.normalQuantile(q) - z) < 1e-8 * max(1, abs(z)), "\(q)")
        }
    }

    /// The weighted total compared item by item: each dimension weighs as the manifest says, whatever its size.
    @Test func weightedTotalWeighsDimensionsNotItems() {
        // 10 helpful items (weight 3) all gained; 90 harmless items (weight 1) unchanged: the total gains 3/4 · 1.0.
        let items = (0..<100).map { i in (id: "i\(i)", dimension: i < 10 ? "helpful" : "harmless", taskType: "x/y") }
        let before = ItemOutcomes(
            items.map { ($0.id, $0.dimension, $0.taskType, $0.dimension == "harmless") }, weights: ["helpful": 3, "harmless": 1])
        let after = ItemOutcomes(items.map { ($0.id, $0.dimension, $0.taskType, true) }, weights: ["helpful": 3, "harmless": 1])
        let t = try! #require(Paired.weightedTotal(from: before, to: after))
        #expect(abs(t.delta - 0.75) < 1e-12, "\(t.delta)")
        let e = PairedEvidence.compare(mainA: before, mainB: after, generalA: nil, generalB: nil, generalStartA: nil, generalStartB: nil)
        #expect(e.taskTypes["helpful/x/y"]?.onlyB == 10 && e.byName["total"] != nil && e.byName["helpful"]?.significant == true)
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
        let d = (0..<n).map { _ -> Double in
            let u = rng.unit(); return u < 0.2 ? -1 : u < 0.5 ? 1 : 0
        }
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
            ItemOutcomes((0..<100).map { (id: "g\($0)", dimension: "general", taskType: "general/x", correct: right.contains($0)) })
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
            StoredEval.Item(
                id: id, dimension: dimension, taskType: "qa/x", correct: correct, correctNorm: correct, chosen: nil, logprobs: nil,
                text: nil)
        }
        let startItems = (0..<30).map { item("h\($0)", "helpful", $0 < 10) }
        try store.saveCheckpointScore("abc123", evalset: "domain-3h", total: 10.0 / 30, items: startItems)
        #expect(try store.checkpointItems("abc123", evalset: "domain-3h").count == 30)
        #expect(try store.checkpointItems("abc123", evalset: "general").isEmpty)
        var e = StoredEval(
            evalset: "domain-3h", status: "succeeded", total: 25.0 / 30, totalStderr: 0.05, totalNorm: nil, baseline: 10.0 / 30,
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
