import HarrowCore

/// The trainer's generator is the shared SplitMix64: its seeds give the same weights, data order and dropout on
/// every platform and Swift release (nothing here uses the standard library's shuffle or bounded integers).
public typealias SeededGenerator = SplitMix64

extension SplitMix64 {
    /// Standard normal (Box–Muller), for weight initialisation.
    public mutating func normal() -> Double { gaussian() }
}
