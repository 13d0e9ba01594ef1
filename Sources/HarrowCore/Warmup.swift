/// The practice's rule for warmup: about 1% of the steps per epoch. A loss flat at the start under a warmup much
/// longer than that was waiting for its learning rate (shorten the warmup); under a usual one, it needs more
/// warmup or a higher learning rate.
public enum Warmup {
    /// The usual warmup share for a run of `epochs` epochs (at least 1%).
    public static func usualShare(epochs: Double?) -> Double { 0.01 * max(1, epochs ?? 1) }

    /// A warmup half again as long as usual or longer.
    public static func isLong(_ share: Double, epochs: Double?) -> Bool { share > 1.5 * usualShare(epochs: epochs) }
}
