import HarrowCore
import Foundation

/// Optuna's tree-structured Parzen estimator with its independent defaults (`TPESampler(multivariate=False,
/// constant_liar=False)`, the default up to v4.9): optuna/optuna@1d8ce7b `optuna/samplers/_tpe/sampler.py`
/// (`_sample`, `default_gamma`, `default_weights`, `_split_complete_trials`) and `parzen_estimator.py`
/// (`_calculate_numerical_distributions`, `_calculate_categorical_distributions`).
///
/// Each parameter is chosen on its own: 24 draws from l(x), the Parzen density of the best γ(n) results, and the
/// draw with the largest log l(x) − log g(x) wins, g being the density of the rest. Harrow's mapping: integer and
/// `q_` parameters are stepped, `log_uniform_values` are searched in log space, categoricals by choice, and the
/// priors Optuna has no counterpart for (normal, log-normal, beta) on the unit interval of their distribution function.
public struct TPESampler: Sampler {
    static let startupTrials = 10
    static let candidateCount = 24
    static let priorWeight = 1.0

    public let space: SearchSpace
    public let maximize: Bool

    /// min(⌈0.1 n⌉, 25) results make the good group.
    static func gamma(_ n: Int) -> Int { min(Int((0.1 * Double(n)).rounded(.up)), 25) }

    /// Ones below 25 observations; above, a ramp from 1/n for the oldest, and ones for the newest 25.
    static func weights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let ramp = n - 25
        let rampValues = (0..<ramp).map { i in
            ramp == 1 ? 1.0 / Double(n) : 1.0 / Double(n) + (1 - 1.0 / Double(n)) * Double(i) / Double(ramp - 1)
        }
        return rampValues + [Double](repeating: 1, count: 25)
    }

    public func propose(number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        var rng = space.generator(for: number)
        var why = Explanation(number: number, detail: .tpe(Explanation.TPE()))
        let (model, candidates) = rank(observations, into: &why, rng: &rng)
        var fallback = model
        fallback.basis = .random
        guard let (trial, chosen) = try space.firstNew(candidates, otherwise: fallback, after: observations, rng: &rng) else { return nil }
        why.detail = .tpe(chosen)
        return Proposal(trial: trial, explanation: why)
    }

    /// The split into good and bad results (or a random point's state, before there are enough) and the candidates
    /// best first, each with its log density ratio; the trials counted into `why`.
    func rank(
        _ observations: [Observation], into why: inout Explanation,
        rng: inout SplitMix64
    ) -> (model: Explanation.TPE, candidates: [(point: [Double], detail: Explanation.TPE)]) {
        var model = Explanation.TPE()
        // Only finished results count (Optuna's COMPLETE); failed and running trials are left out.
        let results = observations.enumerated().compactMap { i, o -> (order: Int, value: Double, trial: Trial)? in
            guard o.state == .finished, let v = o.best, v.isFinite else { return nil }
            return (i, v, o.trial)
        }
        why.finished = results.count
        why.failed = observations.count { $0.state == .failed }
        why.running = observations.count { $0.state == .pending }
        why.incumbent = maximize ? results.map(\.value).max() : results.map(\.value).min()
        let dims = space.dimensions.map(Domain.init)
        guard results.count >= Self.startupTrials, !dims.isEmpty else {
            return (model, [(space.dimensions.map { _ in rng.unit() }, model)])
        }
        // A stable sort by value: ties keep trial order, so the older trial goes to the good group.
        let sorted = results.sorted { maximize ? $0.value > $1.value : $0.value < $1.value }
        let nGood = Self.gamma(results.count)
        let good = sorted.prefix(nGood).sorted { $0.order < $1.order }
        let bad = sorted.dropFirst(nGood).sorted { $0.order < $1.order }
        model.basis = .tpe
        model.split = .init(good: good.count, bad: bad.count)
        model.candidates = Self.candidateCount

        // Per parameter: the 24 draws from l, best first by log l − log g.
        var columns: [[(u: Double, score: Double)]] = []
        for (d, domain) in dims.enumerated() {
            let slot = space.dimensions[d].slot
            let below = Parzen(domain, good.compactMap { domain.representation($0.trial.values[slot]) })
            let above = Parzen(domain, bad.compactMap { domain.representation($0.trial.values[slot]) })
            var draws: [(u: Double, score: Double, index: Int)] = []
            for k in 0..<Self.candidateCount {
                let t = below.sample(&rng)
                draws.append((domain.unit(t), below.logPDF(t) - above.logPDF(t), k))
            }
            draws.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
            columns.append(draws.map { ($0.u, $0.score) })
        }
        let candidates = (0..<Self.candidateCount).map { k -> (point: [Double], detail: Explanation.TPE) in
            var chosen = model
            chosen.logDensityRatio = columns.map { $0[k].score }.reduce(0, +)
            return (columns.map { $0[k].u }, chosen)
        }
        return (model, candidates)
    }

    /// One parameter as Optuna sees it: an interval (stepped, in log space or not) or a set of choices.
    struct Domain {
        enum Kind { case numeric(low: Double, high: Double, step: Double?, log: Bool), categorical(Int), unit }
        let kind: Kind
        let distribution: Distribution

        init(_ d: SearchSpace.Dimension) {
            distribution = d.distribution
            switch d.distribution {
            case .categorical(let c): kind = .categorical(c.count)
            case .weightedCategorical(let v, _): kind = .categorical(v.count)
            case .intUniform(let lo, let hi): kind = .numeric(low: Double(lo), high: Double(hi), step: 1, log: false)
            case .uniform(let lo, let hi): kind = .numeric(low: lo, high: hi, step: nil, log: false)
            case .qUniform(let lo, let hi, let q, _): kind = .numeric(low: lo, high: hi, step: q, log: false)
            case .logUniformValues(let lo, let hi), .qLogUniformValues(let lo, let hi, _, _), .invLogUniformValues(let lo, let hi):
                kind = .numeric(low: lo, high: hi, step: nil, log: true)
            default: kind = .unit
            }
        }

        /// The truncation interval in internal units (widened by half a step for stepped parameters).
        var bounds: (Double, Double) {
            switch kind {
            case .numeric(let lo, let hi, let step, let isLog):
                let (a, b) = (lo - (step ?? 0) / 2, hi + (step ?? 0) / 2)
                return isLog ? (log(a), log(b)) : (a, b)
            case .categorical(let n): return (0, Double(n))
            case .unit: return (0, 1)
            }
        }

        /// A value's internal representation: log for log parameters, the index for a categorical.
        func representation(_ value: ParamValue) -> Double? {
            switch kind {
            case .categorical:
                guard let u = SearchSpace.cdf(distribution, value) else { return nil }
                return (u * Double(categories)).rounded() - 1
            case .numeric(_, _, _, let isLog):
                guard let x = value.number else { return nil }
                return isLog ? (x > 0 ? log(x) : nil) : x
            case .unit: return SearchSpace.cdf(distribution, value)
            }
        }

        var categories: Int { if case .categorical(let n) = kind { n } else { 0 } }

        /// The unit-cube coordinate whose value is the internal value t (the inverse of `SearchSpace.ppf`).
        func unit(_ t: Double) -> Double {
            switch kind {
            case .categorical(let n): return (t + 0.5) / Double(n)
            case .numeric(let lo, let hi, let step, let isLog):
                var x = isLog ? exp(t) : t
                if let step { x = min(max(lo + ((x - lo) / step).rounded() * step, lo), hi) }
                var value = ParamValue.double(x)
                if case .intUniform = distribution { value = .int(Int(x.rounded())) }
                guard var u = SearchSpace.cdf(distribution, value) else { return 0.5 }
                // An integer's cell is ((i − lo)/n, (i − lo + 1)/n]: its middle, so the quantile gives it back.
                if case .intUniform(let a, let b) = distribution { u -= 0.5 / Double(b - a + 1) }
                return min(max(u, 0), 1)
            case .unit: return min(max(t, 0), 1)
            }
        }
    }

    /// A Parzen mixture over one parameter: a kernel per observation plus the prior, weighted by `weights` and 1.
    struct Parzen {
        let domain: Domain
        let weights: [Double]
        let mus: [Double]
        let sigmas: [Double]
        /// Categorical: one row of choice probabilities per kernel.
        let rows: [[Double]]

        init(_ domain: Domain, _ observations: [Double]) {
            self.domain = domain
            var w = TPESampler.weights(observations.count) + [TPESampler.priorWeight]
            let total = w.reduce(0, +)
            w = w.map { $0 / total }
            weights = w
            if case .categorical(let n) = domain.kind {
                let eps = TPESampler.priorWeight / Double(observations.count + 1)
                rows =
                    observations.map { o in
                        (0..<n).map { c in (eps + (Int(o) == c ? 1 : 0)) / (1 + Double(n) * eps) }
                    } + [[Double](repeating: 1 / Double(n), count: n)]
                mus = []
                sigmas = []
                return
            }
            rows = []
            let (low, high) = domain.bounds
            let n = observations.count
            var sigma = [Double](repeating: 0, count: n)
            if n > 0 {
                let order = observations.indices.sorted { observations[$0] < observations[$1] }
                let withEnds = [low] + order.map { observations[$0] } + [high]
                var sortedSigma: [Double] = (1...n).map { i -> Double in max(withEnds[i] - withEnds[i - 1], withEnds[i + 1] - withEnds[i]) }
                // consider_endpoints=False: the outermost observations use only their inner gap.
                if n >= 2 {
                    sortedSigma[0] = withEnds[2] - withEnds[1]
                    sortedSigma[n - 1] = withEnds[n] - withEnds[n - 1]
                }
                for (rank, i) in order.enumerated() { sigma[i] = sortedSigma[rank] }
            }
            // The magic clip: no kernel narrower than the range over min(100, kernels + 1).
            let range = high - low
            let minimum = range / min(100, Double(n + 2))
            sigmas = sigma.map { min(max($0, minimum), range) } + [range]
            mus = observations + [(low + high) / 2]
        }

        func sample(_ rng: inout SplitMix64) -> Double {
            var u = rng.unit(), k = weights.count - 1
            for (i, w) in weights.enumerated() {
                if u < w { k = i; break }
                u -= w
            }
            if case .categorical = domain.kind {
                var v = rng.unit()
                for (c, p) in rows[k].enumerated() {
                    if v < p { return Double(c) }
                    v -= p
                }
                return Double(rows[k].count - 1)
            }
            // Inverse-CDF draw from the kernel truncated to the bounds.
            let (low, high) = domain.bounds
            let a = Normal.cdf((low - mus[k]) / sigmas[k]), b = Normal.cdf((high - mus[k]) / sigmas[k])
            let t = mus[k] + sigmas[k] * Normal.quantile(a + (b - a) * rng.unit())
            return min(max(t, low), high)
        }

        func logPDF(_ t: Double) -> Double {
            var terms: [Double] = []
            switch domain.kind {
            case .categorical:
                let c = Int(t)
                terms = rows.indices.map { log(weights[$0]) + log(rows[$0][c]) }
            case .numeric(let lo, let hi, let step?, let isLog):
                // A stepped value: the kernel's mass over its cell, over the mass of the whole range.
                var x = isLog ? exp(t) : t
                x = min(max(lo + ((x - lo) / step).rounded() * step, lo), hi)
                let (left, right) = isLog ? (log(x - step / 2), log(x + step / 2)) : (x - step / 2, x + step / 2)
                let (low, high) = domain.bounds
                terms = mus.indices.map { k in
                    log(weights[k]) + Self.logMass((left - mus[k]) / sigmas[k], (right - mus[k]) / sigmas[k])
                        - Self.logMass((low - mus[k]) / sigmas[k], (high - mus[k]) / sigmas[k])
                }
            default:
                let (low, high) = domain.bounds
                terms = mus.indices.map { k in
                    let z = (t - mus[k]) / sigmas[k]
                    return log(weights[k]) - 0.5 * z * z - 0.5 * log(2 * .pi) - log(sigmas[k])
                        - Self.logMass((low - mus[k]) / sigmas[k], (high - mus[k]) / sigmas[k])
                }
            }
            let top = terms.max() ?? -.infinity
            guard top > -.infinity else { return -.infinity }
            return top + log(terms.reduce(0) { $0 + exp($1 - top) })
        }

        /// log(Φ(b) − Φ(a)), taken in the upper tail when both are far into it.
        static func logMass(_ a: Double, _ b: Double) -> Double {
            if a > 0 { return log(Normal.cdf(-a) - Normal.cdf(-b)) }
            return log(Normal.cdf(b) - Normal.cdf(a))
        }
    }
}

extension Explanation {
    /// The tpe sampler's part of an explanation.
    public struct TPE: Sendable, Equatable, Codable {
        public enum Basis: String, Sendable, Codable {
            /// Fewer than `TPESampler.startupTrials` results, or every candidate was a trial the sweep has.
            case random
            /// The candidate of largest log l(x) − log g(x).
            case tpe
        }

        /// The sizes of the good and bad groups of results.
        public struct Split: Sendable, Equatable {
            public var good: Int
            public var bad: Int
        }

        public var basis = Basis.random
        /// Candidates drawn from l(x); 0 before the results were split.
        public var candidates = 0
        public var split: Split?
        /// log l(x) − log g(x) at the proposed point, summed over the parameters; nil for a random one.
        public var logDensityRatio: Double?

        enum CodingKeys: String, CodingKey { case basis, candidates, good, bad, logDensityRatio }

        public init() {}

        /// Beside the explanation's own keys, in the same JSON object.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(basis, forKey: .basis)
            try c.encode(candidates, forKey: .candidates)
            try c.encodeIfPresent(split?.good, forKey: .good)
            try c.encodeIfPresent(split?.bad, forKey: .bad)
            try c.encodeIfPresent(logDensityRatio, forKey: .logDensityRatio)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            basis = try c.decode(Basis.self, forKey: .basis)
            candidates = try c.decode(Int.self, forKey: .candidates)
            if let good = try c.decodeIfPresent(Int.self, forKey: .good), let bad = try c.decodeIfPresent(Int.self, forKey: .bad) {
                split = Split(good: good, bad: bad)
            }
            logDensityRatio = try c.decodeIfPresent(Double.self, forKey: .logDensityRatio)
        }

        var summary: String {
            switch basis {
            case .tpe: "log l/g \(logDensityRatio.map(Explanation.short) ?? "?") (good \(split?.good ?? 0), bad \(split?.bad ?? 0))"
            case .random: "random draw (fewer than \(TPESampler.startupTrials) results)"
            }
        }
    }
}
