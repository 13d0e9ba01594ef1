import Foundation
@testable import Diagnosis

/// Labelled synthetic curves. Each label follows from how the curve is built (the written rules below),
/// not from what the diagnoser says:
/// - good_fit: train = floor + drop·e^(−s/τ) with τ ≤ N/5, so it has flattened by the end; val = train + a small gap.
/// - overfitting: train keeps falling; val falls to a minimum at 35–60% of training, then rises 8–40% by the end.
/// - under_trained: τ ≥ N, so both are still falling clearly at the end; or a learning rate too low: val falls
///   steadily by only 3–8% over the run while train loss stays level under batch noise of 10–25%.
/// - diverged: falls, then grows exponentially past twice its start (or turns NaN).
/// - unstable: no downward trend, noise of 15–40% of the level, with spikes.
/// - stalled_start: flat for the first 30–45% of steps (after a warmup when there is one), then falls.
/// - insufficient_data: fewer than 8 points.
struct Rng {
    var state: UInt64
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) * 0x1.0p-53
    }
    mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * next() }
    mutating func gaussian() -> Double {
        let u = max(next(), 1e-12), v = next()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

struct LabelledCurve {
    var label: Verdict
    var name: String
    var train: Curve
    var val: Curve?
    var lr: Curve? = nil
    var schedule: Schedule
}

enum SyntheticCurves {
    static func all(perVerdict: Int = 12) -> [LabelledCurve] {
        var out: [LabelledCurve] = []
        for i in 0..<perVerdict {
            var r = Rng(state: UInt64(1000 + i))
            let n = [120, 200, 300, 600][i % 4]
            let valEvery = [10, 20, 25, 50][i % 4] / (n >= 300 ? 1 : 2)
            out.append(goodFit(&r, n, valEvery, i))
            out.append(overfitting(&r, n, valEvery, i))
            out.append(underTrained(&r, n, valEvery, i))
            out.append(learningRateTooLow(&r, n, valEvery, i))
            out.append(diverged(&r, n, valEvery, i))
            out.append(unstable(&r, n, valEvery, i))
            out.append(stalled(&r, n, valEvery, i))
            out.append(insufficient(&r, i))
        }
        return out
    }

    static func sample(_ n: Int, every: Int = 1, _ f: (Double) -> Double) -> Curve {
        let steps = Array(stride(from: every, through: n, by: every))
        return Curve(steps: steps, values: steps.map { f(Double($0)) })
    }

    static func noisy(_ r: inout Rng, _ sigma: Double, _ f: @escaping (Double) -> Double) -> (Double) -> Double {
        var rng = r
        defer { r = Rng(state: r.state &+ 77) }
        return { s in
            let v = f(s); return v * (1 + sigma * rng.gaussian())
        }
    }

    static func goodFit(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let floor = r.uniform(0.4, 1.5), drop = r.uniform(1, 2.5), tau = Double(n) / r.uniform(6, 10), gap = r.uniform(0.02, 0.15)
        let sigma = r.uniform(0.005, 0.03)
        let f: (Double) -> Double = { floor + drop * exp(-$0 / tau) }
        return LabelledCurve(
            label: .good_fit, name: "good_fit-\(i)", train: sample(n, noisy(&r, sigma, f)),
            val: sample(n, every: ve, noisy(&r, sigma / 2) { f($0) + gap }), schedule: Schedule(totalSteps: n))
    }

    static func overfitting(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let floor = r.uniform(0.2, 1.0), drop = r.uniform(1, 2.5), tau = Double(n) / r.uniform(5, 9)
        let minAt = Double(n) * r.uniform(0.35, 0.6), rise = r.uniform(0.08, 0.4), sigma = r.uniform(0.005, 0.02)
        let train: (Double) -> Double = { floor * (1 - 0.6 * $0 / Double(n)) + drop * exp(-$0 / tau) }
        let valMin = floor + drop * exp(-minAt / tau) + 0.1
        let val: (Double) -> Double = { s in
            let base = floor + drop * exp(-s / tau) + 0.1
            return s <= minAt ? base : valMin * (1 + rise * (s - minAt) / (Double(n) - minAt))
        }
        return LabelledCurve(
            label: .overfitting, name: "overfitting-\(i)", train: sample(n, noisy(&r, sigma, train)),
            val: sample(n, every: ve, noisy(&r, sigma / 2, val)), schedule: Schedule(totalSteps: n))
    }

    static func underTrained(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let floor = r.uniform(0.3, 1.0), drop = r.uniform(1.5, 3), tau = Double(n) * r.uniform(1, 3), sigma = r.uniform(0.005, 0.03)
        let f: (Double) -> Double = { floor + drop * exp(-$0 / tau) }
        return LabelledCurve(
            label: .under_trained, name: "under_trained-\(i)", train: sample(n, noisy(&r, sigma, f)),
            val: sample(n, every: ve, noisy(&r, sigma / 2) { f($0) + 0.05 }), schedule: Schedule(totalSteps: n))
    }

    static func learningRateTooLow(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let level = r.uniform(1.5, 3.5), fall = r.uniform(0.03, 0.08), sigma = r.uniform(0.10, 0.25)
        let f: (Double) -> Double = { level * (1 - fall * $0 / Double(n)) }
        return LabelledCurve(
            label: .under_trained, name: "lr_too_low-\(i)", train: sample(n, noisy(&r, sigma, f)),
            val: sample(n, every: ve) { f($0) * 1.2 }, schedule: Schedule(totalSteps: n))
    }

    static func diverged(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let start = r.uniform(2, 4), at = Double(n) * r.uniform(0.3, 0.6), growth = r.uniform(4, 10) / Double(n),
            sigma = r.uniform(0.01, 0.05)
        let f: (Double) -> Double = { s in s < at ? start * (1 - 0.4 * s / at) : start * 0.6 * exp(growth * (s - at)) }
        var train = sample(n, noisy(&r, sigma, f))
        if i % 3 == 0 { train.values[train.count - 1] = .nan }  // a trainer that logged NaN before stopping
        if i % 3 == 1 { train.values[train.count - 1] = .infinity }
        return LabelledCurve(label: .diverged, name: "diverged-\(i)", train: train, val: nil, schedule: Schedule(totalSteps: n))
    }

    static func unstable(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let level = r.uniform(1.5, 4), sigma = r.uniform(0.15, 0.4)
        var train = sample(n, noisy(&r, sigma) { _ in level })
        for _ in 0..<(n / 40) { train.values[Int(r.uniform(0, Double(n - 1)))] *= r.uniform(1.5, 2.5) }
        return LabelledCurve(
            label: .unstable, name: "unstable-\(i)", train: train,
            val: sample(n, every: ve, noisy(&r, sigma / 2) { _ in level * 1.1 }), schedule: Schedule(totalSteps: n))
    }

    static func stalled(_ r: inout Rng, _ n: Int, _ ve: Int, _ i: Int) -> LabelledCurve {
        let start = r.uniform(2, 4), flatUntil = Double(n) * r.uniform(0.3, 0.45), tau = Double(n) / r.uniform(6, 10)
        let warmup = i % 2 == 0 ? n / 20 : 0, sigma = r.uniform(0.003, 0.015)
        let f: (Double) -> Double = { s in s < flatUntil ? start : start * (0.3 + 0.7 * exp(-(s - flatUntil) / tau)) }
        return LabelledCurve(
            label: .stalled_start, name: "stalled_start-\(i)", train: sample(n, noisy(&r, sigma, f)),
            val: sample(n, every: ve, noisy(&r, sigma / 2) { f($0) + 0.1 }), schedule: Schedule(totalSteps: n, warmupSteps: warmup))
    }

    static func insufficient(_ r: inout Rng, _ i: Int) -> LabelledCurve {
        let n = 1 + i % 7
        return LabelledCurve(
            label: .insufficient_data, name: "insufficient-\(i)", train: sample(n) { 3 - 0.1 * $0 }, val: nil, schedule: Schedule())
    }
}
