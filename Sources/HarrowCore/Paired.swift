import Foundation

/// Paired comparisons of two models scored on the same items. Two models answer the same questions, so their
/// per-item outcomes are paired: a paired test looks only at the items where they differ, which is both more honest
/// and more sensitive than comparing two means with their own standard errors (lm-evaluation-harness PR #3868:
/// an unpaired z-test gave p = 0.080 where McNemar's test gave p = 0.008 on the same data).
public enum Paired {
    /// The level below which a difference is called beyond noise.
    public static let alpha = 0.05

    /// McNemar's exact test on 0/1 outcomes: `onlyA` items only A got right, `onlyB` only B; under "no difference"
    /// each discordant item is a fair coin, so p is the two-sided binomial tail of the smaller count.
    public struct McNemar: Sendable, Equatable {
        public var n: Int
        public var accA: Double
        public var accB: Double
        public var onlyA: Int
        public var onlyB: Int
        public var p: Double
        /// B − A.
        public var delta: Double { accB - accA }
    }

    /// `a` and `b` are the outcomes of the same items in the same order.
    public static func mcnemar(_ a: [Bool], _ b: [Bool]) -> McNemar {
        precondition(a.count == b.count, "paired outcomes must have the same length")
        var onlyA = 0, onlyB = 0, rightA = 0, rightB = 0
        for (x, y) in zip(a, b) {
            if x { rightA += 1 }
            if y { rightB += 1 }
            if x && !y { onlyA += 1 }
            if y && !x { onlyB += 1 }
        }
        let n = max(a.count, 1)
        return McNemar(n: a.count, accA: Double(rightA) / Double(n), accB: Double(rightB) / Double(n), onlyA: onlyA, onlyB: onlyB,
                       p: binomialTwoSided(min(onlyA, onlyB), onlyA + onlyB))
    }

    /// P(X ≤ k or X ≥ n − k) for X ~ Binomial(n, 1/2), at most 1.
    public static func binomialTwoSided(_ k: Int, _ n: Int) -> Double {
        guard n > 0 else { return 1 }
        let logHalfN = Double(n) * log(0.5)
        var tail = 0.0
        for i in 0...min(k, n) {
            tail += exp(lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) + logHalfN)
        }
        return min(1, 2 * tail)
    }

    /// A paired bootstrap of a mean difference: the estimate, its percentile interval and a two-sided p-value.
    public struct Bootstrap: Sendable, Equatable {
        public var n: Int
        /// mean(b − a).
        public var delta: Double
        public var low: Double
        public var high: Double
        public var p: Double
        public var resamples: Int
        public var level: Double
    }

    /// Resamples items with replacement (the same items for both sides, which keeps the pairing) and reads the
    /// spread of mean(b − a). p is twice the share of resampled differences on the far side of zero (with the
    /// usual +1 so it is never 0). Seeded, so the same data always gives the same numbers.
    public static func bootstrap(_ a: [Double], _ b: [Double], weights: [Double]? = nil, resamples: Int = 10_000, level: Double = 0.95,
                                 seed: UInt64 = 1) -> Bootstrap {
        precondition(a.count == b.count, "paired values must have the same length")
        let n = a.count
        let d = zip(a, b).map { $1 - $0 }
        let w = weights ?? [Double](repeating: 1, count: n)
        func mean(_ pick: (Int) -> Int) -> Double {
            var s = 0.0, ws = 0.0
            for i in 0..<n { let j = pick(i); s += w[j] * d[j]; ws += w[j] }
            return ws > 0 ? s / ws : 0
        }
        let delta = mean { $0 }
        guard n > 1 else { return Bootstrap(n: n, delta: delta, low: delta, high: delta, p: 1, resamples: 0, level: level) }
        var rng = SplitMix64(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        var below = 0, above = 0
        for r in 0..<resamples {
            let m = mean { _ in rng.below(n) }
            means[r] = m
            if m <= 0 { below += 1 }
            if m >= 0 { above += 1 }
        }
        means.sort()
        let tail = (1 - level) / 2
        let low = means[Int((tail * Double(resamples - 1)).rounded())], high = means[Int(((1 - tail) * Double(resamples - 1)).rounded())]
        let far = delta >= 0 ? below : above
        let p = min(1, 2 * Double(far + 1) / Double(resamples + 1))
        return Bootstrap(n: n, delta: delta, low: low, high: high, p: p, resamples: resamples, level: level)
    }

    /// "p = 0.003" / "p < 0.001", the way reports print it.
    public static func formatP(_ p: Double) -> String {
        p < 0.001 ? "p < 0.001" : String(format: "p = %.3f", p)
    }
}

/// A model's outcome on each item of one evalset: right or wrong, and the item's dimension.
public struct ItemOutcomes: Sendable, Equatable {
    public var correct: [String: Bool]
    public var dimension: [String: String]

    public init(_ items: [(id: String, dimension: String, correct: Bool)]) {
        correct = Dictionary(items.map { ($0.id, $0.correct) }) { a, _ in a }
        dimension = Dictionary(items.map { ($0.id, $0.dimension) }) { a, _ in a }
    }

    public var isEmpty: Bool { correct.isEmpty }
    /// The items both have, in a fixed order.
    public func shared(with other: ItemOutcomes) -> [String] { correct.keys.filter { other.correct[$0] != nil }.sorted() }
}

extension Paired {
    /// McNemar per dimension over the items both models answered: A is `from`, B is `to`.
    public static func byDimension(from a: ItemOutcomes, to b: ItemOutcomes) -> [String: McNemar] {
        let ids = a.shared(with: b)
        return Dictionary(grouping: ids) { a.dimension[$0] ?? "" }.mapValues { ids in
            mcnemar(ids.map { a.correct[$0]! }, ids.map { b.correct[$0]! })
        }
    }

    /// How much more (or less) one run changed from its starting model than another did, item by item: the paired
    /// bootstrap of (runB − startB) − (runA − startA) over the items all four answered. This is the comparison of
    /// two forgetting values, which differ by more than their runs when the runs start from different models.
    public static func changeDifference(runA: ItemOutcomes, startA: ItemOutcomes, runB: ItemOutcomes, startB: ItemOutcomes,
                                        seed: UInt64 = 1) -> Bootstrap {
        let ids = runA.shared(with: startA).filter { runB.correct[$0] != nil && startB.correct[$0] != nil }
        func change(_ run: ItemOutcomes, _ start: ItemOutcomes, _ id: String) -> Double {
            (run.correct[id]! ? 1 : 0) - (start.correct[id]! ? 1 : 0)
        }
        return bootstrap(ids.map { change(runA, startA, $0) }, ids.map { change(runB, startB, $0) }, seed: seed)
    }
}

/// What a run's evaluation says against another's (or against the model it started from), item by item: McNemar per
/// 3H dimension and on the general set, and the paired bootstrap of the two forgetting values.
public struct PairedEvidence: Sendable, Equatable {
    /// B against A, per dimension of the main evalset plus `general`.
    public var dimensions: [String: Paired.McNemar]
    /// B's forgetting minus A's (each a run's general score minus its starting model's), when both are known.
    public var forgetting: Paired.Bootstrap?

    /// A run against the model it started from.
    public static func start(main: ItemOutcomes?, mainStart: ItemOutcomes?, general: ItemOutcomes?, generalStart: ItemOutcomes?) -> PairedEvidence {
        var dimensions: [String: Paired.McNemar] = [:]
        if let main, let mainStart { dimensions = Paired.byDimension(from: mainStart, to: main) }
        if let general, let generalStart, let g = ItemOutcomes.pooled(Paired.byDimension(from: generalStart, to: general)) {
            dimensions["general"] = g
        }
        return PairedEvidence(dimensions: dimensions, forgetting: nil)
    }

    /// Run B against run A; the forgetting comparison needs both runs' starting models' items.
    public static func compare(mainA: ItemOutcomes?, mainB: ItemOutcomes?, generalA: ItemOutcomes?, generalB: ItemOutcomes?,
                               generalStartA: ItemOutcomes?, generalStartB: ItemOutcomes?) -> PairedEvidence {
        var dimensions: [String: Paired.McNemar] = [:]
        if let mainA, let mainB { dimensions = Paired.byDimension(from: mainA, to: mainB) }
        if let generalA, let generalB, let g = ItemOutcomes.pooled(Paired.byDimension(from: generalA, to: generalB)) {
            dimensions["general"] = g
        }
        var forgetting: Paired.Bootstrap?
        if let generalA, let generalB, let generalStartA, let generalStartB {
            forgetting = Paired.changeDifference(runA: generalA, startA: generalStartA, runB: generalB, startB: generalStartB)
        }
        return PairedEvidence(dimensions: dimensions, forgetting: forgetting)
    }
}

extension ItemOutcomes {
    /// One McNemar over every dimension's items together (the general set has one dimension; this guards against more).
    static func pooled(_ tests: [String: Paired.McNemar]) -> Paired.McNemar? {
        guard !tests.isEmpty else { return nil }
        let n = tests.values.reduce(0) { $0 + $1.n }, onlyA = tests.values.reduce(0) { $0 + $1.onlyA }, onlyB = tests.values.reduce(0) { $0 + $1.onlyB }
        let rightA = tests.values.reduce(0.0) { $0 + $1.accA * Double($1.n) }, rightB = tests.values.reduce(0.0) { $0 + $1.accB * Double($1.n) }
        return Paired.McNemar(n: n, accA: rightA / Double(max(n, 1)), accB: rightB / Double(max(n, 1)), onlyA: onlyA, onlyB: onlyB,
                              p: Paired.binomialTwoSided(min(onlyA, onlyB), onlyA + onlyB))
    }
}
