import HarrowCore
import Foundation

/// What an adaptive search knows of one trial of its sweep.
public struct Observation: Sendable {
    public enum State: String, Sendable { case finished, failed, pending }
    public var trial: Trial
    public var state: State
    /// The best and worst logged values of the sweep's metric (by its goal); nil when it logged none.
    public var best: Double?
    public var worst: Double?

    public init(trial: Trial, state: State, best: Double? = nil, worst: Double? = nil) {
        self.trial = trial
        self.state = state
        self.best = best
        self.worst = worst
    }
}

/// Why a trial was proposed: stored with it, printed by `harrow show`.
public struct Explanation: Sendable, Codable, Equatable {
    public var method: String
    /// 1 for the sweep's first proposal.
    public var number: Int
    /// `random` (too few results to model), `gp` (bayes), `tpe`, or `random (bad fit)` when the GP's length scale
    /// sits at a bound and W&B falls back to a random candidate.
    public var basis: String
    /// Results the model saw: finished, failed (imputed as the worst value), still running (entered as predicted).
    public var finished = 0, failed = 0, running = 0
    /// Finished runs that never logged the sweep's metric: not results.
    public var unmeasured: Int?
    public var candidates = 0
    /// The best metric value so far, in the metric's own units.
    public var incumbent: Double?
    // The GP at the proposed point: its prediction (metric units), expected improvement and probability of
    // improvement (standardised units, as W&B reports them), and the fitted length scale.
    public var predicted: Double?
    public var predictedStd: Double?
    public var expectedImprovement: Double?
    public var improvementProbability: Double?
    public var lengthScale: Double?
    // TPE at the proposed point: log l(x) − log g(x) and the sizes of the good and bad groups.
    public var logDensityRatio: Double?
    public var good: Int?
    public var bad: Int?

    public init(method: String, number: Int, basis: String) {
        self.method = method
        self.number = number
        self.basis = basis
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public init?(json: String) {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let e = try? decoder.decode(Explanation.self, from: Data(json.utf8)) else { return nil }
        self = e
    }

    /// One line: "bayes #7: expected improvement 0.41 at predicted 0.812 ± 0.030 (best so far 0.845; 6 finished, 1 running)".
    public var summary: String {
        func g(_ x: Double) -> String { String(format: "%.4g", x) }
        var what: String
        switch basis {
        case "gp":
            what = "expected improvement \(expectedImprovement.map(g) ?? "?")"
            if let p = predicted { what += " at predicted \(g(p))" + (predictedStd.map { " ± \(g($0))" } ?? "") }
        case "tpe":
            what = "log l/g \(logDensityRatio.map(g) ?? "?") (good \(good ?? 0), bad \(bad ?? 0))"
        default:
            what = basis == "random" ? "random draw (fewer than \(method == "tpe" ? TPE.startupTrials : BayesSearch.minimumSamples) results)" : basis
        }
        var context: [String] = []
        if let incumbent { context.append("best so far \(g(incumbent))") }
        context.append("\(finished) finished" + (failed > 0 ? ", \(failed) failed" : "") + (running > 0 ? ", \(running) running" : "")
                       + (unmeasured.map { ", \($0) without the metric" } ?? ""))
        if candidates > 0, basis != "random" { context.append("\(candidates) candidates") }
        return "\(method) #\(number): \(what) (\(context.joined(separator: "; ")))"
    }
}

public struct Proposal: Sendable {
    public var trial: Trial
    public var explanation: Explanation
}

/// Adaptive search: the next trial from the sweep's trials so far. Pure: the same experiment, proposal number and
/// observations give the same proposal, so a resumed sweep continues the search it left.
public enum Search {
    /// The next trial, or nil when the space holds no trial not yet proposed.
    public static func propose(_ experiment: Experiment, number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        let space = SearchSpace(experiment)
        var rng = SplitMix64(seed: experiment.seed).fork(UInt64(number))
        let taken = Set(observations.map(\.trial.key))
        if experiment.method == .random {
            // A random sweep with no bound: W&B's draw, each parameter's ppf at a uniform point (wandb/sweeps@b1dfc5f
            // src/sweeps/params.py, `HyperParameter.sample`), skipping trials the sweep already has, as a planned one does.
            var why = Explanation(method: "random", number: number, basis: "random draw")
            for o in observations {
                switch o.state {
                case .finished: why.finished += 1
                case .failed: why.failed += 1
                case .pending: why.running += 1
                }
            }
            for _ in 0..<10_000 {
                let x = space.dimensions.map { _ in rng.unit() }
                guard let trial = try space.trial(at: x), !taken.contains(trial.key) else { continue }
                return Proposal(trial: trial, explanation: why)
            }
            return nil
        }
        let maximize = experiment.metric?.goal == .maximize
        var ranked: Ranked
        switch experiment.method {
        case .tpe: ranked = TPE.rank(space, observations, maximize: maximize, rng: &rng)
        default: ranked = BayesSearch.rank(space, observations, maximize: maximize, rng: &rng)
        }
        ranked.explanation.method = experiment.method.rawValue
        ranked.explanation.number = number
        // The best candidate that is a new trial: a repeat would stand on the run already there, and `exclude` or
        // `where` may drop a point. Then fresh random points, in case every candidate was taken.
        for (x, detail) in ranked.candidates {
            guard let trial = try space.trial(at: x), !taken.contains(trial.key) else { continue }
            var why = ranked.explanation
            detail(&why)
            return Proposal(trial: trial, explanation: why)
        }
        for _ in 0..<10_000 {
            let x = space.dimensions.map { _ in rng.unit() }
            guard let trial = try space.trial(at: x), !taken.contains(trial.key) else { continue }
            var why = ranked.explanation
            why.basis = "random"
            return Proposal(trial: trial, explanation: why)
        }
        return nil
    }

    /// Candidates best first, each with what to add to the explanation if it is taken.
    struct Ranked {
        var explanation: Explanation
        var candidates: [(point: [Double], detail: (inout Explanation) -> Void)]
    }
}

/// W&B's bayes search (wandb/sweeps@b1dfc5f `src/sweeps/bayes_search.py`, `bayes_search_next_run` and `next_sample`).
enum BayesSearch {
    /// Results needed before the GP is used; fewer give a random point.
    static let minimumSamples = 2
    static let maximumSamples = 100
    static let candidateCount = 1000
    static let stdEpsilon = 1e-6

    static func rank(_ space: SearchSpace, _ observations: [Observation], maximize: Bool, rng: inout SplitMix64) -> Search.Ranked {
        var why = Explanation(method: "bayes", number: 0, basis: "random")
        // `impute: worst`: a failed run counts as the worst extremum of any ended run. Where W&B then falls back to 0
        // (no run has a value) or imputes for a finished run that never logged the metric, nothing is entered here:
        // a missing value is not a result.
        let ended = observations.filter { $0.state != .pending }
        let worsts = ended.compactMap(\.worst).filter(\.isFinite)
        let worst = maximize ? worsts.min() : worsts.max()
        var x: [[Double]] = [], y: [Double] = [], pending: [[Double]] = []
        for o in observations {
            guard let point = space.point(of: o.trial) else { continue }
            switch o.state {
            case .pending: pending.append(point)
            case .failed:
                why.failed += 1
                if let worst { x.append(point); y.append(worst) }
            case .finished:
                guard let v = o.best, v.isFinite else { why.unmeasured = (why.unmeasured ?? 0) + 1; continue }
                x.append(point); y.append(v); why.finished += 1
            }
        }
        why.running = pending.count
        if let best = maximize ? y.max() : y.min() { why.incumbent = best }
        // Everything below minimises.
        if maximize { y = y.map { -$0 } }
        let dims = space.dimensions.count
        func random() -> [Double] { (0..<dims).map { _ in rng.unit() } }
        guard y.count >= minimumSamples, dims > 0 else {
            return Search.Ranked(explanation: why, candidates: [(random(), { _ in })])
        }
        // W&B draws 100 of more samples with replacement; without replacement here, so no point is fitted twice.
        if y.count > maximumSamples {
            let keep = rng.shuffled(Array(y.indices)).prefix(maximumSamples).sorted()
            x = keep.map { x[$0] }
            y = keep.map { y[$0] }
        }
        guard var fit = NormalizedGP(x, y) else { return Search.Ranked(explanation: why, candidates: [(random(), { _ in })]) }
        // Running trials enter at the GP's predicted mean, and the GP is fitted again.
        let fantasies = Array(pending.prefix(maximumSamples - 5))
        if !fantasies.isEmpty, let refit = NormalizedGP(x + fantasies, y + fantasies.map { fit.predict($0).mean }) { fit = refit }
        let incumbent = y.min()!
        let standardIncumbent = (incumbent - fit.mean) / fit.scale
        var scored: [(point: [Double], ei: Double, pi: Double, mean: Double, std: Double)] = []
        scored.reserveCapacity(candidateCount)
        for _ in 0..<candidateCount {
            let point = random()
            let (m, s) = fit.gp.predict(point)
            let z = -(m - standardIncumbent) / (s + stdEpsilon)
            let ei = -(m - standardIncumbent) * Normal.cdf(z) + s * Normal.pdf(z)
            scored.append((point, ei, Normal.cdf(z), m, s))
        }
        why.basis = "gp"
        why.candidates = candidateCount
        why.lengthScale = fit.gp.lengthScale
        var order = Array(scored.indices).sorted { scored[$0].ei > scored[$1].ei || (scored[$0].ei == scored[$1].ei && $0 < $1) }
        // A length scale at its bound is a bad fit: W&B then takes a random candidate.
        let (lo, hi) = GaussianProcess.lengthScaleBounds
        let t = log(fit.gp.lengthScale)
        if abs(t - log(lo)) <= 1e-8 + 1e-5 * abs(log(lo)) || abs(t - log(hi)) <= 1e-8 + 1e-5 * abs(log(hi)) {
            why.basis = "random (bad fit)"
            let pick = rng.below(candidateCount - 1)
            order.removeAll { $0 == pick }
            order.insert(pick, at: 0)
        }
        let sign = maximize ? -1.0 : 1.0
        let candidates = order.map { i -> (point: [Double], detail: (inout Explanation) -> Void) in
            let c = scored[i]
            return (c.point, { e in
                e.expectedImprovement = c.ei
                e.improvementProbability = c.pi
                e.predicted = sign * (c.mean * fit.scale + fit.mean)
                e.predictedStd = c.std * fit.scale
            })
        }
        return Search.Ranked(explanation: why, candidates: candidates)
    }
}

/// A GP on targets standardised as W&B does: (y − mean) / (population std + 1e-6), or the one value and 1.
struct NormalizedGP {
    var gp: GaussianProcess
    var mean: Double
    var scale: Double

    init?(_ x: [[Double]], _ y: [Double]) {
        if y.count == 1 {
            mean = y[0]
            scale = 1
        } else {
            let m = y.reduce(0, +) / Double(y.count)
            mean = m
            scale = (y.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(y.count)).squareRoot() + BayesSearch.stdEpsilon
        }
        let (m, s) = (mean, scale)
        guard let gp = GaussianProcess.fit(points: x, values: y.map { ($0 - m) / s }) else { return nil }
        self.gp = gp
    }

    /// The prediction in the targets' units.
    func predict(_ x: [Double]) -> (mean: Double, std: Double) {
        let (m, s) = gp.predict(x)
        return (m * scale + mean, s * scale)
    }
}
