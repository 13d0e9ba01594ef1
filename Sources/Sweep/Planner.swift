import HarrowCore

/// The trials an experiment expands to, and what was dropped on the way.
public struct Plan: Sendable {
    public var experiment: Experiment
    public var trials: [Trial]
    /// Parameters whose value differs between trials: the columns worth showing.
    public var varying: [String]
    /// Grid points or random draws considered.
    public var candidates: Int
    /// Dropped by `exclude:`.
    public var excluded: Int
    /// Dropped by `where:`.
    public var filtered: Int
    /// Points that resolved to a trial already planned (for example a tied alpha equal to a free one).
    public var duplicates: Int
    /// Valid trials left out by `run_cap` (for a grid cut short by the cap, the points never reached).
    public var capped: Int
    /// Things the user should know about the plan.
    public var notes: [String]
}

public enum Planner {
    /// A grid larger than this must be limited with `run_cap` (or `exclude`/`where` on fewer axes).
    public static let maximumGridPoints = 50_000_000

    public static func plan(_ experiment: Experiment) throws(ExperimentError) -> Plan {
        var state = PlanState(experiment)
        switch experiment.method {
        case .grid: try state.expandGrid()
        case .random where state.limit == nil:
            state.notes.append("random: trials until the deadline, each a fresh draw as a slot frees (no `count` or `run_cap`)")
        case .random: try state.drawRandom()
        case .bayes, .tpe:
            let bound = state.limit.map { "up to \($0) trials" } ?? "trials until the deadline"
            state.notes.append("\(experiment.method.rawValue): \(bound), each proposed from the results so far as a slot frees")
        }
        return state.finish()
    }

    /// One point of the space as a trial: derived parameters computed, `exclude` and `where` applied. Nil when the
    /// point is dropped.
    public static func trial(_ experiment: Experiment, choices: [Distribution.Choice]) throws(ExperimentError) -> Trial? {
        var state = PlanState(experiment)
        try state.consider(choices)
        return state.trials.first
    }

    /// Whether the runner proposes the trials one at a time as slots free instead of running a plan: a bayes or
    /// tpe search, and a random sweep without `count` or `run_cap`, which W&B runs until it is stopped.
    public static func proposesAsItRuns(_ experiment: Experiment) -> Bool {
        experiment.method.isAdaptive || (experiment.method == .random && limit(experiment) == nil)
    }

    /// The most trials a sweep runs: `run_cap` for a grid; the smaller of `count` and `run_cap` otherwise.
    public static func limit(_ experiment: Experiment) -> Int? {
        experiment.method == .grid ? experiment.runCap : [experiment.count, experiment.runCap].compactMap { $0 }.min()
    }
}

/// A plan being built: the candidates considered, the trials kept, and what was dropped on the way.
struct PlanState {
    let experiment: Experiment
    let names: [String]
    /// Slots of parameters computed by expressions, in dependency order.
    let evaluationOrder: [Int]
    let exclusions: [[(slot: Int, value: ParamValue)]]
    let limit: Int?

    var trials: [Trial] = []
    var seen: Set<String> = []
    var candidates = 0, excluded = 0, filtered = 0, duplicates = 0, capped = 0
    var notes: [String] = []

    init(_ experiment: Experiment) {
        self.experiment = experiment
        names = experiment.parameters.map(\.name)
        let slots = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        exclusions = experiment.exclude.map { $0.assignment.map { (slots[$0.name]!, $0.value) } }
        evaluationOrder = Self.dependencyOrder(experiment.parameters, slots: slots)
        limit = Planner.limit(experiment)
    }

    static func dependencyOrder(_ parameters: [Experiment.Parameter], slots: [String: Int]) -> [Int] {
        var order: [Int] = [], done = Set<Int>()
        func visit(_ i: Int) {
            guard !done.contains(i) else { return }
            done.insert(i)
            for name in parameters[i].distribution.expressionNames { visit(slots[name]!) }
            if parameters[i].distribution.hasExpressions { order.append(i) }
        }
        parameters.indices.forEach(visit)
        return order
    }

    var full: Bool { limit.map { trials.count >= $0 } ?? false }

    // MARK: One candidate

    mutating func consider(_ choices: [Distribution.Choice]) throws(ExperimentError) {
        candidates += 1
        var values = [ParamValue](repeating: .null, count: choices.count)
        for (i, c) in choices.enumerated() { if case .value(let v) = c { values[i] = v } }
        for slot in evaluationOrder {
            guard case .expr(let e) = choices[slot] else { continue }
            do {
                values[slot] = try e.evaluate(values)
            } catch {
                let p = experiment.parameters[slot]
                throw failure(at: p.location, "cannot compute '\(p.name)' = \(e.source): \(error.message)", values)
            }
        }
        if isExcluded(values) {
            excluded += 1
            return
        }
        if let constraint = experiment.constraint {
            let keep: ParamValue
            do { keep = try constraint.evaluate(values) } catch {
                throw failure(at: experiment.constraintLocation, "cannot evaluate `where`: \(error.message)", values)
            }
            guard case .bool(let ok) = keep else {
                throw failure(at: experiment.constraintLocation, "`where` must be true or false, got \(keep.typeName) \(keep.json)", values)
            }
            if !ok {
                filtered += 1
                return
            }
        }
        let trial = Trial(names: names, values: values, command: experiment.trainer.command)
        guard seen.insert(trial.key).inserted else {
            duplicates += 1
            return
        }
        trials.append(trial)
    }

    func isExcluded(_ values: [ParamValue]) -> Bool {
        exclusions.contains { entry in
            entry.allSatisfy { slot, wanted in
                let actual = values[slot]
                if actual.sameValue(as: wanted) { return true }
                if case .list(let anyOf) = wanted { return anyOf.contains { actual.sameValue(as: $0) } }
                return false
            }
        }
    }

    func failure(at location: SourceLocation?, _ message: String, _ values: [ParamValue]) -> ExperimentError {
        let known = zip(names, values).map { "\($0)=\($1.json)" }.joined(separator: ", ")
        return ExperimentError(diagnostics: [
            Diagnostic(
                .error, location ?? SourceLocation(file: experiment.file, line: 1, column: 1),
                message, hint: "for the trial \(known)")
        ])
    }

    func finish() -> Plan {
        var varying: [String] = []
        if trials.isEmpty {
            // A search proposed as it runs varies what is not held constant.
            varying = experiment.parameters.filter { if case .constant = $0.distribution { false } else { true } }.map(\.name)
        } else if let first = trials.first {
            for (i, name) in names.enumerated() where trials.contains(where: { !$0.values[i].sameValue(as: first.values[i]) }) {
                varying.append(name)
            }
        }
        var notes = notes
        if experiment.method != .grid, let cap = experiment.runCap, let count = experiment.count, cap < count {
            notes.append("run_cap \(cap) limits count \(count)")
        }
        return Plan(
            experiment: experiment, trials: trials, varying: varying, candidates: candidates, excluded: excluded,
            filtered: filtered, duplicates: duplicates, capped: capped, notes: notes)
    }
}
