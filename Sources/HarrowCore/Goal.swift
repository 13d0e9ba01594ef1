/// Which way a metric improves. Declared where a metric is chosen (an experiment's `metric.goal`, as W&B writes
/// it; a dashboard's `goal`; a gate's `goals`), else told by Harrow's own names: losses and perplexities fall,
/// everything else (scores, accuracies, forgetting, which is a score change) rises.
public enum Goal: String, Sendable, Hashable, Codable, CaseIterable {
    case minimize, maximize

    public var lowerIsBetter: Bool { self == .minimize }

    /// The direction Harrow's names imply, for a metric nothing declares: `val/loss`, `train/loss@qa`, `ppl`,
    /// `val/loss:last` fall; the rest rise. A `:min|max|last` suffix is the statistic, not the name.
    public static func of(metric name: String) -> Goal {
        var key = name.lowercased()
        if let colon = key.lastIndex(of: ":"), ["min", "max", "last"].contains(String(key[key.index(after: colon)...])) {
            key = String(key[..<colon])
        }
        return key.contains("loss") || key.contains("perplexity") || key.hasSuffix("ppl") ? .minimize : .maximize
    }

    /// Whether `a` is better than `b`.
    public func prefers(_ a: Double, over b: Double) -> Bool { lowerIsBetter ? a < b : a > b }

    /// How much worse `now` is than `before`: positive when it went the wrong way.
    public func worsening(from before: Double, to now: Double) -> Double { lowerIsBetter ? now - before : before - now }
}
