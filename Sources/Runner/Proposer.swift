import HarrowCore
import Foundation
import Sweep
import Tracking

/// The trials of a bayes or tpe sweep, proposed one at a time as slots free from the sweep's results so far
/// (finished, failed, and still running), each recorded in the store with why it was chosen; and those of a random
/// sweep with no bound, drawn the same way until the deadline. A proposal is a pure
/// function of the experiment, its number and the store, so a resumed sweep continues the same search.
actor Proposer {
    let store: Store
    let experiment: Experiment
    let sampler: any Sampler
    let identities: IdentityBuilder
    let runsRoot: String
    let reuse: ReuseRule
    let notice: (@Sendable (String) -> Void)?
    /// Every trial of the sweep so far, by parameter key.
    private(set) var trials: [String: Trial]
    private var proposed: Int
    private var done = false

    init(
        store: Store, experiment: Experiment, identities: IdentityBuilder, earlier: [Trial], runsRoot: String, reuse: ReuseRule,
        notice: (@Sendable (String) -> Void)?
    ) {
        self.store = store
        self.experiment = experiment
        sampler = Search.sampler(experiment)
        self.identities = identities
        self.runsRoot = runsRoot
        self.reuse = reuse
        self.notice = notice
        trials = Dictionary(earlier.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        proposed = earlier.count
    }

    /// Trials still to propose under `count` and `run_cap`; nil when only the deadline bounds the sweep.
    var remaining: Int? { Planner.limit(experiment).map { max($0 - proposed, 0) } }

    func trial(_ key: String) -> Trial? { trials[key] }

    /// The earlier proposals of the sweep, in order, with why each was made: what a resumed sweep registers again.
    static func earlier(_ experiment: Experiment, store: Store) throws -> [(trial: Trial, explanation: String)] {
        let proposals = try store.proposals(sweep: experiment.name)
        return try store.runs(sweep: experiment.name).compactMap { run in
            proposals[run.id].map { (Trial(experiment, parameters: run.params), $0) }
        }
    }

    /// Proposes, records and admits the next trial; nil once the budget is spent, the space holds nothing new,
    /// or the scheduler will start nothing more.
    func next(_ scheduler: Scheduler) async throws -> Run? {
        while !done, remaining.map({ $0 > 0 }) ?? true, await scheduler.accepting {
            let observations = try observe()
            guard let proposal = try sampler.propose(number: proposed + 1, observations: observations) else {
                done = true
                notice?("\(experiment.method.rawValue): no trial left that has not run; the search ends after \(proposed)")
                break
            }
            let record = TrialRecord(
                identity: identities.identity(of: proposal.trial), paramsJSON: proposal.trial.parametersJSON,
                command: experiment.trainer.command, proposal: proposal.explanation.json)
            let (run, rerun) = try store.append(sweep: experiment.name, trial: record, runsRoot: runsRoot, reuse: reuse)
            trials[proposal.trial.key] = proposal.trial
            proposed += 1
            await scheduler.expect(remaining ?? 0)
            if let rerun {
                notice?("run \(rerun.run) runs again; since run \(rerun.earlier) (\(rerun.earlierStatus.rawValue)) its identity changed")
            }
            // A trial that already ran (reused under `reuse`) is a result now; the next proposal uses it.
            guard run.status == .queued || run.status == .interrupted else { continue }
            await scheduler.report(proposal.explanation.summary)
            if await scheduler.admit(run, epochs: proposal.trial["epochs"]?.number) { return run }
            done = true
        }
        if done { await scheduler.expect(0) }
        return nil
    }

    /// What the search knows: each trial of the sweep, its state, and its best and worst value of the metric
    /// (none without one: a random sweep still needs to know which trials it has).
    func observe() throws -> [Observation] {
        let ranges = try experiment.metric.map { try store.metricRanges(sweep: experiment.name, key: $0.name) } ?? [:]
        let maximize = experiment.metric?.goal == .maximize
        return try store.runs(sweep: experiment.name).map { run in
            let state: Observation.State =
                switch run.status {
                case .succeeded, .stopped_early: .finished
                case .failed, .timed_out: .failed
                case .queued, .running, .interrupted: .pending
                }
            let range = ranges[run.rowID]
            return Observation(
                trial: trials[run.paramsKey ?? ""] ?? Trial(experiment, parameters: run.params), state: state,
                best: range.map { maximize ? $0.max : $0.min }, worst: range.map { maximize ? $0.min : $0.max })
        }
    }
}
