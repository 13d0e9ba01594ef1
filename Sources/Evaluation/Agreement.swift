import Foundation
import HarrowCore

/// Agreement between people (or a judge and people) who score the same replies on a rubric dimension's 1…N scale:
/// how much more often they agree than chance alone would make them. Pure; scores are keyed by item id.
public enum Agreement {
    /// How much a disagreement between scores i and j counts. Unweighted: any difference counts fully. Linear:
    /// |i − j|. Quadratic: (i − j)², so a near miss on a 1–5 scale costs little and 1 against 5 costs most
    /// (Cohen 1968, Psychological Bulletin 70:213–220; scikit-learn's `cohen_kappa_score(weights=…)`).
    public enum Weighting: String, Sendable, CaseIterable {
        case unweighted, linear, quadratic
    }

    /// A kappa and what it rests on. `value` is nil when kappa is undefined, and `undefined` says why: it is never NaN.
    public struct Kappa: Sendable, Equatable {
        public var value: Double?
        public var undefined: String?
        /// Items counted: scored by both raters (Cohen), or with at least two ratings (Fleiss).
        public var items: Int
        /// Observed and chance-expected agreement (with weights: one minus the mean disagreement, the weights scaled
        /// so the lowest and highest score seen are 1 apart), so that kappa = (observed − expected) / (1 − expected);
        /// nil when no item counts.
        public var observed: Double?
        public var expected: Double?

        /// Landis and Koch's word for the value, for display.
        public var words: String? { value.map(Agreement.landisKoch) }
    }

    /// Cohen's kappa between two raters over the items both scored. The categories are every whole number from the
    /// lowest score seen to the highest, so the weights follow the distance between scores: this is
    /// `cohen_kappa_score(a, b, labels=range(lo, hi + 1), weights=…)`, and the same as over a rubric's whole scale,
    /// whose unused ends only add empty rows. (Without `labels`, scikit-learn weighs by rank among the scores seen, so
    /// scores 1, 2 and 5 would sit one apart.)
    public static func cohen(
        _ a: [String: Int], _ b: [String: Int], weighting: Weighting = .unweighted
    ) -> Kappa {
        let pairs = pairs(a, b)
        guard let range = categories(pairs) else {
            return Kappa(value: nil, undefined: "no item was scored by both raters", items: 0, observed: nil, expected: nil)
        }
        let table = PairTable(range: range, weighting: weighting)
        let indexed = pairs.map { ($0.0 - range.lowerBound, $0.1 - range.lowerBound) }
        let (dObserved, dExpected) = table.disagreement(indexed, pick: Array(indexed.indices))
        var kappa = Kappa(value: nil, undefined: nil, items: pairs.count, observed: 1 - dObserved, expected: 1 - dExpected)
        if dExpected > 0 {
            kappa.value = 1 - dObserved / dExpected
        } else {
            let score = pairs[0].0
            kappa.undefined =
                "both raters gave every item the same score (\(score)), so chance agreement is 1 and kappa is undefined"
        }
        return kappa
    }

    /// Fleiss' kappa for several raters per item: `ratings` maps an item to its scores, one a rater; items with fewer
    /// than two are left out. Items may have different numbers of ratings: agreement on an item is the share of its
    /// pairs of ratings that agree, averaged over items, and chance agreement is Σₖ πₖ² with πₖ the mean over items
    /// of the share of the item's ratings in category k. This is the generalisation of Fleiss (1971, Psychological
    /// Bulletin 76:378–382) to missing ratings in Gwet, Handbook of Inter-Rater Reliability, 4th ed. (2014), as
    /// irrCAC computes it (afergadis/irrCAC irrCAC/raw.py `CAC.fleiss`, commit 043c5b1e), except that πₖ here is taken
    /// over the same items as the agreement (those with two or more ratings), not also over items rated once. With
    /// equal counts it is Fleiss' kappa exactly (statsmodels `fleiss_kappa(table, method="fleiss")`).
    public static func fleiss(_ ratings: [String: [Int]]) -> Kappa {
        let items = ratings.keys.sorted().compactMap { ratings[$0] }.filter { $0.count >= 2 }
        guard !items.isEmpty else {
            return Kappa(value: nil, undefined: "no item has two or more ratings", items: 0, observed: nil, expected: nil)
        }
        let categories = Array(Set(items.joined())).sorted()
        let column = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
        var share = [Double](repeating: 0, count: categories.count)
        var agreement = 0.0
        for scores in items {
            var counts = [Int](repeating: 0, count: categories.count)
            for s in scores { counts[column[s]!] += 1 }
            let r = Double(scores.count)
            agreement += counts.reduce(0.0) { $0 + Double($1 * ($1 - 1)) } / (r * (r - 1))
            for (k, c) in counts.enumerated() { share[k] += Double(c) / r }
        }
        let n = Double(items.count)
        let observed = agreement / n
        let expected = share.reduce(0.0) { $0 + ($1 / n) * ($1 / n) }
        var kappa = Kappa(value: nil, undefined: nil, items: items.count, observed: observed, expected: expected)
        if categories.count > 1 {
            kappa.value = (observed - expected) / (1 - expected)
        } else {
            kappa.undefined = "every rating is the same score (\(categories[0])), so chance agreement is 1 and kappa is undefined"
        }
        return kappa
    }

    /// A percentile bootstrap interval.
    public struct Interval: Sendable, Equatable {
        public var low: Double
        public var high: Double
        public var level: Double
        /// Resamples drawn, and how many of them had an undefined kappa (every resampled item scored the same by
        /// both raters) and were left out of the percentiles.
        public var resamples: Int
        public var undefined: Int
    }

    /// An interval for Cohen's kappa: the items both raters scored are resampled with replacement (in the order of
    /// their ids, with HarrowCore's SplitMix64, so the same scores and seed give the same interval everywhere) and
    /// the kappa of each resample read off at the (1 − level)/2 and (1 + level)/2 percentiles, as `Paired.bootstrap`
    /// reads a mean. The categories stay those of the whole sample. Nil when kappa itself is undefined, with fewer
    /// than two items, or when no resample has a kappa.
    public static func cohenInterval(
        _ a: [String: Int], _ b: [String: Int], weighting: Weighting = .unweighted, resamples: Int = 2000, level: Double = 0.95,
        seed: UInt64 = 1
    ) -> Interval? {
        let pairs = pairs(a, b)
        guard pairs.count >= 2, let range = categories(pairs), cohen(a, b, weighting: weighting).value != nil
        else { return nil }
        let table = PairTable(range: range, weighting: weighting)
        let indexed = pairs.map { ($0.0 - range.lowerBound, $0.1 - range.lowerBound) }
        var rng = SplitMix64(seed: seed)
        var kappas: [Double] = []
        kappas.reserveCapacity(resamples)
        var pick = [Int](repeating: 0, count: indexed.count)
        for _ in 0..<resamples {
            for i in pick.indices { pick[i] = rng.below(indexed.count) }
            let (dObserved, dExpected) = table.disagreement(indexed, pick: pick)
            if dExpected > 0 { kappas.append(1 - dObserved / dExpected) }
        }
        guard !kappas.isEmpty else { return nil }
        kappas.sort()
        let tail = (1 - level) / 2, last = Double(kappas.count - 1)
        return Interval(
            low: kappas[Int((tail * last).rounded())], high: kappas[Int(((1 - tail) * last).rounded())], level: level,
            resamples: resamples, undefined: resamples - kappas.count)
    }

    /// Landis and Koch's (1977, Biometrics 33:159–174) words for a kappa: below 0 poor, to 0.20 slight, to 0.40 fair,
    /// to 0.60 moderate, to 0.80 substantial, above almost perfect.
    public static func landisKoch(_ kappa: Double) -> String {
        switch kappa {
        case ..<0: "poor"
        case ...0.20: "slight"
        case ...0.40: "fair"
        case ...0.60: "moderate"
        case ...0.80: "substantial"
        default: "almost perfect"
        }
    }

    /// The scores of the items both rated, in the order of their ids.
    static func pairs(_ a: [String: Int], _ b: [String: Int]) -> [(Int, Int)] {
        a.keys.filter { b[$0] != nil }.sorted().map { (a[$0]!, b[$0]!) }
    }

    static func categories(_ pairs: [(Int, Int)]) -> ClosedRange<Int>? {
        guard let first = pairs.first else { return nil }
        var lo = first.0, hi = first.0
        for (x, y) in pairs {
            lo = min(lo, x, y)
            hi = max(hi, x, y)
        }
        return lo...hi
    }

    /// The disagreement weights of a range of categories, scaled so the largest is 1.
    struct PairTable {
        let k: Int
        let weight: [Double]

        init(range: ClosedRange<Int>, weighting: Weighting) {
            k = range.count
            let span = Double(max(k - 1, 1))
            var w = [Double](repeating: 0, count: k * k)
            for i in 0..<k {
                for j in 0..<k where i != j {
                    let d = Double(abs(i - j)) / span
                    w[i * k + j] =
                        switch weighting {
                        case .unweighted: 1
                        case .linear: d
                        case .quadratic: d * d
                        }
                }
            }
            weight = w
        }

        /// Mean observed disagreement of the picked pairs, and the disagreement expected from their margins.
        func disagreement(_ pairs: [(Int, Int)], pick: [Int]) -> (observed: Double, expected: Double) {
            var rows = [Double](repeating: 0, count: k), columns = [Double](repeating: 0, count: k)
            var observed = 0.0
            for p in pick {
                let (i, j) = pairs[p]
                observed += weight[i * k + j]
                rows[i] += 1
                columns[j] += 1
            }
            var expected = 0.0
            for i in 0..<k where rows[i] > 0 {
                for j in 0..<k where columns[j] > 0 { expected += weight[i * k + j] * rows[i] * columns[j] }
            }
            let n = Double(pick.count)
            return (observed / n, expected / (n * n))
        }
    }
}

/// How far a judge's scores can be trusted on one rubric dimension: agreement among the people who labelled the
/// replies, and between the judge and the people's median score per reply.
public struct JudgeAgreement: Sendable, Equatable {
    public var dimension: String
    public var annotators: Int
    /// Replies with at least one person's score.
    public var items: Int
    /// Among people (replies with two or more scores; nil with fewer than two annotators).
    public var betweenPeople: Agreement.Kappa?
    /// The judge against the people's median, quadratic-weighted (a near miss on an ordinal scale costs little), with
    /// its bootstrap interval; and unweighted (exact agreement).
    public var judgeQuadratic: Agreement.Kappa
    public var judgeInterval: Agreement.Interval?
    public var judgeExact: Agreement.Kappa

    /// `labels`: item → annotator → score, for one dimension; `judge`: item → the judge's score.
    public static func measure(dimension: String, labels: [String: [String: Int]], judge: [String: Int]) -> JudgeAgreement {
        let annotators = Set(labels.values.flatMap(\.keys)).count
        let people = labels.mapValues { Array($0.values) }.filter { !$0.value.isEmpty }
        // The median of the people's scores, the lower middle of an even count (a score on the scale).
        let median = people.mapValues { $0.sorted()[($0.count - 1) / 2] }
        return JudgeAgreement(
            dimension: dimension, annotators: annotators, items: people.count,
            betweenPeople: annotators >= 2 ? Agreement.fleiss(people) : nil,
            judgeQuadratic: Agreement.cohen(median, judge, weighting: .quadratic),
            judgeInterval: Agreement.cohenInterval(median, judge, weighting: .quadratic),
            judgeExact: Agreement.cohen(median, judge, weighting: .unweighted))
    }
}
