import Foundation
import Sweep
import HarrowCore

/// Which parameter mattered: for each varying parameter, the metric's mean ± standard error at each of its
/// values (marginal over the others), and its share of the metric's variance. Pure.
///
/// For a grid the share is a one-way ANOVA per parameter (its between-level sum of squares over the total),
/// with one interaction, of the two strongest parameters, when every pair of their values was run more than once
/// between them. For random and bayes sweeps, whose designs are not balanced, it is the squared Spearman rank
/// correlation of a numeric parameter with the metric (η² for a categorical one).
public enum Effects {
    public struct Level: Sendable, Equatable {
        public var value: ParamValue
        public var n: Int
        public var mean: Double
        /// Standard error of the mean (nil with a single run).
        public var stderr: Double?
    }

    public struct Effect: Sendable, Equatable {
        public var parameter: String
        /// In the parameter's own order (numbers ascending).
        public var levels: [Level]
        /// Share of the metric's variance (0…1).
        public var share: Double
        /// Spearman's rho with the metric, for numeric parameters of unbalanced designs.
        public var rho: Double?
    }

    public struct Interaction: Sendable, Equatable {
        public var parameters: (String, String)
        public var share: Double
        public static func == (a: Interaction, b: Interaction) -> Bool { a.parameters == b.parameters && a.share == b.share }
    }

    public struct Analysis: Sendable, Equatable {
        public var metric: String
        /// Strongest first.
        public var effects: [Effect]
        public var interaction: Interaction?
        public var runs: Int
        public var balanced: Bool
    }

    /// `rows`: each finished run's parameters and its metric. `lowerIsBetter` picks the best level.
    public static func analyze(
        _ rows: [(params: [String: ParamValue], value: Double)], parameters: [String], metric: String,
        grid: Bool
    ) -> Analysis {
        let rows = rows.filter { $0.value.isFinite }
        let values = rows.map(\.value)
        let grand = mean(values)
        let total = values.reduce(0) { $0 + ($1 - grand) * ($1 - grand) }
        var effects: [Effect] = []
        for name in parameters {
            let groups = Dictionary(grouping: rows.indices.compactMap { i in rows[i].params[name].map { ($0, rows[i].value) } }, by: \.0)
            guard groups.count > 1 else { continue }
            let levels = groups.map { value, members -> Level in
                let v = members.map(\.1)
                let m = mean(v)
                let sd = v.count > 1 ? (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot() : nil
                return Level(value: value, n: v.count, mean: m, stderr: sd.map { $0 / Double(v.count).squareRoot() })
            }.sorted { order($0.value, $1.value) }
            let between = levels.reduce(0) { $0 + Double($1.n) * ($1.mean - grand) * ($1.mean - grand) }
            var effect = Effect(parameter: name, levels: levels, share: total > 0 ? between / total : 0, rho: nil)
            if !grid, levels.allSatisfy({ $0.value.number != nil }) {
                let pairs = rows.compactMap { r in r.params[name]?.number.map { ($0, r.value) } }
                if let rho = spearman(pairs.map(\.0), pairs.map(\.1)) {
                    effect.rho = rho
                    effect.share = rho * rho
                }
            }
            effects.append(effect)
        }
        effects.sort { $0.share > $1.share || ($0.share == $1.share && $0.parameter < $1.parameter) }
        var interaction: Interaction?
        if grid, effects.count >= 2, total > 0 {
            interaction = Self.interaction(rows, effects[0], effects[1], grand: grand, total: total)
        }
        let balanced = effects.allSatisfy { e in Set(e.levels.map(\.n)).count == 1 }
        return Analysis(metric: metric, effects: effects, interaction: interaction, runs: rows.count, balanced: balanced)
    }

    /// The two-way interaction's share: Σ over cells of n·(cell mean − row mean − column mean + grand)², given every
    /// cell holds at least two runs (otherwise it cannot be told from noise and is not reported).
    static func interaction(
        _ rows: [(params: [String: ParamValue], value: Double)], _ a: Effect, _ b: Effect, grand: Double,
        total: Double
    ) -> Interaction? {
        var cells: [[ParamValue]: [Double]] = [:]
        for r in rows {
            guard let x = r.params[a.parameter], let y = r.params[b.parameter] else { continue }
            cells[[x, y], default: []].append(r.value)
        }
        guard cells.count == a.levels.count * b.levels.count, cells.values.allSatisfy({ $0.count >= 2 }) else { return nil }
        let rowMean = Dictionary(uniqueKeysWithValues: a.levels.map { ($0.value, $0.mean) })
        let colMean = Dictionary(uniqueKeysWithValues: b.levels.map { ($0.value, $0.mean) })
        var ss = 0.0
        for (key, v) in cells {
            let d = mean(v) - rowMean[key[0]]! - colMean[key[1]]! + grand
            ss += Double(v.count) * d * d
        }
        return Interaction(parameters: (a.parameter, b.parameter), share: ss / total)
    }

    /// "lr explains 71% of the variance of val/loss; lora_r 3%; the best lr is 0.003 (−0.21 vs 0.0001)".
    public static func sentence(_ a: Analysis, lowerIsBetter: Bool) -> String? {
        guard let top = a.effects.first else { return nil }
        func pct(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
        var parts = ["\(top.parameter) explains \(pct(top.share)) of the variance of \(a.metric)"]
        parts += a.effects.dropFirst().prefix(3).map { "\($0.parameter) \(pct($0.share))" }
        var text = parts.joined(separator: "; ")
        if let i = a.interaction, i.share >= 0.05 { text += "; \(i.parameters.0) × \(i.parameters.1) \(pct(i.share))" }
        let ranked = top.levels.sorted { lowerIsBetter ? $0.mean < $1.mean : $0.mean > $1.mean }
        if let best = ranked.first, let worst = ranked.last, best.value != worst.value {
            text += "; the best \(top.parameter) is \(best.value.plain) (\(signed(best.mean - worst.mean)) vs \(worst.value.plain))"
        }
        return text
    }

    /// In a one-change-at-a-time design, the change that moved the metric most from the baseline: "one change at a
    /// time from baseline: lr 0.003 → 0.1 moved val/loss most (+2.64, worse)". Pure.
    static func largestChange(_ reading: Ablation.Reading, values: [Double?], metric: String, lowerIsBetter: Bool) -> String? {
        guard let base = values[reading.baseline] else { return nil }
        let moves = reading.changes.indices.compactMap { i -> (Int, Double)? in
            guard i != reading.baseline, !reading.changes[i].isEmpty, let v = values[i] else { return nil }
            return (i, v - base)
        }
        guard let (i, d) = moves.max(by: { abs($0.1) < abs($1.1) }) else { return nil }
        let change = reading.changes[i].map { "\($0.name) \($0.from) → \($0.to)" }.joined(separator: ", ")
        let better = lowerIsBetter ? d < 0 : d > 0
        return "one change at a time from the baseline: \(change) moved \(metric) most (\(signed(d)), \(better ? "better" : "worse"))"
    }

    static func signed(_ x: Double) -> String {
        let s = String(format: abs(x) >= 0.01 ? "%.2f" : "%.2g", abs(x))
        return (x < 0 ? "−" : "+") + s
    }

    static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    /// Numbers ascending, then text.
    static func order(_ a: ParamValue, _ b: ParamValue) -> Bool {
        switch (a.number, b.number) {
        case let (x?, y?): return x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a.plain < b.plain
        }
    }

    /// Spearman's rho with average ranks for ties; nil when either side is constant.
    static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count >= 3 else { return nil }
        let rx = ranks(x), ry = ranks(y)
        let mx = mean(rx), my = mean(ry)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in rx.indices {
            sxy += (rx[i] - mx) * (ry[i] - my)
            sxx += (rx[i] - mx) * (rx[i] - mx)
            syy += (ry[i] - my) * (ry[i] - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    static func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var out = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, v[order[j + 1]] == v[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { out[order[k]] = rank }
            i = j + 1
        }
        return out
    }
}

/// The runs no other run beats on both of two scores (higher is better on each). Pure.
public enum Pareto {
    /// Indices of the non-dominated points, by ascending `x`.
    public static func front(x: [Double], y: [Double]) -> [Int] {
        let order = x.indices.filter { x[$0].isFinite && y[$0].isFinite }.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : y[$0] > y[$1] }
        var front: [Int] = []
        var best = -Double.infinity
        // From the highest x down: a point is on the front when its y beats every point with a higher x.
        for i in order where y[i] > best {
            front.append(i)
            best = y[i]
        }
        return front.reversed()
    }
}
