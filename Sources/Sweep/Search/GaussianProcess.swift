import Foundation
import HarrowCore

/// Gaussian-process regression as W&B's bayes search uses it: scikit-learn's `GaussianProcessRegressor` with an
/// isotropic `Matern(nu=1.5)` kernel of unit amplitude, `alpha = 1e-7` on the diagonal, targets standardised by the
/// caller (wandb/sweeps `src/sweeps/bayes_search.py`, `fit_normalized_gaussian_process`).
///
/// The length scale is fitted as scikit-learn fits it (see `fit`), within its default bounds [1e-5, 1e5].
public struct GaussianProcess: Sendable {
    public let points: [[Double]]
    public let lengthScale: Double
    public let noise: Double
    /// Lower Cholesky factor of K + noise·I, row-major.
    let factor: [Double]
    /// (K + noise·I)⁻¹ y.
    let weights: [Double]
    public let logMarginalLikelihood: Double

    public static let defaultNoise = 1e-7
    public static let lengthScaleBounds = (1e-5, 1e5)

    /// Matérn ν = 3/2 at distance r: (1 + √3 r/l) exp(−√3 r/l).
    public static func matern(_ a: [Double], _ b: [Double], lengthScale l: Double) -> Double {
        var d2 = 0.0
        for i in a.indices { let d = (a[i] - b[i]) / l; d2 += d * d }
        let k = 3.0.squareRoot() * d2.squareRoot()
        return (1 + k) * exp(-k)
    }

    /// A fit with a given length scale, or nil when the kernel matrix is not positive definite.
    public init?(points: [[Double]], values: [Double], lengthScale: Double, noise: Double = defaultNoise) {
        let n = points.count
        var k = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                let v = Self.matern(points[i], points[j], lengthScale: lengthScale)
                k[i * n + j] = v
                k[j * n + i] = v
            }
            k[i * n + i] += noise
        }
        guard let l = Self.cholesky(k, n) else { return nil }
        let alpha = Self.solveUpper(l, n, Self.solveLower(l, n, values))
        var fit = 0.0, logDet = 0.0
        for i in 0..<n { fit += values[i] * alpha[i]; logDet += log(l[i * n + i]) }
        self.points = points
        self.lengthScale = lengthScale
        self.noise = noise
        factor = l
        weights = alpha
        logMarginalLikelihood = -0.5 * fit - logDet - 0.5 * Double(n) * log(2 * .pi)
    }

    /// The fit whose length scale maximises the log marginal likelihood, found as scikit-learn finds it: a local
    /// ascent from l = 1 and from two more starts drawn log-uniformly within the bounds (its `n_restarts_optimizer=2`,
    /// from a fixed generator as its `random_state=2`), the best of the three kept.
    public static func fit(points: [[Double]], values: [Double], noise: Double = defaultNoise) -> GaussianProcess? {
        let lo = log(lengthScaleBounds.0), hi = log(lengthScaleBounds.1)
        func lml(_ t: Double) -> Double {
            GaussianProcess(points: points, values: values, lengthScale: exp(t), noise: noise)?.logMarginalLikelihood ?? -.infinity
        }
        var rng = SplitMix64(seed: 2)
        var best: (t: Double, f: Double)?
        for start in [0.0, lo + (hi - lo) * rng.unit(), lo + (hi - lo) * rng.unit()] {
            let found = climb(from: start, within: lo, hi, lml)
            if found.f > (best?.f ?? -.infinity) { best = found }
        }
        guard let best, best.f > -.infinity else { return nil }
        return GaussianProcess(points: points, values: values, lengthScale: exp(best.t), noise: noise)
    }

    /// A local maximum of f on [lo, hi] from `start`: steps doubling uphill until f falls (or a bound is reached),
    /// then a golden-section search of the last bracket.
    static func climb(from start: Double, within lo: Double, _ hi: Double, _ f: (Double) -> Double) -> (t: Double, f: Double) {
        var a = start, fa = f(a)
        let h = 0.05
        let up = f(min(a + h, hi)), down = f(max(a - h, lo))
        guard up > fa || down > fa else { return (a, fa) }
        let direction = up >= down ? 1.0 : -1.0
        var step = h, previous = a
        while true {
            let next = min(max(a + direction * step, lo), hi)
            let fn = f(next)
            if fn <= fa || next == a {
                // The maximum lies between the point before a and next.
                var left = min(previous, next), right = max(previous, next)
                let ratio = (5.0.squareRoot() - 1) / 2
                var c = right - ratio * (right - left), d = left + ratio * (right - left)
                var fc = f(c), fd = f(d)
                for _ in 0..<50 where right - left > 1e-10 {
                    if fc > fd {
                        right = d; d = c; fd = fc; c = right - ratio * (right - left); fc = f(c)
                    } else {
                        left = c; c = d; fc = fd; d = left + ratio * (right - left); fd = f(d)
                    }
                }
                let candidates = [(a, fa), (c, fc), (d, fd)]
                return candidates.max { $0.1 < $1.1 }!
            }
            if next == lo || next == hi {
                return (next, fn)
            }
            previous = a
            a = next
            fa = fn
            step *= 2
        }
    }

    /// Posterior mean and standard deviation at `x` (the standard deviation of the latent function, as
    /// scikit-learn's `predict(return_std=True)`, negative variances clipped to zero).
    public func predict(_ x: [Double]) -> (mean: Double, std: Double) {
        let n = points.count
        let kx = points.map { Self.matern($0, x, lengthScale: lengthScale) }
        var mean = 0.0
        for i in 0..<n { mean += kx[i] * weights[i] }
        let v = Self.solveLower(factor, n, kx)
        var variance = 1.0
        for i in 0..<n { variance -= v[i] * v[i] }
        return (mean, max(variance, 0).squareRoot())
    }

    // MARK: Small dense linear algebra (n ≤ a hundred or so)

    /// Lower-triangular L with L Lᵀ = a, or nil when a is not positive definite.
    static func cholesky(_ a: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var s = a[j * n + j]
            for k in 0..<j { s -= l[j * n + k] * l[j * n + k] }
            guard s > 0, s.isFinite else { return nil }
            let d = s.squareRoot()
            l[j * n + j] = d
            for i in (j + 1)..<max(n, j + 1) {
                var t = a[i * n + j]
                for k in 0..<j { t -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = t / d
            }
        }
        return l
    }

    /// Solves L x = b for lower-triangular L.
    static func solveLower(_ l: [Double], _ n: Int, _ b: [Double]) -> [Double] {
        var x = b
        for i in 0..<n {
            var s = x[i]
            for k in 0..<i { s -= l[i * n + k] * x[k] }
            x[i] = s / l[i * n + i]
        }
        return x
    }

    /// Solves Lᵀ x = b for lower-triangular L.
    static func solveUpper(_ l: [Double], _ n: Int, _ b: [Double]) -> [Double] {
        var x = b
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = x[i]
            for k in (i + 1)..<max(n, i + 1) { s -= l[k * n + i] * x[k] }
            x[i] = s / l[i * n + i]
        }
        return x
    }
}

/// The standard normal's density and distribution function.
enum Normal {
    static func pdf(_ z: Double) -> Double { exp(-0.5 * z * z) / (2 * Double.pi).squareRoot() }
    static func cdf(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
}
