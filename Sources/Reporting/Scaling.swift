import Foundation

/// A power law `y = a · n^b` fitted by ordinary least squares on `log y` against `log n`: every point counts once
/// (seed repeats of one size are separate points, so their scatter is the noise the interval measures). Intervals
/// are Student t intervals from the fit's standard errors (Draper & Smith, *Applied Regression Analysis*, 3rd ed.,
/// §3.1–3.2), and the size at which the fit reaches a target is Fieller's inverse-regression interval (§3.2): the
/// sizes where the 95% band of the fitted line crosses the target. Pure: no I/O.
public struct PowerLaw: Sendable, Equatable {
    /// The fitted line: `log y = intercept + exponent · log n`.
    public var intercept: Double
    public var exponent: Double
    /// The exponent's interval at `level`.
    public var low: Double
    public var high: Double
    public var level: Double
    /// Points fitted, and how many distinct sizes they came from.
    public var points: Int
    public var sizes: Int
    /// The smallest and largest size fitted.
    public var smallest: Double
    public var largest: Double
    /// Residual standard deviation on the log scale (0 for an exact fit).
    public var residualSD: Double
    /// The t quantile the intervals use, with `points − 2` degrees of freedom.
    public var t: Double
    /// Whether the sizes' means stray from the line beyond the scatter of repeats at one size; nil without repeats.
    public var lackOfFit: LackOfFit?
    /// Mean of log n and the sum of squares about it: the line's band widens away from the centre of the sizes.
    var meanLogN: Double
    var sxx: Double

    /// The lack-of-fit F test of a regression with repeats (Draper & Smith §2.1): the residual sum of squares split
    /// into pure error (repeats about their size's mean, m − k degrees of freedom) and lack of fit (the rest, k − 2);
    /// F is their ratio of mean squares. A small p says a power law does not describe the sizes' means, so its
    /// exponent is an average slope over the sizes run rather than a law to extrapolate.
    public struct LackOfFit: Sendable, Equatable {
        public var f: Double
        public var p: Double
    }

    /// `a` in `a · n^b`.
    public var scale: Double { exp(intercept) }
    public var degreesOfFreedom: Int { points - 2 }
    /// True when the exponent's interval excludes 0: the data show a trend beyond their scatter.
    public var isTrend: Bool { low > 0 || high < 0 }
    /// Every value was the same: no trend, and no target other than that value is ever reached.
    public var isFlat: Bool { exponent == 0 && residualSD == 0 }

    /// Why no power law was fitted.
    public enum Refusal: Error, Sendable, Equatable {
        /// Fewer than three distinct sizes among the usable points: two sizes fix a line but leave nothing to
        /// test it, and their scatter alone cannot separate the slope's noise from its curvature.
        case tooFewSizes(sizes: Int, leftOut: Int)
    }

    /// The fit over the points whose size and value are both positive and finite (logarithms need them); `leftOut`
    /// in the result counts the others.
    public static func fit(sizes n: [Double], values y: [Double], level: Double = 0.95) -> Result<Fitted, Refusal> {
        let pairs = zip(n, y).filter { $0.0.isFinite && $0.1.isFinite && $0.0 > 0 && $0.1 > 0 }
        let leftOut = min(n.count, y.count) - pairs.count
        let distinct = Set(pairs.map(\.0)).count
        guard distinct >= 3 else { return .failure(.tooFewSizes(sizes: distinct, leftOut: leftOut)) }
        let xs = pairs.map { log($0.0) }, ys = pairs.map { log($0.1) }
        let m = Double(pairs.count)
        let mx = xs.reduce(0, +) / m, my = ys.reduce(0, +) / m
        let sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        // Identical values: the exponent is exactly 0 (summing logs could leave a rounding error in its place).
        let flat = Set(pairs.map(\.1)).count == 1
        let b = flat ? 0 : zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx
        let intercept = flat ? ys[0] : my - b * mx
        let ssr = flat ? 0 : zip(xs, ys).reduce(0) { $0 + pow($1.1 - intercept - b * $1.0, 2) }
        let s = (ssr / (m - 2)).squareRoot()
        let t = StudentT.quantile(0.5 + level / 2, degreesOfFreedom: Double(pairs.count - 2))
        let half = t * s / sxx.squareRoot()
        let law = PowerLaw(
            intercept: intercept, exponent: b, low: b - half, high: b + half, level: level, points: pairs.count,
            sizes: distinct, smallest: pairs.map(\.0).min()!, largest: pairs.map(\.0).max()!, residualSD: s, t: t,
            lackOfFit: lackOfFit(xs, ys, residualSS: ssr, sizes: distinct), meanLogN: mx, sxx: sxx)
        return .success(Fitted(law: law, leftOut: leftOut))
    }

    static func lackOfFit(_ xs: [Double], _ ys: [Double], residualSS: Double, sizes k: Int) -> LackOfFit? {
        let pureDF = xs.count - k, lackDF = k - 2
        guard pureDF > 0, lackDF > 0 else { return nil }
        let pure = Dictionary(grouping: zip(xs, ys), by: \.0).values.reduce(0.0) { sum, group in
            let mean = group.reduce(0) { $0 + $1.1 } / Double(group.count)
            return sum + group.reduce(0) { $0 + ($1.1 - mean) * ($1.1 - mean) }
        }
        let lack = max(0, residualSS - pure)
        guard pure > 0 else { return lack > 0 ? LackOfFit(f: .infinity, p: 0) : nil }
        let f = (lack / Double(lackDF)) / (pure / Double(pureDF))
        // P(F > f) = I_x(d2/2, d1/2) with x = d2 / (d2 + d1 f) (Abramowitz & Stegun 26.6.2).
        let p = StudentT.incompleteBeta(Double(pureDF) / 2, Double(lackDF) / 2, Double(pureDF) / (Double(pureDF) + Double(lackDF) * f))
        return LackOfFit(f: f, p: p)
    }

    /// A fit and the number of points it could not use.
    public struct Fitted: Sendable, Equatable {
        public var law: PowerLaw
        public var leftOut: Int
    }

    /// The fitted value at size `n` (on the log scale a mean, so here the geometric mean at that size).
    public func value(at n: Double) -> Double { exp(intercept + exponent * log(n)) }

    /// The band of the fitted line at size `n` at the fit's level: `t · s · √(1/m + (log n − mean)² / Sxx)` either
    /// side on the log scale.
    public func band(at n: Double) -> (low: Double, high: Double) {
        let u = log(n) - meanLogN
        let half = t * residualSD * (1 / Double(points) + u * u / sxx).squareRoot()
        let centre = intercept + exponent * log(n)
        return (exp(centre - half), exp(centre + half))
    }

    /// Where the trend reaches a value.
    public struct Reach: Sendable, Equatable {
        /// The size at which the fitted line equals the target.
        public var size: Double
        /// The sizes where the line's band crosses the target (Fieller); nil when the band never leaves the
        /// target on one side, which happens exactly when the exponent's interval includes 0.
        public var low: Double?
        public var high: Double?
    }

    /// The size at which the fitted line reaches `target`, with its interval; nil for a flat fit or a target that is
    /// not positive (no power law reaches it).
    public func reach(_ target: Double) -> Reach? {
        guard target > 0, target.isFinite, exponent != 0 else { return nil }
        let d = log(target) - intercept - exponent * meanLogN
        let size = exp(meanLogN + d / exponent)
        // Sizes u (log n − mean) where (d − b u)² ≤ t² s² (1/m + u²/Sxx): a quadratic A u² + B u + C ≤ 0.
        let k = t * t * residualSD * residualSD
        let a = exponent * exponent - k / sxx
        guard a > 0 else { return Reach(size: size, low: nil, high: nil) }
        let bq = -2 * exponent * d, c = d * d - k / Double(points)
        let root = max(0, bq * bq - 4 * a * c).squareRoot()  // 0 up to rounding for an exact fit
        let u1 = (-bq - root) / (2 * a), u2 = (-bq + root) / (2 * a)
        return Reach(size: size, low: exp(meanLogN + min(u1, u2)), high: exp(meanLogN + max(u1, u2)))
    }
}

/// Student's t distribution: its distribution function through the regularised incomplete beta function, and its
/// quantile by bisection on that function.
public enum StudentT {
    /// P(T ≤ t) with `df` degrees of freedom: 1 − I_x(df/2, 1/2) / 2 for t ≥ 0, x = df / (df + t²)
    /// (Abramowitz & Stegun 26.7.1 and 26.5.27).
    public static func cdf(_ t: Double, degreesOfFreedom df: Double) -> Double {
        let tail = 0.5 * incompleteBeta(df / 2, 0.5, df / (df + t * t))
        return t >= 0 ? 1 - tail : tail
    }

    /// The t with P(T ≤ t) = p.
    public static func quantile(_ p: Double, degreesOfFreedom df: Double) -> Double {
        guard p > 0, p < 1, df > 0 else { return p == 0.5 ? 0 : .nan }
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: df) }
        var lo = 0.0, hi = 1.0
        while cdf(hi, degreesOfFreedom: df) < p { lo = hi; hi *= 2 }
        // The distribution function is monotone, so bisection converges to the last bit whatever the degrees of freedom.
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if mid == lo || mid == hi { break }
            if cdf(mid, degreesOfFreedom: df) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz; Press et al.,
    /// *Numerical Recipes*, 3rd ed., §6.4), taken on the side of x where it converges fast.
    static func incompleteBeta(_ a: Double, _ b: Double, _ x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let front = exp(logBeta + a * log(x) + b * log(1 - x))
        if x < (a + 1) / (a + b + 2) { return front * fraction(a, b, x) / a }
        return 1 - front * fraction(b, a, 1 - x) / b
    }

    private static func fraction(_ a: Double, _ b: Double, _ x: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...500 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            h *= step
            if abs(step - 1) < 1e-15 { break }
        }
        return h
    }
}
