/// The checkpoints a run's folder holds, as its reader found them: advice names only weights that exist. The
/// diagnosis stays free of I/O; whoever reads the run folder fills this in.
public struct Checkpoints: Sendable, Equatable {
    /// The folder of the best checkpoint (`checkpoint-best`) when it exists, and the step whose weights it holds
    /// as the trainer reported it (`best_step` of its `done` event; nil when it did not say).
    public var best: String?
    public var bestStep: Int?
    /// The folder of the final weights (`checkpoint`) when it exists.
    public var final: String?
    /// Folders of weights saved at given steps (Hugging Face's `checkpoint-N`), by step.
    public var byStep: [Int: String]

    public init(best: String? = nil, bestStep: Int? = nil, final: String? = nil, byStep: [Int: String] = [:]) {
        self.best = best
        self.bestStep = bestStep
        self.final = final
        self.byStep = byStep
    }

    /// The folder holding the weights of `step` (the last step's are the final ones), if any. A best checkpoint
    /// whose step the trainer did not report holds the val-loss minimum, as docs/DESIGN.md's run folder says.
    public func holding(step: Int, lastStep: Int?) -> String? {
        if let best, bestStep == nil || bestStep == step { return best }
        if let name = byStep[step] { return name }
        if let final, step == lastStep { return final }
        return nil
    }
}

extension Diagnoser {
    /// A run's best step, the one definition every reader uses (diagnosis, `runs`, gate, report, advice): the
    /// evaluated step with the lowest val loss as logged (not smoothed), the earliest of equal ones. Without a
    /// val curve, the step of the best checkpoint the trainer reported keeping (`best_step`), if any. The store's
    /// val/loss summary (`min_step`) keeps the same minimum as points arrive.
    public static func bestStep(val: Curve?, reported: Int? = nil) -> Int? {
        guard let val = val?.cleaned().curve, !val.isEmpty else { return reported }
        var best = 0
        for i in val.values.indices where val.values[i] < val.values[best] { best = i }
        return val.steps[best]
    }

    /// What to do with the weights of the best step, naming only a checkpoint that exists: keep it, or save that
    /// step next time when nothing holds it. `checkpoints` nil: nothing is known of the run's folder.
    static func keep(_ step: Int?, lastStep: Int?, checkpoints: Checkpoints?) -> String {
        guard let step else { return "keep the best checkpoint" }
        guard let c = checkpoints else { return "keep the weights of step \(step) if a checkpoint holds them" }
        if let name = c.holding(step: step, lastStep: lastStep) { return "keep \(name) (step \(step))" }
        let kept: String
        if let best = c.best, let at = c.bestStep {
            kept = "\(best) holds step \(at)"
        } else if let final = c.final {
            kept = "only \(final), the final weights\(lastStep.map { " of step \($0)" } ?? ""), was kept"
        } else {
            kept = "no checkpoint was kept"
        }
        return "save step \(step) next time with early stopping or a best checkpoint (\(kept))"
    }
}
