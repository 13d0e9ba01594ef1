import Foundation

/// SplitMix64: small, fast, and the same sequence on every platform, which seed determinism needs.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

    /// Standard normal by Box–Muller.
    public mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// An independent stream for one purpose (data order, dropout, init), so changing one does not shift the others.
    public func fork(_ purpose: UInt64) -> SeededGenerator {
        var g = SeededGenerator(seed: state ^ (purpose &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g
    }
}
