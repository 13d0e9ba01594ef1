import HarrowCore

/// A search method, as Optuna's `BaseSampler` is one: the next trial from the sweep's recorded trials, with why it
/// was chosen. Pure: the same proposal number and observations give the same proposal, so a resumed sweep continues
/// the search it left.
public protocol Sampler: Sendable {
    /// The next trial, or nil when the space holds no trial the sweep does not have yet.
    func propose(number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal?
}

/// What a sampler knows of one trial of its sweep.
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

/// The trial a sampler chose, and why.
public struct Proposal: Sendable {
    public var trial: Trial
    public var explanation: Explanation
}

/// The sampler of each method.
public enum Search {
    /// One case per method, so a new method cannot fall through to another's search.
    public static func sampler(_ experiment: Experiment) -> any Sampler {
        let maximize = experiment.metric?.goal == .maximize
        return switch experiment.method {
        case .grid: GridSampler(experiment: experiment)
        case .random: RandomSampler(space: SearchSpace(experiment))
        case .bayes: BayesSampler(space: SearchSpace(experiment), maximize: maximize)
        case .tpe: TPESampler(space: SearchSpace(experiment), maximize: maximize)
        }
    }

    /// The experiment's next trial by its method (see `Sampler.propose`).
    public static func propose(_ experiment: Experiment, number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        try sampler(experiment).propose(number: number, observations: observations)
    }
}

extension SearchSpace {
    /// Each proposal's own random stream, so that a resumed sweep draws what it would have.
    func generator(for number: Int) -> SplitMix64 { SplitMix64(seed: experiment.seed).fork(UInt64(number)) }

    /// A uniform point of the space that is a trial the sweep does not have; nil when 10,000 draws found none.
    func freshTrial(_ rng: inout SplitMix64, avoiding taken: Set<String>) throws(ExperimentError) -> Trial? {
        for _ in 0..<10_000 {
            let x = dimensions.map { _ in rng.unit() }
            guard let trial = try trial(at: x), !taken.contains(trial.key) else { continue }
            return trial
        }
        return nil
    }

    /// The best candidate that is a new trial, with its detail: a repeat would stand on the run already there, and
    /// `exclude` or `where` may drop a point. Then a fresh random point with `fallback`, in case every candidate was taken.
    func firstNew<Detail>(
        _ candidates: [(point: [Double], detail: Detail)], otherwise fallback: Detail, after observations: [Observation],
        rng: inout SplitMix64
    ) throws(ExperimentError) -> (trial: Trial, detail: Detail)? {
        let taken = Set(observations.map(\.trial.key))
        for (x, detail) in candidates {
            guard let trial = try trial(at: x), !taken.contains(trial.key) else { continue }
            return (trial, detail)
        }
        return try freshTrial(&rng, avoiding: taken).map { ($0, fallback) }
    }
}
