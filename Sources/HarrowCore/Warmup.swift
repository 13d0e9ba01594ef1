/// The practice's rule for warmup, shared by the plan's advice, the diagnosis and `harrow next`: about 1% of the
/// steps per epoch, at most about 10%. A loss flat at the start under a warmup many times longer than that was
/// waiting for its learning rate (shorten the warmup); under a usual one, it needs more warmup or a higher rate.
public enum Warmup {
    /// The usual warmup share for a run of `epochs` epochs: past 10%, the share spent warming up is what a long run
    /// no longer needs.
    public static func usualShare(epochs: Double) -> Double { min(epochs / 100, 0.1) }

    /// A warmup more than this many times the usual share passes much of the run at a reduced learning rate.
    public static let longFactor = 4.0

    public static func isLong(_ share: Double, epochs: Double) -> Bool { share > longFactor * usualShare(epochs: epochs) }
}
