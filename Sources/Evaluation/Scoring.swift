import Foundation

/// How one item came out.
public struct ItemResult: Sendable, Equatable {
    public var id: String
    public var dimension: String
    public var taskType: String
    /// `acc`: the choice with the highest summed log-likelihood is the answer (generative: the check passed).
    public var correct: Bool
    /// `acc_norm`: the same with each sum divided by the choice's length in bytes.
    public var correctNorm: Bool
    public var chosen: Int?
    public var chosenNorm: Int?
    public var logprobs: [Double]?
    /// The generated text of a generative item, the reply of a judged one.
    public var text: String?
    /// A judged item's scores by rubric dimension, and the judge's rationale.
    public var scores: [String: Double]? = nil
    public var rationale: String? = nil
}

/// Mean, count and standard error of a 0/1 score over a group of items.
public struct Score: Sendable, Equatable {
    public var dimension: String
    /// nil for a whole dimension.
    public var taskType: String?
    public var n: Int
    public var acc: Double
    public var accStderr: Double
    public var accNorm: Double
    public var accNormStderr: Double
    /// A judged set's rubric dimension: the mean score (`acc` is then the share at or above its threshold).
    public var mean: Double? = nil
    public var meanStderr: Double? = nil
}

public struct EvalResult: Sendable {
    public var evalset: String
    public var items: [ItemResult]
    public var dimensions: [Score]
    public var taskTypes: [Score]
    /// Weighted mean of the dimensions' acc (weights from the manifest; 1 where none is given).
    public var total: Double
    public var totalStderr: Double
    public var totalNorm: Double
    /// A judged set: the judge's name, and how many judgements came from the cache.
    public var judge: String? = nil
    public var cachedJudgements = 0
}

public enum Scoring {
    /// The index of the highest score. Ties are broken by a hash of the item id and the index, never by
    /// position (files often list the right answer first, which would flatter a position rule).
    public static func choose(_ scores: [Double], item id: String) -> Int? {
        guard let best = scores.filter({ $0.isFinite }).max() else { return nil }
        let tied = scores.indices.filter { scores[$0] == best }
        return tied.min { tieHash(id, $0) < tieHash(id, $1) }
    }

    static func tieHash(_ id: String, _ i: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h = (h ^ UInt64(i)) &* 0x100_0000_01b3
        return h ^ (h >> 29)
    }

    /// Scores a choice item from the summed log-likelihood of each choice as a continuation of the prompt.
    public static func choice(_ item: EvalItem, choices: [String], answer: Int, logprobs: [Double]) -> ItemResult {
        let chosen = choose(logprobs, item: item.id)
        let normalised = zip(logprobs, choices).map { $0 / Double(max(1, $1.utf8.count)) }
        let chosenNorm = choose(normalised, item: item.id)
        return ItemResult(
            id: item.id, dimension: item.dimension, taskType: item.taskType, correct: chosen == answer,
            correctNorm: chosenNorm == answer, chosen: chosen, chosenNorm: chosenNorm, logprobs: logprobs, text: nil)
    }

    /// Scores a generative item's text by its check.
    public static func generative(_ item: EvalItem, check: String, references: [String], text: String, set: Evalset) -> ItemResult {
        let ok = passes(check: check, references: references, text: text, refusal: set.refusalPatterns, abstain: set.abstainPatterns)
        return ItemResult(
            id: item.id, dimension: item.dimension, taskType: item.taskType, correct: ok, correctNorm: ok,
            chosen: nil, chosenNorm: nil, logprobs: nil, text: text)
    }

    public static func passes(check: String, references: [String], text: String, refusal: [String], abstain: [String]) -> Bool {
        let t = normalise(text)
        switch check {
        case "exact": return references.contains { normalise($0) == t }
        case "contains": return references.contains { t.contains(normalise($0)) }
        case "regex":
            return references.contains { pattern in
                guard let r = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return false }
                return r.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            }
        case "refusal": return refusal.contains { t.contains(normalise($0)) }
        case "abstain": return abstain.contains { t.contains(normalise($0)) }
        default: return false
        }
    }

    /// Lower case, straight apostrophes, single spaces, no trailing punctuation.
    static func normalise(_ s: String) -> String {
        var t = s.lowercased().replacingOccurrences(of: "\u{2019}", with: "'")
        t = t.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        while let last = t.last, ".!?,;:".contains(last) { t.removeLast() }
        return t
    }

    /// Per dimension, per dimension and task type, and the weighted total.
    public static func aggregate(_ items: [ItemResult], evalset: String, weights: [String: Double]) -> EvalResult {
        func score(_ group: [ItemResult], dimension: String, taskType: String?) -> Score {
            let (acc, se) = meanAndStderr(group.map { $0.correct ? 1 : 0 })
            let (accN, seN) = meanAndStderr(group.map { $0.correctNorm ? 1 : 0 })
            return Score(
                dimension: dimension, taskType: taskType, n: group.count, acc: acc, accStderr: se, accNorm: accN, accNormStderr: seN)
        }
        let byDimension = Dictionary(grouping: items, by: \.dimension)
        let dimensions = byDimension.keys.sorted().map { score(byDimension[$0]!, dimension: $0, taskType: nil) }
        let byTask = Dictionary(grouping: items) { "\($0.dimension)\u{0}\($0.taskType)" }
        let taskTypes = byTask.keys.sorted().map { key -> Score in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            return score(byTask[key]!, dimension: parts[0], taskType: parts[1])
        }
        let w = dimensions.map { weights[$0.dimension] ?? 1 }
        let sum = w.reduce(0, +)
        let total = sum > 0 ? zip(dimensions, w).map { $0.acc * $1 }.reduce(0, +) / sum : 0
        let totalNorm = sum > 0 ? zip(dimensions, w).map { $0.accNorm * $1 }.reduce(0, +) / sum : 0
        let totalSE = sum > 0 ? zip(dimensions, w).map { pow($1 / sum * $0.accStderr, 2) }.reduce(0, +).squareRoot() : 0
        return EvalResult(
            evalset: evalset, items: items, dimensions: dimensions, taskTypes: taskTypes, total: total,
            totalStderr: totalSE, totalNorm: totalNorm)
    }

    /// A judged reply: usable by the set's rule (`correct`), with its scores and the judge's rationale.
    public static func judged(_ r: JudgeRequest, taskType: String, judgement j: Judgement, usability: Usability) throws -> ItemResult {
        let usable = try usability.isUsable(j.scores, rubric: r.rubric)
        return ItemResult(
            id: r.item, dimension: "usable", taskType: taskType, correct: usable, correctNorm: usable, chosen: nil, chosenNorm: nil,
            logprobs: nil, text: r.reply, scores: j.scores, rationale: j.rationale)
    }

    /// A judged set's groups: `usable` and each rubric dimension (share at or above its threshold, and mean score),
    /// over all items and per first- and second-level task type (`safety` and `safety/refusal`). The total is the
    /// usability rate.
    public static func aggregateJudged(_ items: [ItemResult], evalset: String, rubric: Rubric) -> EvalResult {
        var taskTypes = Set(items.map(\.taskType))
        for t in Array(taskTypes) where t.contains("/") { taskTypes.insert(String(t.split(separator: "/")[0])) }
        func members(_ t: String?) -> [ItemResult] {
            guard let t else { return items }
            return items.filter { $0.taskType == t || $0.taskType.hasPrefix(t + "/") }
        }
        func group(_ facet: String, _ t: String?) -> Score {
            let group = members(t)
            guard let d = rubric[facet] else {
                let (acc, se) = meanAndStderr(group.map { $0.correct ? 1 : 0 })
                return Score(dimension: facet, taskType: t, n: group.count, acc: acc, accStderr: se, accNorm: acc, accNormStderr: se)
            }
            let scores = group.compactMap { $0.scores?[d.name] }
            let (pass, passSE) = meanAndStderr(scores.map { $0 >= d.threshold ? 1 : 0 })
            let (mean, meanSE) = meanAndStderr(scores)
            return Score(
                dimension: facet, taskType: t, n: scores.count, acc: pass, accStderr: passSE, accNorm: pass, accNormStderr: passSE,
                mean: mean, meanStderr: meanSE)
        }
        let facets = ["usable"] + rubric.names
        let dimensions = facets.map { group($0, nil) }
        let byTask = facets.flatMap { f in taskTypes.sorted().map { group(f, $0) } }
        let usable = dimensions[0]
        return EvalResult(
            evalset: evalset, items: items, dimensions: dimensions, taskTypes: byTask, total: usable.acc, totalStderr: usable.accStderr,
            totalNorm: usable.acc)
    }

    /// Mean and standard error of the mean (sample standard deviation / √n), as lm-evaluation-harness reports.
    public static func meanAndStderr(_ xs: [Double]) -> (Double, Double) {
        guard !xs.isEmpty else { return (0, 0) }
        let n = Double(xs.count)
        let mean = xs.reduce(0, +) / n
        guard xs.count > 1 else { return (mean, 0) }
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
        return (mean, (variance / n).squareRoot())
    }

    /// True when `acc` and `acc_norm` put two results in opposite order: worth saying, since the choice of
    /// metric then decides which run "won".
    public static func metricsDisagree(_ a: EvalResult, _ b: EvalResult) -> Bool {
        (a.total - b.total) * (a.totalNorm - b.totalNorm) < 0
    }
}
