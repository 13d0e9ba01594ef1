import Foundation
import Testing
@testable import Evaluation

/// Reference values computed with Python 3.11.7, scikit-learn 1.9.1, statsmodels 0.15.0, numpy 1.26.4 and irrCAC
/// 0.4.4 (pip, in a throwaway venv):
/// - Cohen: `sklearn.metrics.cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights=w)` for w in None, "linear",
///   "quadratic" (printed with "%.17g").
/// - Fleiss: `table, _ = statsmodels.stats.inter_rater.aggregate_raters(np.array(rows))`, then
///   `statsmodels.stats.inter_rater.fleiss_kappa(table, method="fleiss")`, rows being items and columns raters.
/// - Fleiss with unequal counts: `irrCAC.raw.CAC(pd.DataFrame(rows)).fleiss()["est"]["coefficient_value"]`
///   (rounded to 5 digits by irrCAC), missing ratings as NaN.
@Suite struct AgreementTests {
    /// Scores keyed "i00", "i01", … so that id order is list order.
    static func keyed(_ scores: [Int]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: scores.enumerated().map { (String(format: "i%02d", $0), $1) })
    }

    static func close(_ x: Double?, _ y: Double, _ tolerance: Double = 1e-12) -> Bool {
        x.map { abs($0 - y) <= tolerance } ?? false
    }

    /// (name, rater A, rater B, [unweighted, linear, quadratic] from scikit-learn)
    static let cohenCases: [(String, [Int], [Int], [Double])] = [
        (
            "ties", [1, 2, 3, 4, 5, 3, 4, 2, 5, 1, 3, 3], [1, 2, 4, 4, 5, 3, 3, 2, 4, 2, 3, 5],
            [0.47368421052631582, 0.64705882352941169, 0.78947368421052633]
        ),
        ("perfect", [1, 2, 3, 4, 5, 5, 4], [1, 2, 3, 4, 5, 5, 4], [1, 1, 1]),
        ("reversed", [1, 2, 3, 4, 5, 1, 2, 4, 5], [5, 4, 3, 2, 1, 5, 4, 2, 1], [-0.125, -0.58823529411764719, -1]),
        ("one rater constant", [4, 4, 4, 4, 4, 4, 4, 4], [3, 4, 5, 4, 4, 2, 4, 5], [0, 0, 0]),
        ("both constant, apart", [5, 5, 5, 5], [4, 4, 4, 4], [0, 0, 0]),
        (
            "central rater", [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], [3, 3, 3, 4, 4, 3, 3, 4, 4, 4],
            [0.125, 0.30769230769230771, 0.47999999999999998]
        ),
        ("off by one", [1, 2, 3, 4, 2, 3, 1, 4], [2, 3, 4, 5, 3, 4, 2, 5], [-0.23076923076923084, 0.33333333333333337, 0.7142857142857143]),
        // Scores 1, 2 and 5 only: scikit-learn without labels= gives 0.125, 0.04545…, −0.02941… (rank distances).
        ("gap in the scores", [1, 2, 5, 5, 2, 1, 5], [2, 2, 5, 1, 1, 5, 5], [0.125, 0.23913043478260865, 0.22727272727272718])
    ]

    @Test(arguments: cohenCases.indices)
    func cohenMatchesScikitLearn(_ index: Int) {
        let (name, a, b, expected) = Self.cohenCases[index]
        for (weighting, value) in zip(Agreement.Weighting.allCases, expected) {
            let k = Agreement.cohen(Self.keyed(a), Self.keyed(b), weighting: weighting)
            #expect(Self.close(k.value, value), "\(name), \(weighting): \(String(describing: k.value)) ≠ \(value)")
            #expect(k.items == a.count && k.undefined == nil)
            // kappa = (observed − expected) / (1 − expected)
            if let o = k.observed, let e = k.expected, e < 1 { #expect(Self.close(k.value, (o - e) / (1 - e))) }
        }
    }

    @Test func cohenIsUndefinedWhenBothRatersGiveOneSameScore() {
        // scikit-learn returns nan here.
        for weighting in Agreement.Weighting.allCases {
            let k = Agreement.cohen(Self.keyed([5, 5, 5, 5, 5, 5]), Self.keyed([5, 5, 5, 5, 5, 5]), weighting: weighting)
            #expect(k.value == nil && k.items == 6 && k.expected == 1 && k.words == nil)
            #expect(k.undefined?.contains("same score (5)") == true)
        }
        let none = Agreement.cohen(["a": 1], ["b": 1])
        #expect(none.value == nil && none.items == 0 && none.undefined == "no item was scored by both raters")
    }

    @Test func cohenCountsOnlyTheItemsBothRated() {
        // The "ties" case, with items each rater alone scored.
        var a = Self.keyed([1, 2, 3, 4, 5, 3, 4, 2, 5, 1, 3, 3]), b = Self.keyed([1, 2, 4, 4, 5, 3, 3, 2, 4, 2, 3, 5])
        a["only-a"] = 1
        b["only-b"] = 5
        let k = Agreement.cohen(a, b, weighting: .quadratic)
        #expect(k.items == 12 && Self.close(k.value, 0.78947368421052633))
    }

    /// (name, rows of ratings per item, statsmodels' value; nil where it gives nan)
    static let fleissCases: [(String, [[Int]], Double?)] = [
        (
            "three raters",
            [[1, 1, 2], [2, 2, 2], [3, 3, 4], [4, 4, 4], [5, 4, 5], [1, 2, 1], [3, 3, 3], [2, 3, 2], [5, 5, 5], [4, 3, 4]],
            0.49438202247190993
        ),
        ("perfect", [[1, 1, 1], [2, 2, 2], [3, 3, 3], [5, 5, 5], [4, 4, 4]], 1),
        ("pairs always disagree", [[1, 5], [5, 1], [2, 4], [4, 2], [1, 3], [3, 1]], -0.28571428571428581),
        ("all the same score", [[4, 4, 4], [4, 4, 4], [4, 4, 4]], nil),
        ("one rater constant", [[4, 1, 1], [4, 2, 2], [4, 4, 4], [4, 5, 5], [4, 3, 2], [4, 5, 4]], 0.09999999999999995),
        (
            "one rater at the extremes",
            [[1, 2, 2, 2], [5, 4, 4, 5], [1, 3, 3, 3], [5, 3, 4, 3], [1, 2, 1, 2], [5, 4, 4, 4], [5, 5, 5, 5], [1, 1, 2, 1]],
            0.34479934479934476
        )
    ]

    static func items(_ rows: [[Int]]) -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: rows.enumerated().map { (String(format: "i%02d", $0), $1) })
    }

    @Test(arguments: fleissCases.indices)
    func fleissMatchesStatsmodels(_ index: Int) {
        let (name, rows, expected) = Self.fleissCases[index]
        let k = Agreement.fleiss(Self.items(rows))
        #expect(k.items == rows.count)
        if let expected {
            #expect(Self.close(k.value, expected), "\(name): \(String(describing: k.value)) ≠ \(expected)")
        } else {
            #expect(k.value == nil && k.undefined?.contains("same score (4)") == true, "\(name)")
        }
    }

    @Test func fleissWithUnequalRatingCountsMatchesIrrCAC() {
        // Gwet (2014)'s 4-rater example as irrCAC's docs give it (irrCAC/raw.py), missing ratings left out. Its unit
        // 12 has a single rating: irrCAC counts it in the chance term (0.76117); here it is left out, which is
        // irrCAC on the other 11 units (0.76248).
        let gwet: [[Int]] = [
            [1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4], [4, 4, 4, 4], [1, 1, 2, 1],
            [2, 2, 2, 2], [5, 5, 5], [1, 1], [3]
        ]
        let k = Agreement.fleiss(Self.items(gwet))
        #expect(k.items == 11 && Self.close(k.value, 0.76248, 5e-6) && Self.close(k.observed, 0.81818, 5e-6))
        let mixed: [[Int]] = [[1, 1], [2, 3, 2], [5, 5, 5, 4], [3, 3], [4, 2, 4], [1, 2, 1, 1], [5, 4], [2, 2, 2]]
        let m = Agreement.fleiss(Self.items(mixed))
        #expect(m.items == 8 && Self.close(m.value, 0.47224, 5e-6) && Self.close(m.expected, 0.2105, 5e-5))
        #expect(Agreement.fleiss(["a": [3], "b": [4]]).undefined == "no item has two or more ratings")
    }

    @Test func fleissOfTwoRatersIsScottsPiNotCohensKappa() {
        // Two raters with different habits: Fleiss pools their margins (Scott's pi), Cohen keeps them apart.
        let a = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], b = [3, 3, 3, 4, 4, 3, 3, 4, 4, 4]
        let fleiss = Agreement.fleiss(Self.items(zip(a, b).map { [$0, $1] }))
        let cohen = Agreement.cohen(Self.keyed(a), Self.keyed(b))
        #expect(Self.close(cohen.value, 0.125) && fleiss.value! < cohen.value!)
        #expect(Self.close(fleiss.observed, cohen.observed!))
    }

    @Test func intervalReplaysTheBootstrapInPython() {
        // Replayed in Python: the same SplitMix64 draws of `below(n)` over items in id order, scikit-learn's kappa of
        // each of 2000 resamples (labels=[1..5]), the sorted kappas read at round(0.025·1999) and round(0.975·1999).
        let a = Self.keyed([1, 2, 3, 4, 5, 3, 4, 2, 5, 1, 3, 3]), b = Self.keyed([1, 2, 4, 4, 5, 3, 3, 2, 4, 2, 3, 5])
        let plain = Agreement.cohenInterval(a, b)!
        #expect(Self.close(plain.low, 0.10280373831775691) && Self.close(plain.high, 0.78947368421052633))
        let quadratic = Agreement.cohenInterval(a, b, weighting: .quadratic)!
        #expect(Self.close(quadratic.low, 0.4285714285714286) && Self.close(quadratic.high, 0.95256916996047436))
        #expect(plain.resamples == 2000 && plain.undefined == 0 && plain.level == 0.95)
        // Resamples in which both raters gave only 5s have no kappa: counted, and left out.
        let fives = Agreement.cohenInterval(Self.keyed([5, 5, 5, 5, 5, 5, 5, 4]), Self.keyed([5, 5, 5, 5, 5, 5, 5, 5]))!
        #expect(fives.undefined == 681 && fives.low == 0 && fives.high == 0)
    }

    @Test func intervalIsSeededAndBracketsTheEstimate() {
        let a = Self.keyed([1, 2, 3, 4, 5, 3, 4, 2, 5, 1, 3, 3, 2, 4, 5, 1]),
            b = Self.keyed([1, 3, 4, 4, 5, 3, 3, 2, 4, 2, 3, 5, 2, 5, 5, 2])
        let k = Agreement.cohen(a, b, weighting: .linear).value!
        let first = Agreement.cohenInterval(a, b, weighting: .linear, seed: 7)!
        #expect(Agreement.cohenInterval(a, b, weighting: .linear, seed: 7) == first)
        #expect(Agreement.cohenInterval(a, b, weighting: .linear, seed: 8) != first)
        #expect(first.low < k && k < first.high)
        let narrower = Agreement.cohenInterval(a, b, weighting: .linear, level: 0.5, seed: 7)!
        #expect(first.low <= narrower.low && narrower.high <= first.high)
        // Perfect agreement stays perfect in every resample; an undefined kappa has no interval.
        let perfect = Agreement.cohenInterval(Self.keyed([1, 2, 3, 4]), Self.keyed([1, 2, 3, 4]))!
        #expect(perfect.low == 1 && perfect.high == 1)
        #expect(Agreement.cohenInterval(Self.keyed([3, 3, 3]), Self.keyed([3, 3, 3])) == nil)
        #expect(Agreement.cohenInterval(Self.keyed([3]), Self.keyed([4])) == nil)
    }

    @Test func landisAndKochWords() {
        let words = [-0.1, 0, 0.2, 0.21, 0.4, 0.5, 0.6, 0.75, 0.8, 0.81, 1].map(Agreement.landisKoch)
        #expect(
            words == [
                "poor", "slight", "slight", "fair", "fair", "moderate", "moderate", "substantial", "substantial", "almost perfect",
                "almost perfect"
            ])
        #expect(Agreement.cohen(Self.keyed([1, 2, 3]), Self.keyed([1, 2, 3])).words == "almost perfect")
    }
}
