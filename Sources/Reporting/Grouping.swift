import Foundation

/// Mean and sample standard deviation.
public struct Spread: Sendable, Equatable {
    public var mean: Double
    public var sd: Double
    public var n: Int

    public init?(_ values: [Double]) {
        let v = values.filter(\.isFinite)
        guard !v.isEmpty else { return nil }
        n = v.count
        let m = v.reduce(0, +) / Double(v.count)
        mean = m
        sd = v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
    }
}

public enum SeedGroups {
    /// The parameter that names a repeat of the same configuration.
    public static let seedKey = "seed"

    /// Groups items whose parameters are equal but for the seed, in order of each group's first member.
    public static func group<T>(_ items: [T], params: (T) -> [String: String]) -> [[T]] {
        var order: [String] = []
        var groups: [String: [T]] = [:]
        for item in items {
            let key = params(item).filter { $0.key != seedKey }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: "\u{1}")
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(item)
        }
        return order.map { groups[$0]! }
    }

    /// Mean ± sd of curves at the steps every member logged.
    public static func meanCurve(_ curves: [(steps: [Int], values: [Double])]) -> (steps: [Int], mean: [Double], sd: [Double]) {
        guard let first = curves.first else { return ([], [], []) }
        var common = Set(first.steps)
        for c in curves.dropFirst() { common.formIntersection(c.steps) }
        let steps = first.steps.filter { common.contains($0) }
        let lookups = curves.map { c in Dictionary(zip(c.steps, c.values), uniquingKeysWith: { _, last in last }) }
        var mean: [Double] = [], sd: [Double] = []
        for s in steps {
            let spread = Spread(lookups.compactMap { $0[s] })
            mean.append(spread?.mean ?? .nan)
            sd.append(spread?.sd ?? .nan)
        }
        return (steps, mean, sd)
    }
}
