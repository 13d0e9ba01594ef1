/// A value with its standard error (0 where none is known): a 3H score, a total, a loss.
public struct Estimate: Sendable, Equatable {
    public var value: Double
    public var stderr: Double

    public init(_ value: Double, stderr: Double = 0) {
        self.value = value
        self.stderr = stderr
    }
}

/// The names under which a run's values are known to gates, comparisons and reports.
public enum ValueNames {
    /// The three evaluation dimensions, in the order reports show them.
    public static let dimensions = ["helpful", "honest", "harmless"]
    /// Every name a gate may test: the dimensions, the weighted total, general-data score and forgetting
    /// (general − its starting checkpoint's), the gain over the starting checkpoint (total and per dimension), and
    /// val loss at its best and at the end.
    public static let all =
        dimensions + ["total", "general", "forgetting", "gain"] + dimensions.map { "gain/" + $0 }
        + ["val_loss_best", "val_loss_final"]

    /// A judged set's names among `names`, in reading order: `usable`, `gain/usable`, then each dimension's
    /// `DIMENSION/usable` and `DIMENSION/mean` (per-task-type names are left to `--json`).
    public static func judged(in names: some Sequence<String>) -> [String] {
        let present = Set(names)
        let dims = Set(present.compactMap { n in n.hasSuffix("/mean") ? String(n.dropLast(5)) : nil })
        let ordered = dimensions.filter(dims.contains) + dims.subtracting(dimensions).sorted()
        return (["usable", "gain/usable"] + ordered.map { "\($0)/usable" } + ordered.map { "\($0)/mean" }).filter(present.contains)
    }
}
