import HarrowCore
import Foundation

/// W&B's bayes search (wandb/sweeps@b1dfc5f `src/sweeps/bayes_search.py`, `bayes_search_next_run` and `next_sample`):
/// a Gaussian process fitted to the results so far, and the candidate of largest expected improvement.
public struct BayesSampler: Sampler {
    /// Results needed before the GP is used; fewer give a random point.
    static let minimumSamples = 2
    static let maximumSamples = 100
    static let candidateCount = 1000
    static let stdEpsilon = 1e-6

    public let space: SearchSpace
    public let maximize: Bool

    public func propose(number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        var rng = space.generator(for: number)
        var why = Explanation(number: number, detail: .bayes(Explanation.Bayes()))
        let (model, candidates) = rank(observations, into: &why, rng: &rng)
        var fallback = model
        fallback.basis = .random
        guard let (trial, chosen) = try space.firstNew(candidates, otherwise: fallback, after: observations, rng: &rng) else { return nil }
        why.detail = .bayes(chosen)
        return Proposal(trial: trial, explanation: why)
    }

    /// The GP's state (or a random point's, before there is one to fit) and the candidates best first, each with its
    /// prediction; the trials counted into `why`.
    func rank(
        _ observations: [Observation], into why: inout Explanation,
        rng: inout SplitMix64
    ) -> (model: Explanation.Bayes, candidates: [(point: [Double], detail: Explanation.Bayes)]) {
        var model = Explanation.Bayes()
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
                guard let v = o.best, v.isFinite else { why.unmeasured += 1; continue }
                x.append(point); y.append(v); why.finished += 1
            }
        }
        why.running = pending.count
        if let best = maximize ? y.max() : y.min() { why.incumbent = best }
        // Everything below minimises.
        if maximize { y = y.map { -$0 } }
        let dims = space.dimensions.count
        func random() -> [Double] { (0..<dims).map { _ in rng.unit() } }
        guard y.count >= Self.minimumSamples, dims > 0 else { return (model, [(random(), model)]) }
        // W&B draws 100 of more samples with replacement; without replacement here, so no point is fitted twice.
        if y.count > Self.maximumSamples {
            let keep = rng.shuffled(Array(y.indices)).prefix(Self.maximumSamples).sorted()
            x = keep.map { x[$0] }
            y = keep.map { y[$0] }
        }
        guard var fit = NormalizedGP(x, y) else { return (model, [(random(), model)]) }
        // Running trials enter at the GP's predicted mean, and the GP is fitted again.
        let fantasies = Array(pending.prefix(Self.maximumSamples - 5))
        if !fantasies.isEmpty, let refit = NormalizedGP(x + fantasies, y + fantasies.map { fit.predict($0).mean }) { fit = refit }
        let incumbent = y.min()!
        let standardIncumbent = (incumbent - fit.mean) / fit.scale
        var scored: [(point: [Double], ei: Double, pi: Double, mean: Double, std: Double)] = []
        scored.reserveCapacity(Self.candidateCount)
        for _ in 0..<Self.candidateCount {
            let point = random()
            let (m, s) = fit.gp.predict(point)
            let z = -(m - standardIncumbent) / (s + Self.stdEpsilon)
            let ei = -(m - standardIncumbent) * Normal.cdf(z) + s * Normal.pdf(z)
            scored.append((point, ei, Normal.cdf(z), m, s))
        }
        model.basis = .gp
        model.candidates = Self.candidateCount
        model.lengthScale = fit.gp.lengthScale
        var order = Array(scored.indices).sorted { scored[$0].ei > scored[$1].ei || (scored[$0].ei == scored[$1].ei && $0 < $1) }
        // A length scale at its bound is a bad fit: W&B then takes a random candidate.
        let (lo, hi) = GaussianProcess.lengthScaleBounds
        let t = log(fit.gp.lengthScale)
        if abs(t - log(lo)) <= 1e-8 + 1e-5 * abs(log(lo)) || abs(t - log(hi)) <= 1e-8 + 1e-5 * abs(log(hi)) {
            model.basis = .badFit
            let pick = rng.below(Self.candidateCount - 1)
            order.removeAll { $0 == pick }
            order.insert(pick, at: 0)
        }
        let sign = maximize ? -1.0 : 1.0
        let candidates = order.map { i -> (point: [Double], detail: Explanation.Bayes) in
            let c = scored[i]
            var chosen = model
            chosen.prediction = .init(
                predicted: sign * (c.mean * fit.scale + fit.mean), predictedStd: c.std * fit.scale,
                expectedImprovement: c.ei, improvementProbability: c.pi)
            return (c.point, chosen)
        }
        return (model, candidates)
    }
}

extension Explanation {
    /// The bayes sampler's part of an explanation.
    public struct Bayes: Sendable, Equatable, Codable {
        public enum Basis: String, Sendable, Codable {
            /// Too few results for the GP, or every candidate was a trial the sweep has.
            case random
            /// The candidate of largest expected improvement.
            case gp
            /// The fitted length scale sits at a bound, and W&B then takes a random candidate.
            case badFit = "random (bad fit)"
        }

        public var basis = Basis.random
        /// Candidates the GP scored; 0 before it was fitted.
        public var candidates = 0
        /// The fitted GP's length scale.
        public var lengthScale: Double?
        /// The GP at the proposed point; nil for a random one.
        public var prediction: Prediction?

        /// The GP's prediction (metric units), expected improvement and probability of improvement (standardised
        /// units, as W&B reports them).
        public struct Prediction: Sendable, Equatable, Codable {
            public var predicted: Double
            public var predictedStd: Double
            public var expectedImprovement: Double
            public var improvementProbability: Double
        }

        enum CodingKeys: String, CodingKey { case basis, candidates, lengthScale, expectedImprovement }

        public init() {}

        /// Beside the explanation's own keys, in the same JSON object.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(basis, forKey: .basis)
            try c.encode(candidates, forKey: .candidates)
            try c.encodeIfPresent(lengthScale, forKey: .lengthScale)
            try prediction?.encode(to: encoder)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            basis = try c.decode(Basis.self, forKey: .basis)
            candidates = try c.decode(Int.self, forKey: .candidates)
            lengthScale = try c.decodeIfPresent(Double.self, forKey: .lengthScale)
            prediction = c.contains(.expectedImprovement) ? try Prediction(from: decoder) : nil
        }

        var summary: String {
            switch basis {
            case .gp:
                "expected improvement \(prediction.map { Explanation.short($0.expectedImprovement) } ?? "?")"
                    + (prediction.map { " at predicted \(Explanation.short($0.predicted)) ± \(Explanation.short($0.predictedStd))" } ?? "")
            case .random: "random draw (fewer than \(BayesSampler.minimumSamples) results)"
            case .badFit: basis.rawValue
            }
        }
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
            scale = (y.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(y.count)).squareRoot() + BayesSampler.stdEpsilon
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
