import Foundation

/// A loss curve: values by training step.
public struct Curve: Sendable, Equatable {
    public var steps: [Int]
    public var values: [Double]

    public init(steps: [Int], values: [Double]) {
        precondition(steps.count == values.count, "a curve needs one value per step")
        self.steps = steps
        self.values = values
    }

    public var count: Int { steps.count }
    public var isEmpty: Bool { steps.isEmpty }

    /// Sorted by step, one point per step (the last written wins), non-finite values removed and counted.
    func cleaned() -> (curve: Curve, nonfinite: Int) {
        var latest: [Int: Double] = [:]
        var nonfinite = 0
        for (s, v) in zip(steps, values) {
            if v.isFinite { latest[s] = v } else { nonfinite += 1 }
        }
        let ordered = latest.keys.sorted()
        return (Curve(steps: ordered, values: ordered.map { latest[$0]! }), nonfinite)
    }

    /// A centred running median: robust to spikes, and unlike an exponential average it does not lag, so
    /// the position of a minimum stays where it was.
    func smoothed(window: Int) -> [Double] {
        let n = values.count
        guard window > 1, n > 2 else { return values }
        let half = window / 2
        return (0..<n).map { i in
            let lo = max(0, i - half), hi = min(n - 1, i + half)
            let w = values[lo...hi].sorted()
            return w.count % 2 == 1 ? w[w.count / 2] : (w[w.count / 2 - 1] + w[w.count / 2]) / 2
        }
    }

    /// The smoothing window for this many points: about a tenth of the curve, odd, from 1 to 21.
    static func window(for n: Int) -> Int {
        let w = max(1, min(21, n / 10))
        return w % 2 == 0 ? w + 1 : w
    }
}

/// Least-squares slope of y over x.
func slope(_ x: [Double], _ y: [Double]) -> Double {
    let n = Double(x.count)
    guard n >= 2 else { return 0 }
    let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
    var sxy = 0.0, sxx = 0.0
    for (a, b) in zip(x, y) {
        sxy += (a - mx) * (b - my)
        sxx += (a - mx) * (a - mx)
    }
    return sxx > 0 ? sxy / sxx : 0
}

func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
