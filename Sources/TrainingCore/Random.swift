import Foundation
import HarrowCore

/// The trainer's generator: the shared SplitMix64 core with the trainer's own stream derivations (`fork`,
/// `normal`), kept as they are so that the shipped starting models stay byte-identical.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var core: SplitMix64
    public init(seed: UInt64) { core = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { core.next() }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { core.unit() }

    public mutating func uniform(_ low: Double, _ high: Double) -> Double { core.uniform(low, high) }

    /// Standard normal by Box–Muller.
    public mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// An independent stream for one purpose (data order, dropout, init), so changing one does not shift the others.
    public func fork(_ purpose: UInt64) -> SeededGenerator {
        var g = SeededGenerator(seed: core.state ^ (purpose &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g
    }
}
