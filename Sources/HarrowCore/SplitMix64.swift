import Foundation

/// SplitMix64 (Steele, Lea and Flood, 2014): one word of state and the same sequence on every platform and Swift
/// release, which reproducible sweeps, the shipped world, the trainer's seeds and the fuzzer's inputs rest on.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    private var spareGaussian: Double?

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

    /// Uniform in 0..<n (n ≥ 1), without modulo bias: the few lowest outputs that would favour some values
    /// are drawn again. This is the one bounded-integer rule; nothing here uses the standard library's.
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        let threshold = (0 &- bound) % bound
        while true {
            let r = next()
            if r >= threshold { return Int(r % bound) }
        }
    }

    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// Fisher–Yates from the end with `below` (the standard library's shuffle may change between releases).
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
        return a
    }

    /// Standard normal by the Box–Muller transform; the second value of each pair serves the next call.
    public mutating func gaussian() -> Double {
        if let g = spareGaussian {
            spareGaussian = nil
            return g
        }
        let u1 = max(unit(), .leastNonzeroMagnitude), u2 = unit()
        let r = (-2 * log(u1)).squareRoot()
        spareGaussian = r * sin(2 * .pi * u2)
        return r * cos(2 * .pi * u2)
    }

    /// An independent stream for one purpose (a part of the world, one input of a fuzz campaign), so adding to
    /// one leaves the others unchanged.
    public func fork(_ purpose: UInt64) -> SplitMix64 {
        var g = SplitMix64(seed: state ^ (purpose &* 0xD1B5_4A32_D192_ED03))
        _ = g.next()
        return g
    }
}
