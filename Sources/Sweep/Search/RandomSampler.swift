import HarrowCore
import Foundation

/// W&B's random search. A sweep with `count` or `run_cap` is planned before it starts: draws from each parameter's
/// prior in turn on the experiment's seed (`PlanState.drawRandom`). Without a bound it runs until the deadline and
/// proposes as slots free: each parameter's quantile at a uniform point (wandb/sweeps@b1dfc5f src/sweeps/params.py,
/// `HyperParameter.sample`), on the proposal's own stream, skipping trials the sweep already has, as a plan does.
public struct RandomSampler: Sampler {
    public let space: SearchSpace

    public func propose(number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        var rng = space.generator(for: number)
        guard let trial = try space.freshTrial(&rng, avoiding: Set(observations.map(\.trial.key))) else { return nil }
        return Proposal(trial: trial, explanation: Explanation(number: number, counting: observations, detail: .random))
    }
}

extension PlanState {
    /// Draws until the plan holds `count` (or `run_cap`) trials, or 100 draws per trial (and 1,000) found no more.
    mutating func drawRandom() throws(ExperimentError) {
        var rng = SplitMix64(seed: experiment.seed)
        let target = limit ?? 0
        let maximumDraws = target * 100 + 1_000
        while trials.count < target, candidates < maximumDraws {
            var choices: [Distribution.Choice] = []
            choices.reserveCapacity(experiment.parameters.count)
            for p in experiment.parameters { choices.append(p.distribution.sample(&rng)) }
            try consider(choices)
        }
        if trials.count < target {
            notes.append(
                "only \(trials.count) distinct trials of \(target) requested after \(candidates) draws: the space is smaller than `count`")
        }
    }
}

extension Distribution {
    /// One random draw. Derived and expression choices are resolved by the planner afterwards.
    func sample(_ rng: inout SplitMix64) -> Choice {
        func q(_ x: Double, _ q: Double, _ integral: Bool) -> Choice { .value(quantized(x, q: q, integral: integral)) }
        switch self {
        case .constant(let v): return .value(v)
        case .categorical(let choices): return choices[rng.below(choices.count)]
        case .weightedCategorical(let values, let p):
            var u = rng.unit() * p.reduce(0, +)
            for (v, w) in zip(values, p) {
                if u < w { return .value(v) }
                u -= w
            }
            return .value(values[values.count - 1])
        case .intUniform(let lo, let hi):
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            if !overflow, span < .max { return .value(.int(lo + rng.below(span + 1))) }
            // Wider than Int: draw the offset over all of UInt64 (hi > lo, so the span fits in it).
            let width = UInt64(bitPattern: Int64(hi &- lo))
            var r = rng.next()
            if width < .max { while r > width { r = rng.next() } }
            return .value(.int(lo &+ Int(bitPattern: UInt(r))))
        case .uniform(let lo, let hi): return .value(.double(lo + (hi - lo) * rng.unit()))
        case .qUniform(let lo, let hi, let step, let integral): return q(lo + (hi - lo) * rng.unit(), step, integral)
        case .logUniformValues(let lo, let hi): return .value(.double(exp(log(lo) + (log(hi) - log(lo)) * rng.unit())))
        case .invLogUniformValues(let lo, let hi):
            return .value(.double(exp(-(-log(hi) + (log(hi) - log(lo)) * rng.unit()))))
        case .qLogUniformValues(let lo, let hi, let step, let integral):
            return q(exp(log(lo) + (log(hi) - log(lo)) * rng.unit()), step, integral)
        case .normal(let mu, let sigma): return .value(.double(mu + sigma * rng.gaussian()))
        case .qNormal(let mu, let sigma, let step, let integral): return q(mu + sigma * rng.gaussian(), step, integral)
        case .logNormal(let mu, let sigma): return .value(.double(exp(mu + sigma * rng.gaussian())))
        case .qLogNormal(let mu, let sigma, let step, let integral): return q(exp(mu + sigma * rng.gaussian()), step, integral)
        case .beta(let a, let b): return .value(.double(rng.beta(a, b)))
        case .qBeta(let a, let b, let step, let integral): return q(rng.beta(a, b), step, integral)
        case .derived(let e): return .expr(e)
        }
    }
}

/// The draws only sweeps need, on the shared generator.
extension SplitMix64 {
    /// Gamma(shape, 1) by Marsaglia and Tsang's method.
    mutating func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * pow(max(unit(), .leastNonzeroMagnitude), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = gaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = unit()
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    mutating func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(a), y = gamma(b)
        return x / (x + y)
    }
}
