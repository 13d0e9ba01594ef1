import Foundation
import HarrowCore
import Testing
@testable import Sweep

/// The Gaussian process, W&B's unit-cube mapping, Optuna's Parzen estimators and W&B's hyperband rule, against
/// values worked by hand from the reference formulas.
struct GaussianProcessTests {
    @Test func maternIsTheClosedFormAtKnownDistances() {
        #expect(GaussianProcess.matern([0, 0], [0, 0], lengthScale: 1) == 1)
        // r = 0.5, l = 1: (1 + √3/2) e^(−√3/2)
        let k = GaussianProcess.matern([0.2], [0.7], lengthScale: 1)
        #expect(abs(k - (1 + 3.0.squareRoot() / 2) * exp(-3.0.squareRoot() / 2)) < 1e-15)
        // The distance is Euclidean: (3, 4) apart is 5; l = 5 makes it 1.
        #expect(abs(GaussianProcess.matern([0, 0], [3, 4], lengthScale: 5) - (1 + 3.0.squareRoot()) * exp(-3.0.squareRoot())) < 1e-15)
    }

    /// Two points: K = [[1, k], [k, 1]] (plus the nugget), so the posterior has a closed form.
    @Test func twoPointPosteriorMatchesTheClosedForm() throws {
        let x: [[Double]] = [[0.0], [1.0]], y = [1.0, -1.0], l = 0.5
        let gp = try #require(GaussianProcess(points: x, values: y, lengthScale: l, noise: 0))
        let k = GaussianProcess.matern([0], [1], lengthScale: l)
        // K⁻¹ y = (1 / (1 − k²)) [[1, −k], [−k, 1]] y = [1, −1] / (1 − k)
        let at = [0.25]
        let k0 = GaussianProcess.matern(at, [0], lengthScale: l), k1 = GaussianProcess.matern(at, [1], lengthScale: l)
        let mean = (k0 - k1) / (1 - k)
        let variance = 1 - (k0 * k0 - 2 * k * k0 * k1 + k1 * k1) / (1 - k * k)
        let p = gp.predict(at)
        #expect(abs(p.mean - mean) < 1e-12)
        #expect(abs(p.std - variance.squareRoot()) < 1e-12)
        // At a training point the mean is its value and the spread vanishes.
        #expect(abs(gp.predict([0]).mean - 1) < 1e-9)
        #expect(gp.predict([0]).std < 1e-6)
        // log p(y) = −½ yᵀK⁻¹y − ½ log|K| − log 2π
        let lml = -0.5 * (2 / (1 - k)) - 0.5 * log(1 - k * k) - log(2 * Double.pi)
        #expect(abs(gp.logMarginalLikelihood - lml) < 1e-12)
    }

    @Test func theFittedLengthScaleMaximisesTheLikelihood() throws {
        let x: [[Double]] = [[0.1], [0.3], [0.5], [0.7], [0.9]]
        let y = x.map { sin(6 * $0[0]) }
        let fit = try #require(GaussianProcess.fit(points: x, values: y))
        for l in [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5] {
            let other = try #require(GaussianProcess(points: x, values: y, lengthScale: l))
            #expect(fit.logMarginalLikelihood >= other.logMarginalLikelihood - 1e-9, "l = \(l) fits better than \(fit.lengthScale)")
        }
        #expect(fit.lengthScale > 1e-5 && fit.lengthScale < 1e5)
    }

    /// The same fit by scikit-learn 1.9.1: `GaussianProcessRegressor(kernel=Matern(nu=1.5), n_restarts_optimizer=2,
    /// alpha=1e-7, random_state=2)` on targets standardised as W&B does; its length scale, log marginal likelihood and
    /// predictions, printed to 17 digits.
    @Test func matchesScikitLearn() throws {
        let x: [[Double]] = [[0.1, 0.2], [0.4, 0.9], [0.5, 0.5], [0.8, 0.3], [0.95, 0.7], [0.3, 0.6]]
        let y = [1.2, 0.9, 0.7, 1.1, 1.4, 0.8]
        let fit = try #require(NormalizedGP(x, y))
        #expect(abs(fit.gp.lengthScale - 0.18975224373390767) < 1e-5)
        #expect(abs(fit.gp.logMarginalLikelihood - -8.229313471320475) < 1e-8)
        for (point, mean, std) in [
            ([0.45, 0.55], -1.2699510444782915, 0.43315721957512904), ([0.0, 1.0], -0.06724196171720169, 0.9931462374962555)
        ] {
            let p = fit.gp.predict(point)
            #expect(abs(p.mean - mean) < 1e-5, "mean at \(point)")
            #expect(abs(p.std - std) < 1e-5, "std at \(point)")
        }
    }

    @Test func choleskyRefusesWhatIsNotPositiveDefinite() {
        #expect(GaussianProcess.cholesky([1, 2, 2, 1], 2) == nil)
        let l = GaussianProcess.cholesky([4, 2, 2, 3], 2)!
        #expect(l == [2, 0, 1, 2.0.squareRoot()])
    }

    @Test func normalQuantileInvertsTheDistributionFunction() {
        for p in [1e-10, 0.001, 0.02, 0.3, 0.5, 0.77, 0.98, 0.999999] {
            #expect(abs(Normal.cdf(Normal.quantile(p)) - p) < 1e-12 * max(1, 1 / p))
        }
        #expect(abs(Normal.quantile(0.975) - 1.959963984540054) < 1e-12)
    }
}

struct SearchSpaceTests {
    func experiment(_ method: String = "bayes", _ extra: String = "") throws -> Experiment {
        try Experiment.parse(
            yaml: """
                method: \(method)
                metric: {name: val/loss, goal: minimize}
                count: 30
                parameters:
                  base_model: {values: [base, chat, instruct]}
                  lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
                  lora_r: {distribution: int_uniform, min: 4, max: 8}
                  warmup_ratio: {distribution: uniform, min: 0.0, max: 0.2}
                  lora_alpha: {expr: "2 * lora_r"}
                  seed: {value: 1}
                \(extra)
                """, file: "exp.yaml")
    }

    /// params.py: categorical cdf(i) = (i + 1)/n (scipy randint); int_uniform cdf(x) = (x − min + 1)/(max − min + 1).
    @Test func distributionFunctionsFollowWandb() throws {
        let s = SearchSpace(try experiment())
        #expect(s.dimensions.map(\.name) == ["base_model", "lora_r", "lr", "warmup_ratio"])
        let cat = s.dimensions[0].distribution
        #expect(SearchSpace.cdf(cat, .string("base")) == 1.0 / 3)
        #expect(SearchSpace.cdf(cat, .string("instruct")) == 1)
        #expect(SearchSpace.cdf(s.dimensions[1].distribution, .int(4)) == 0.2)
        #expect(SearchSpace.cdf(s.dimensions[1].distribution, .int(8)) == 1)
        #expect(abs(SearchSpace.cdf(s.dimensions[2].distribution, .double(1e-3))! - 2.0 / 3) < 1e-12)
        // ppf: u in (k/n, (k+1)/n] is choice k.
        func value(_ c: Distribution.Choice) -> ParamValue? { if case .value(let v) = c { v } else { nil } }
        #expect(value(SearchSpace.ppf(cat, 0.34)) == .string("chat"))
        #expect(value(SearchSpace.ppf(cat, 1.0 / 3)) == .string("base"))
        #expect(value(SearchSpace.ppf(cat, 0)) == .string("base"))
        #expect(value(SearchSpace.ppf(s.dimensions[1].distribution, 0.21)) == .int(5))
        #expect(value(SearchSpace.ppf(s.dimensions[1].distribution, 1)) == .int(8))
        let lr = value(SearchSpace.ppf(s.dimensions[2].distribution, 1.0 / 3))!.number!
        #expect(abs(lr - 1e-4) < 1e-15)
    }

    @Test func aPointBecomesATrialWithDerivedParametersAndBack() throws {
        let s = SearchSpace(try experiment())
        let t = try #require(try s.trial(at: [0.5, 0.5, 0.5, 0.5]))
        #expect(t["base_model"] == .string("chat"))
        #expect(t["lora_r"] == .int(6))
        #expect(t["lora_alpha"] == .int(12))
        #expect(t["seed"] == .int(1))
        let x = try #require(s.point(of: t))
        #expect(x[0] == 2.0 / 3 && x[1] == 0.6)
        #expect(abs(x[2] - 0.5) < 1e-12 && abs(x[3] - 0.5) < 1e-12)
    }

    @Test func proposalsAreReproducibleAndNeverRepeatATrial() throws {
        let e = try experiment()
        var observations: [Observation] = []
        var seen = Set<String>()
        for n in 1...12 {
            let p = try #require(try Search.propose(e, number: n, observations: observations))
            let again = try #require(try Search.propose(e, number: n, observations: observations))
            #expect(p.trial.key == again.trial.key, "proposal \(n) differs between two calls")
            #expect(seen.insert(p.trial.key).inserted, "proposal \(n) repeats a trial")
            #expect(p.explanation.number == n)
            // Proposal n sees n − 1 finished results: random until BayesSampler.minimumSamples of them, the GP after.
            #expect(p.explanation.basis == (n - 1 < BayesSampler.minimumSamples ? "random" : "gp"), "proposal \(n)")
            #expect(p.explanation.finished == n - 1)
            let lr = p.trial["lr"]!.number!
            let v = pow(log10(lr) + 3, 2) + (p.trial["base_model"] == .string("chat") ? 0 : 0.5)
            observations.append(Observation(trial: p.trial, state: .finished, best: v, worst: v))
        }
        // A different seed searches differently.
        var other = e
        other.seed = 7
        let first = try Search.propose(e, number: 1, observations: []), otherFirst = try Search.propose(other, number: 1, observations: [])
        #expect(first?.trial.key != otherFirst?.trial.key)
    }

    @Test func theGPMovesTowardsTheBestRegion() throws {
        let e = try Experiment.parse(
            yaml: """
                method: bayes
                metric: {name: loss, goal: maximize}
                parameters:
                  x: {distribution: uniform, min: 0.0, max: 1.0}
                """, file: "exp.yaml")
        var observations: [Observation] = []
        for x in [0.05, 0.35, 0.5, 0.95] {
            let t = try #require(try SearchSpace(e).trial(at: [x]))
            let v = -pow(x - 0.3, 2)
            observations.append(Observation(trial: t, state: .finished, best: v, worst: v))
        }
        let p = try #require(try Search.propose(e, number: 5, observations: observations))
        #expect(p.explanation.basis == "gp")
        #expect(abs(p.trial["x"]!.number! - 0.3) < 0.15, "proposed x = \(p.trial["x"]!)")
        // Predicted values are in the metric's own units, not negated.
        #expect(p.explanation.bayes!.prediction!.predicted <= 0.0 + 0.05)
        #expect(p.explanation.incumbent == observations.compactMap(\.best).max())
    }

    /// `impute: worst`: a failed run counts as the worst value of any ended run; a running one enters as predicted.
    @Test func failedAndRunningTrialsAreCountedAsWandbDoes() throws {
        let e = try experiment()
        let s = SearchSpace(e)
        func t(_ x: Double) throws -> Trial { try #require(try s.trial(at: [x, x, x, x])) }
        let observations = [
            Observation(trial: try t(0.1), state: .finished, best: 0.9, worst: 1.4),
            Observation(trial: try t(0.5), state: .finished, best: 0.7, worst: 2.5),
            Observation(trial: try t(0.7), state: .failed),
            Observation(trial: try t(0.9), state: .pending)
        ]
        let p = try #require(try Search.propose(e, number: 5, observations: observations))
        #expect(p.explanation.finished == 2 && p.explanation.failed == 1 && p.explanation.running == 1)
        #expect(p.explanation.incumbent == 0.7)
        #expect(!observations.map(\.trial.key).contains(p.trial.key))
    }

    /// A finished run that never logged the metric is not a result: W&B would enter 0 (or the worst value) for it,
    /// and the search would then stand on a number nobody measured.
    @Test func aMissingValueIsNotAResult() throws {
        let e = try experiment()
        let s = SearchSpace(e)
        func t(_ x: Double) throws -> Trial { try #require(try s.trial(at: [x, x, x, x])) }
        let none = [
            Observation(trial: try t(0.1), state: .finished), Observation(trial: try t(0.3), state: .finished),
            Observation(trial: try t(0.6), state: .failed)
        ]
        let p = try #require(try Search.propose(e, number: 4, observations: none))
        #expect(p.explanation.incumbent == nil && p.explanation.basis == "random")
        #expect(p.explanation.finished == 0 && p.explanation.unmeasured == 2 && p.explanation.failed == 1)
        #expect(!p.explanation.summary.contains("best so far") && p.explanation.summary.contains("2 without the metric"))
        // Beside measured runs, the unmeasured ones still stay out of the model.
        let mixed =
            none + [
                Observation(trial: try t(0.8), state: .finished, best: 0.7, worst: 1.0),
                Observation(trial: try t(0.9), state: .finished, best: 0.5, worst: 0.9)
            ]
        let q = try #require(try Search.propose(e, number: 6, observations: mixed))
        #expect(q.explanation.finished == 2 && q.explanation.unmeasured == 2 && q.explanation.incumbent == 0.5)
        // An explanation stored before the count existed still reads.
        #expect(
            Explanation(json: #"{"basis":"gp","candidates":1000,"failed":0,"finished":3,"method":"bayes","number":4,"running":0}"#) != nil)
    }

    @Test func tpeSamplesAtRandomUntilTenResultsThenUsesItsDensities() throws {
        let e = try experiment("tpe")
        var observations: [Observation] = []
        for n in 1...14 {
            let p = try #require(try Search.propose(e, number: n, observations: observations))
            #expect(p.explanation.basis == (n <= TPESampler.startupTrials ? "random" : "tpe"))
            if n > TPESampler.startupTrials {
                #expect(p.explanation.tpe?.split?.good == TPESampler.gamma(n - 1))
                #expect(p.explanation.tpe?.logDensityRatio != nil)
            }
            let v = p.trial["warmup_ratio"]!.number!
            observations.append(Observation(trial: p.trial, state: .finished, best: v, worst: v))
        }
    }
}

/// The stored form of an explanation: what the store keeps as JSON text and `harrow show` prints must read back and
/// write again byte for byte, with the summaries each shape has always had.
struct ExplanationTests {
    @Test func storedExplanationsReadAndWriteBackUnchanged() {
        let stored: [(json: String, summary: String)] = [
            (
                #"{"basis":"gp","candidates":1000,"expected_improvement":0.08331565468092297,"failed":0,"finished":2,"#
                    + #""improvement_probability":0.15865577666925912,"incumbent":1.205764317234612,"length_scale":0.042852126867040166,"#
                    + #""method":"bayes","number":3,"predicted":2.5224670959993376,"predicted_std":1.3167043065824633,"running":0}"#,
                "bayes #3: expected improvement 0.08332 at predicted 2.522 ± 1.317 (best so far 1.206; 2 finished; 1000 candidates)"
            ),
            (
                #"{"basis":"gp","candidates":1000,"failed":0,"finished":3,"method":"bayes","number":4,"running":0}"#,
                "bayes #4: expected improvement ? (3 finished; 1000 candidates)"
            ),
            (
                #"{"basis":"random (bad fit)","candidates":1000,"expected_improvement":0.5,"failed":0,"finished":3,"#
                    + #""improvement_probability":0.25,"incumbent":"inf","length_scale":100000,"method":"bayes","number":4,"predicted":"nan","#
                    + #""predicted_std":0.1,"running":2,"unmeasured":1}"#,
                "bayes #4: random (bad fit) (best so far inf; 3 finished, 2 running, 1 without the metric; 1000 candidates)"
            ),
            (
                #"{"basis":"random","candidates":0,"failed":0,"finished":1,"method":"bayes","number":2,"running":0}"#,
                "bayes #2: random draw (fewer than 2 results) (1 finished)"
            ),
            (
                #"{"bad":9,"basis":"tpe","candidates":24,"failed":1,"finished":10,"good":1,"incumbent":0.5,"log_density_ratio":-0.25,"#
                    + #""method":"tpe","number":12,"running":0}"#,
                "tpe #12: log l/g -0.25 (good 1, bad 9) (best so far 0.5; 10 finished, 1 failed; 24 candidates)"
            ),
            (
                #"{"bad":9,"basis":"random","candidates":24,"failed":1,"finished":10,"good":1,"incumbent":0.5,"method":"tpe","number":12,"#
                    + #""running":0}"#,
                "tpe #12: random draw (fewer than 10 results) (best so far 0.5; 10 finished, 1 failed)"
            ),
            (
                #"{"basis":"random draw","candidates":0,"failed":0,"finished":3,"method":"random","number":4,"running":1}"#,
                "random #4: random draw (3 finished, 1 running)"
            )
        ]
        for (json, summary) in stored {
            let e = Explanation(json: json)
            #expect(e?.json == json)
            #expect(e?.summary == summary)
        }
        #expect(Explanation(json: #"{"basis":"x","candidates":0,"failed":0,"finished":0,"method":"hill","number":1,"running":0}"#) == nil)
    }

    /// A grid proposes its planned points in order, skipping those the sweep has, and ends with its plan.
    @Test func aGridProposesItsPlannedPointsInOrder() throws {
        let e = try Experiment.parse(yaml: "method: grid\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [x, y]}\n", file: "exp.yaml")
        let planned = try Planner.plan(e).trials
        var observations = [Observation(trial: planned[1], state: .finished)]
        var proposed: [String] = []
        while let p = try Search.propose(e, number: proposed.count + 1, observations: observations) {
            #expect(p.explanation.method == "grid")
            proposed.append(p.trial.key)
            observations.append(Observation(trial: p.trial, state: .pending))
        }
        #expect(proposed == [planned[0], planned[2], planned[3]].map(\.key))
        let last = try #require(try Search.propose(e, number: 3, observations: Array(observations.prefix(3))))
        #expect(last.explanation.summary == "grid #3: point 4 of 4 (1 finished, 2 running)")
    }
}

/// Optuna's Parzen estimator (optuna@1d8ce7b `parzen_estimator.py`): the worked examples of its own behaviour.
struct TPETests {
    func domain(_ d: Distribution) -> TPESampler.Domain { TPESampler.Domain(SearchSpace.Dimension(slot: 0, name: "x", distribution: d)) }

    @Test func gammaAndWeightsAreOptunasDefaults() {
        #expect([0, 1, 10, 11, 100, 250, 1000].map(TPESampler.gamma) == [0, 1, 1, 2, 10, 25, 25])
        #expect(TPESampler.weights(3) == [1, 1, 1])
        let w = TPESampler.weights(30)
        #expect(w.count == 30)
        // numpy.linspace(1/30, 1, 5) then 25 ones.
        for (a, b) in zip(w.prefix(5), [1.0 / 30, 0.275, 0.516_666_666_666_666_7, 0.758_333_333_333_333_3, 1]) {
            #expect(abs(a - b) < 1e-12)
        }
        #expect(w.suffix(25).allSatisfy { $0 == 1 })
    }

    /// Float on [0, 10], observations 2, 5, 9: sigmas 3, 4, 4 (neighbour gaps, inner gap at the ends, clipped to
    /// ≥ 10/5), prior at 5 with sigma 10, equal weights.
    @Test func numericalKernelsUseNeighbourGapsAndTheMagicClip() {
        let p = TPESampler.Parzen(domain(.uniform(min: 0, max: 10)), [2, 5, 9])
        #expect(p.mus == [2, 5, 9, 5])
        #expect(p.sigmas == [3, 4, 4, 10])
        #expect(p.weights == [0.25, 0.25, 0.25, 0.25])
        // An integer on [1, 10] with one observation at 3: the range widens to [0.5, 10.5]; sigma max(2.5, 7.5).
        let q = TPESampler.Parzen(domain(.intUniform(min: 1, max: 10)), [3])
        #expect(q.mus == [3, 5.5])
        #expect(q.sigmas == [7.5, 10])
    }

    /// Categorical a, b, c with observations a, a, c: each kernel (ε + [c = observed]) / (1 + 3ε), ε = 1/4.
    @Test func categoricalKernelsFollowOptuna() {
        let p = TPESampler.Parzen(domain(.categorical([.value(.string("a")), .value(.string("b")), .value(.string("c"))])), [0, 0, 2])
        let hi = 1.25 / 1.75, lo = 0.25 / 1.75
        #expect(p.rows.count == 4)
        for (row, want) in zip(p.rows, [[hi, lo, lo], [hi, lo, lo], [lo, lo, hi], [1.0 / 3, 1.0 / 3, 1.0 / 3]]) {
            #expect(row.count == 3)
            for (a, b) in zip(row, want) { #expect(abs(a - b) < 1e-12) }
        }
        // The mixture's density of a: (2 × 5/7 + 1/7 + 1/3) / 4.
        let density = (2 * hi + lo + 1.0 / 3) / 4
        #expect(abs(p.logPDF(0) - log(density)) < 1e-12)
    }

    @Test func aTruncatedKernelIntegratesToOne() {
        let p = TPESampler.Parzen(domain(.uniform(min: 0, max: 1)), [0.2, 0.25, 0.9])
        var total = 0.0
        let n = 20_000
        for i in 0..<n { total += exp(p.logPDF((Double(i) + 0.5) / Double(n))) / Double(n) }
        #expect(abs(total - 1) < 1e-6)
        // Stepped values: the cell masses sum to one.
        let q = TPESampler.Parzen(domain(.intUniform(min: 1, max: 6)), [2, 2, 5])
        let masses: [Double] = (1...6).map { i in exp(q.logPDF(Double(i))) }
        #expect(abs(masses.reduce(0, +) - 1) < 1e-12)
    }
}

/// W&B's hyperband rule (wandb/sweeps@b1dfc5f `hyperband_stopping.py`).
struct HyperbandTests {
    @Test func bandsFollowWandb() {
        #expect(Hyperband(.init(maxIter: 27, s: 2, eta: 3))!.bands == [3, 9])
        #expect(Hyperband(.init(maxIter: 10, s: 2, eta: 3))!.bands == [1, 3])
        #expect(Hyperband(.init(maxIter: 5, s: 2, eta: 2))!.bands == [1, 2])
        #expect(Array(Hyperband(.init(minIter: 3, eta: 3))!.bands.prefix(4)) == [3, 9, 27, 81])
        #expect(Array(Hyperband(.init(minIter: 2, eta: 1.5))!.bands.prefix(5)) == [2, 3, 4, 6, 10])
    }

    /// The docstring example of `hyperband_stop_runs`: max_iter 5, eta 2, s 2 (bands 1, 2); at band 2 the values
    /// are 9, 10, 8, 7, 6, the threshold sorted[⌊5/2⌋] = 8, so only b (10) stops and c (8, a tie) survives.
    @Test func wandbsDocstringExample() {
        let rule = Hyperband(.init(maxIter: 5, s: 2, eta: 2))!
        let a: [Double] = [10, 9], b: [Double] = [10, 10], c: [Double] = [10, 8, 8], d: [Double] = [10, 7, 7], e: [Double] = [10, 6, 6]
        let all = [a, b, c, d, e]
        #expect(rule.thresholds(all) == [10, 8])
        #expect(rule.decide(b, all: all) == Hyperband.Decision(band: 2, value: 10, threshold: 8, reached: 5))
        #expect(rule.decide(c, all: all) == nil)
        #expect(rule.decide(d, all: all) == nil)
    }

    /// strict compares the value at the band; otherwise the best so far, which lets a trial that was once good go on.
    @Test func strictComparesTheValueAtTheBand() {
        let all: [[Double]] = [[5, 1], [5, 2], [5, 3]]
        let mine: [Double] = [0.5, 4]
        #expect(Hyperband(.init(minIter: 2, eta: 3, strict: true))!.decide(mine, all: all + [mine])?.value == 4)
        #expect(Hyperband(.init(minIter: 2, eta: 3, strict: false))!.decide(mine, all: all + [mine]) == nil)
        // Before the first band nothing is judged.
        #expect(Hyperband(.init(minIter: 3, eta: 3))!.decide(mine, all: all) == nil)
    }
}

struct StoredTrialTests {
    /// A resumed adaptive sweep rebuilds its trials from the stored parameters: every float must come back exactly,
    /// or the trial's key (and the trainer's value) would change.
    @Test func trialsRoundTripThroughTheirStoredJSON() throws {
        let e = try Experiment.parse(
            yaml: """
                method: random
                count: 300
                seed: 5
                parameters:
                  lr: {distribution: log_uniform_values, min: 1.0e-6, max: 1.0e-2}
                  w: {distribution: uniform, min: 0.0, max: 0.3}
                  r: {distribution: int_uniform, min: 1, max: 64}
                  m: {values: [base, chat]}
                  targets: {value: [q_proj, 0.1234567890123456789]}
                """, file: "exp.yaml")
        let trials = try Planner.plan(e).trials
        #expect(trials.count == 300)
        for trial in trials {
            let back = Trial(e, parameters: ParamValue.object(fromJSON: trial.parametersJSON))
            #expect(back.key == trial.key, "\(trial.parametersJSON) came back as \(back.parametersJSON)")
        }
    }
}
