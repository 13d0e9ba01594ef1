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
        public var significant: Bool { p < Paired.alpha }

        /// 95% interval of B − A: Agresti and Min's adjusted Wald interval for matched proportions (half an item added
        /// to each cell of the 2×2 table; Statistics in Medicine 24:729–740, 2005), which keeps its coverage with few
        /// discordant items where the plain Wald interval does not.
        public var interval: (low: Double, high: Double) {
            let b = Double(onlyA) + 0.5, c = Double(onlyB) + 0.5, n = Double(self.n) + 2
            let d = (c - b) / n, se = ((b + c) - (c - b) * (c - b) / n).squareRoot() / n
            return (d - Paired.z95 * se, d + Paired.z95 * se)
        }

        /// Items a McNemar test would need to call a difference this large beyond noise 80% of the time at this
        /// discordance (Connor, Biometrics 43:207–211, 1987); nil when there is no difference to detect.
        public var itemsFor80Power: Int? {
            guard n > 0, onlyA != onlyB else { return nil }
            let psi = Double(onlyA + onlyB) / Double(n), d = abs(delta)
            let root = Paired.z95 * psi.squareRoot() + Paired.z80 * max(0, psi - d * d).squareRoot()
            return Int((root * root / (d * d)).rounded(.up))
        }
    }

    /// Two-sided 95% and one-sided 80% quantiles of the standard normal.
    public static let z95 = 1.959963984540054, z80 = 0.8416212335729143

    /// Wilson's 95% score interval for a share of `successes` in `n` (Wilson 1927; the interval
    /// statsmodels' `proportion_confint(method="wilson")` gives), which stays inside 0–1 and is honest near them
    /// (a usability rate of 0.98 on 50 replies).
    public static func wilson(successes: Int, n: Int) -> (low: Double, high: Double) {
        guard n > 0 else { return (0, 1) }
        let p = Double(successes) / Double(n), z = z95, n = Double(n)
        let centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        let half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()
        return (max(0, centre - half), min(1, centre + half))
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
        return McNemar(
            n: a.count, accA: Double(rightA) / Double(n), accB: Double(rightB) / Double(n), onlyA: onlyA, onlyB: onlyB,
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
        public var significant: Bool { p < Paired.alpha }

        /// Items a paired test would need to call a difference this large beyond noise 80% of the time, from the
        /// interval's width (normal approximation; the standard error shrinks as 1/√n); nil when there is none.
        public var itemsFor80Power: Int? {
            guard n > 1, delta != 0 else { return nil }
            let se = (high - low) / (2 * Paired.z95)
            guard se > 0 else { return nil }
            let k = (Paired.z95 + Paired.z80) * se / abs(delta)
            return Int((Double(n) * k * k).rounded(.up))
        }
    }

    /// Resamples items with replacement (the same items for both sides, which keeps the pairing) and reads the
    /// spread of mean(b − a). p is twice the share of resampled differences on the far side of zero (with the
    /// usual +1 so it is never 0). Seeded, so the same data always gives the same numbers.
    public static func bootstrap(
        _ a: [Double], _ b: [Double], weights: [Double]? = nil, resamples: Int = 10_000, level: Double = 0.95,
        seed: UInt64 = 1
    ) -> Bootstrap {
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

/// A model's outcome on each item of one evalset: right or wrong, and the item's dimension and task type; with the
/// evalset's weight per dimension for its weighted total (1 where none is given).
public struct ItemOutcomes: Sendable, Equatable {
    public var correct: [String: Bool]
    public var dimension: [String: String]
    public var taskType: [String: String]
    public var weights: [String: Double]

    public init(_ items: [(id: String, dimension: String, taskType: String, correct: Bool)], weights: [String: Double] = [:]) {
        correct = Dictionary(items.map { ($0.id, $0.correct) }) { a, _ in a }
        dimension = Dictionary(items.map { ($0.id, $0.dimension) }) { a, _ in a }
        taskType = Dictionary(items.map { ($0.id, $0.taskType) }) { a, _ in a }
        self.weights = weights
    }

    public var isEmpty: Bool { correct.isEmpty }
    /// The items both have, in a fixed order.
    public func shared(with other: ItemOutcomes) -> [String] { correct.keys.filter { other.correct[$0] != nil }.sorted() }
}

extension Paired {
    /// McNemar per group (dimension, or `dimension/task_type`) over the items both models answered: A is `from`.
    public static func byGroup(from a: ItemOutcomes, to b: ItemOutcomes, _ group: (String) -> String) -> [String: McNemar] {
        let ids = a.shared(with: b)
        return Dictionary(grouping: ids, by: group).mapValues { ids in
            mcnemar(ids.map { a.correct[$0]! }, ids.map { b.correct[$0]! })
        }
    }

    public static func byDimension(from a: ItemOutcomes, to b: ItemOutcomes) -> [String: McNemar] {
        byGroup(from: a, to: b) { a.dimension[$0] ?? "" }
    }

    public static func byTaskType(from a: ItemOutcomes, to b: ItemOutcomes) -> [String: McNemar] {
        byGroup(from: a, to: b) { "\(a.dimension[$0] ?? "")/\(a.taskType[$0] ?? "")" }
    }

    /// The weighted total as the evalset computes it (each dimension's accuracy times its weight), compared by a paired
    /// bootstrap over the items both answered: each item carries its dimension's weight over its dimension's size.
    public static func weightedTotal(from a: ItemOutcomes, to b: ItemOutcomes, seed: UInt64 = 1) -> Bootstrap? {
        let ids = a.shared(with: b)
        guard !ids.isEmpty else { return nil }
        let sizes = Dictionary(grouping: ids) { a.dimension[$0] ?? "" }.mapValues(\.count)
        let weights = ids.map { id -> Double in
            let d = a.dimension[id] ?? ""
            return (a.weights[d] ?? (a.weights.isEmpty ? 1 : 0)) / Double(sizes[d] ?? 1)
        }
        guard weights.contains(where: { $0 > 0 }) else { return nil }
        return bootstrap(ids.map { a.correct[$0]! ? 1 : 0 }, ids.map { b.correct[$0]! ? 1 : 0 }, weights: weights, seed: seed)
    }

    /// How much more (or less) one run changed from its starting model than another did, item by item: the paired
    /// bootstrap of (runB − startB) − (runA − startA) over the items all four answered. This is the comparison of
    /// two forgetting values, which differ by more than their runs when the runs start from different models.
    public static func changeDifference(
        runA: ItemOutcomes, startA: ItemOutcomes, runB: ItemOutcomes, startB: ItemOutcomes,
        seed: UInt64 = 1
    ) -> Bootstrap {
        let ids = runA.shared(with: startA).filter { runB.correct[$0] != nil && startB.correct[$0] != nil }
        func change(_ run: ItemOutcomes, _ start: ItemOutcomes, _ id: String) -> Double {
            (run.correct[id]! ? 1 : 0) - (start.correct[id]! ? 1 : 0)
        }
        return bootstrap(ids.map { change(runA, startA, $0) }, ids.map { change(runB, startB, $0) }, seed: seed)
    }
}

/// What a run's evaluation says against another's (or against the model it started from), item by item: McNemar per
/// 3H dimension, per task type and on the general set, a paired bootstrap of the weighted total, and of the two
/// forgetting values.
public struct PairedEvidence: Sendable, Equatable {
    /// B against A, per dimension of the main evalset plus `general`.
    public var dimensions: [String: Paired.McNemar]
    /// B against A per `dimension/task_type` of the main evalset.
    public var taskTypes: [String: Paired.McNemar] = [:]
    /// B's weighted total of the main evalset against A's.
    public var total: Paired.Bootstrap?
    /// B's forgetting minus A's (each a run's general score minus its starting model's), when both are known.
    public var forgetting: Paired.Bootstrap?
    /// B against A on a judged set: `usable`, `DIMENSION/usable` and each of them per task type (`usable/qa`).
    public var judged: [String: Paired.McNemar] = [:]

    public init(
        dimensions: [String: Paired.McNemar], taskTypes: [String: Paired.McNemar] = [:], total: Paired.Bootstrap? = nil,
        forgetting: Paired.Bootstrap? = nil
    ) {
        self.dimensions = dimensions
        self.taskTypes = taskTypes
        self.total = total
        self.forgetting = forgetting
    }

    /// A run (B) against the model it started from (A): what training gained, and on the general set what it forgot.
    public static func start(main: ItemOutcomes?, mainStart: ItemOutcomes?, general: ItemOutcomes?, generalStart: ItemOutcomes?)
        -> PairedEvidence
    {
        compare(mainA: mainStart, mainB: main, generalA: generalStart, generalB: general, generalStartA: nil, generalStartB: nil)
    }

    /// Run B against run A; the forgetting comparison needs both runs' starting models' items.
    public static func compare(
        mainA: ItemOutcomes?, mainB: ItemOutcomes?, generalA: ItemOutcomes?, generalB: ItemOutcomes?,
        generalStartA: ItemOutcomes?, generalStartB: ItemOutcomes?
    ) -> PairedEvidence {
        var e = PairedEvidence(dimensions: [:])
        if let mainA, let mainB {
            e.dimensions = Paired.byDimension(from: mainA, to: mainB)
            e.taskTypes = Paired.byTaskType(from: mainA, to: mainB)
            e.total = Paired.weightedTotal(from: mainA, to: mainB)
        }
        // Every general item together, whatever dimensions the set names.
        if let generalA, let generalB, let g = Paired.byGroup(from: generalA, to: generalB, { _ in "general" })["general"] {
            e.dimensions["general"] = g
        }
        if let generalA, let generalB, let generalStartA, let generalStartB {
            e.forgetting = Paired.changeDifference(runA: generalA, startA: generalStartA, runB: generalB, startB: generalStartB)
        }
        return e
    }
}

/// One paired comparison as gates, compare and ablation read it, whichever test made it: B − A, its 95% interval and
/// standard error, the p-value of "no difference", the items compared, and the items that would detect a difference
/// this large 80% of the time.
public struct PairedSummary: Sendable, Equatable, Codable {
    public var test: String
    public var n: Int
    public var delta: Double
    public var low: Double
    public var high: Double
    public var p: Double
    public var itemsFor80Power: Int?
    /// Whether any outcome on these items could have been called beyond noise (McNemar needs 6 discordant items in
    /// one direction for p < 0.05); false means the comparison cannot decide anything.
    public var decidable: Bool
    public var significant: Bool { p < Paired.alpha }
    /// The standard error the interval implies.
    public var stderr: Double { (high - low) / (2 * Paired.z95) }
}

extension Paired.McNemar {
    public var summary: PairedSummary {
        let i = interval
        return PairedSummary(
            test: "mcnemar_exact", n: n, delta: delta, low: i.low, high: i.high, p: p, itemsFor80Power: itemsFor80Power,
            decidable: Paired.binomialTwoSided(0, onlyA + onlyB) < Paired.alpha)
    }
}

extension Paired.Bootstrap {
    public var summary: PairedSummary {
        PairedSummary(
            test: "paired_bootstrap", n: n, delta: delta, low: low, high: high, p: p, itemsFor80Power: itemsFor80Power,
            decidable: n >= 10)
    }
}

extension PairedEvidence {
    /// The tests under the value names gates and comparisons use: each dimension, `dimension/task_type`, `general`,
    /// `total` and `forgetting`.
    public var byName: [String: PairedSummary] {
        var out = dimensions.mapValues(\.summary).merging(taskTypes.mapValues(\.summary)) { a, _ in a }
        if let total { out["total"] = total.summary }
        if let forgetting { out["forgetting"] = forgetting.summary }
        for (name, t) in judged { out[name] = t.summary }
        return out
    }

    /// A run against its starting model under the gain names: `gain` (the weighted total) and `gain/DIMENSION`.
    public var gains: [String: PairedSummary] {
        var out: [String: PairedSummary] = [:]
        for (name, t) in dimensions where name != "general" { out["gain/" + name] = t.summary }
        if let total { out["gain"] = total.summary }
        if let usable = judged["usable"] { out["gain/usable"] = usable.summary }
        return out
    }

    /// Adds the judged set's tests: `facets` are outcomes whose dimension is the value name (`usable`,
    /// `helpful/usable`), one per reply and facet.
    public mutating func addJudged(from a: ItemOutcomes?, to b: ItemOutcomes?) {
        guard let a, let b else { return }
        judged = Paired.byDimension(from: a, to: b).merging(Paired.byTaskType(from: a, to: b)) { x, _ in x }
    }
}

extension Paired {
    /// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1)
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01,
            2.506628277459239e+00
        ]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00,
            2.938163982698783e+00
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low { return -normalQuantile(1 - p) }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
