import HarrowCore

/// W&B's grid: every combination of the parameters' values, the last parameter varying fastest. The planner expands
/// it before the sweep starts (`PlanState.expandGrid`); as a sampler, it proposes the first planned point the sweep
/// does not have.
public struct GridSampler: Sampler {
    public let experiment: Experiment

    public func propose(number: Int, observations: [Observation]) throws(ExperimentError) -> Proposal? {
        let points = try Planner.plan(experiment).trials
        let taken = Set(observations.map(\.trial.key))
        guard let i = points.firstIndex(where: { !taken.contains($0.key) }) else { return nil }
        let why = Explanation(number: number, counting: observations, detail: .grid(.init(point: i + 1, points: points.count)))
        return Proposal(trial: points[i], explanation: why)
    }
}

extension PlanState {
    /// Every combination in W&B's order, up to `run_cap`; a grid larger than `Planner.maximumGridPoints` needs a cap.
    mutating func expandGrid() throws(ExperimentError) {
        // Counted before any axis is built: a wide int_uniform axis would otherwise be materialised first.
        var total = 1
        for p in experiment.parameters {
            let count: Int
            if case .derived = p.distribution { count = 1 } else { count = p.distribution.gridCount ?? 0 }
            let (product, overflow) = total.multipliedReportingOverflow(by: count)
            total = overflow ? .max : product
        }
        if total > Planner.maximumGridPoints, limit == nil {
            throw ExperimentError(diagnostics: [
                Diagnostic(
                    .error, SourceLocation(file: experiment.file, line: 1, column: 1),
                    "the grid has \(total == .max ? "more than \(Int.max)" : String(total)) points",
                    hint: "add `run_cap`, use `method: random` with a `count`, or give fewer values")
            ])
        }
        let axes: [[Distribution.Choice]] = experiment.parameters.map {
            if case .derived(let e) = $0.distribution { return [.expr(e)] }
            return $0.distribution.gridChoices ?? []
        }
        var digits = [Int](repeating: 0, count: axes.count)
        var choices = axes.map { $0[0] }
        for point in 0..<total {
            if full {
                capped += total - point
                notes.append("run_cap \(limit!) reached: \(total - point) grid points were not planned")
                return
            }
            try consider(choices)
            // Advance the mixed-radix counter; the last parameter varies fastest, as in W&B.
            var axis = axes.count - 1
            while axis >= 0 {
                digits[axis] += 1
                if digits[axis] < axes[axis].count {
                    choices[axis] = axes[axis][digits[axis]]
                    break
                }
                digits[axis] = 0
                choices[axis] = axes[axis][0]
                axis -= 1
            }
        }
    }
}

extension Distribution {
    /// The finite value list a grid walks, or nil where W&B's grid refuses the distribution.
    /// `int_uniform` is inclusive of max; `q_uniform` follows `numpy.arange(min, max, q)`, so max is excluded.
    public var gridChoices: [Choice]? {
        switch self {
        case .constant(let v): return [.value(v)]
        case .categorical(let choices): return choices
        case .intUniform(let lo, let hi): return (lo...hi).map { .value(.int($0)) }
        case .qUniform(let lo, _, let q, let integral):
            let n = gridCount ?? 0
            return (0..<max(n, 0)).map { i in .value(quantized(lo + Double(i) * q, q: q, integral: integral)) }
        default: return nil
        }
    }

    /// Grid size without materialising it (Int.max when it does not fit), nil where a grid cannot enumerate it.
    /// Callers check this before `gridChoices`: a wide `int_uniform` would otherwise be built value by value.
    var gridCount: Int? {
        switch self {
        case .intUniform(let lo, let hi):
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            return overflow || span == .max ? .max : span + 1
        case .qUniform(let lo, let hi, let q, _):
            let n = ((hi - lo) / q).rounded(.up)
            return n.isNaN ? 0 : n >= Double(Int.max) ? .max : max(Int(n), 0)
        default: return gridChoices?.count
        }
    }
}
