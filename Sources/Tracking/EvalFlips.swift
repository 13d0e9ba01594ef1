/// An eval item whose correctness changed between two runs: the daily question "what broke, what got fixed".
public struct EvalFlip: Sendable, Equatable {
    public var evalset: String
    public var item: String
    public var dimension: String
    public var taskType: String
    public var prompt: String?
    /// Correct in the reference run (so true means pass → fail).
    public var before: Bool

    public var change: String { before ? "pass→fail" : "fail→pass" }

    /// Items scored in both runs on the same evalset whose correctness differs, in the reference's order.
    public static func between(_ reference: [StoredEval], _ other: [StoredEval]) -> [EvalFlip] {
        var flips: [EvalFlip] = []
        for a in reference {
            guard let b = other.first(where: { $0.evalset == a.evalset }) else { continue }
            let after = Dictionary(b.items.map { ($0.id, $0.correct) }) { x, _ in x }
            for item in a.items {
                guard let correct = after[item.id], correct != item.correct else { continue }
                flips.append(
                    EvalFlip(
                        evalset: a.evalset, item: item.id, dimension: item.dimension, taskType: item.taskType,
                        prompt: item.prompt, before: item.correct))
            }
        }
        return flips
    }
}
