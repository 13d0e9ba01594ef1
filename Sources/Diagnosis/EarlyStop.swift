/// Harrow's early stop: end a trial once val loss has not improved by `minDelta` for `patience` evaluations.
public struct EarlyStop: Sendable, Equatable {
    public var patience: Int
    public var minDelta: Double
    public private(set) var best = Double.infinity
    public private(set) var bestStep: Int?
    public private(set) var sinceBest = 0

    public init(patience: Int, minDelta: Double = 0) {
        self.patience = patience
        self.minDelta = minDelta
    }

    /// Feeds one val-loss evaluation; true when the trial should stop.
    public mutating func observe(step: Int, value: Double) -> Bool {
        guard value.isFinite else { return false }
        if value < best - minDelta {
            best = value
            bestStep = step
            sinceBest = 0
        } else {
            sinceBest += 1
        }
        return sinceBest >= patience
    }
}
