import HarrowCore
import Foundation

/// What a run's loss curves say, in the terms fine-tuning practitioners use.
public enum Verdict: String, Sendable, CaseIterable, Codable {
    case good_fit, overfitting, under_trained, diverged, unstable, stalled_start, insufficient_data
}

/// What is known of the schedule that produced the curves (from the trainer's start event).
public struct Schedule: Sendable, Equatable {
    public var totalSteps: Int?
    public var stepsPerEpoch: Int?
    public var warmupSteps: Int?

    public init(totalSteps: Int? = nil, stepsPerEpoch: Int? = nil, warmupSteps: Int? = nil) {
        self.totalSteps = totalSteps
        self.stepsPerEpoch = stepsPerEpoch
        self.warmupSteps = warmupSteps
    }
}

/// The numbers behind a verdict.
public struct Evidence: Sendable, Equatable, Codable {
    public var trainPoints = 0
    public var valPoints = 0
    public var nonfinite = 0
    /// The loss the run started from: the first point, or the median of the first tenth when the curve is noisy.
    public var trainStart: Double?
    public var trainFinal: Double?
    /// The highest point of the smoothed train curve.
    public var trainPeak: Double?
    /// Relative change of smoothed train loss over the last `tailFraction` of training (negative = falling).
    public var trainTailChange: Double?
    /// Relative change of smoothed train loss over the first `startFraction` after warmup.
    public var trainStartChange: Double?
    /// Spread of train loss around its smoothed curve, relative to its level (robust: median absolute deviation).
    public var noise: Double?
    public var valMin: Double?
    public var valMinStep: Int?
    public var valFinal: Double?
    /// Rise of smoothed val loss from its minimum to the end, in percent of the minimum.
    public var valRisePercent: Double?
    /// Relative change of smoothed val loss over its last points.
    public var valTailChange: Double?
    /// Relative change of val loss over the start of training.
    public var valStartChange: Double?
    /// How much val loss moved, per evaluation and relative to its level, beyond one fall and one rise: near 0
    /// for a val curve that falls (and perhaps turns up) smoothly, large when it jumps about. Val is an average
    /// over a whole set, so it separates a model that jumps about from train loss that is merely batch noise.
    public var valJitter: Double?
    /// Share of the whole fall of the loss (val when there is one, else train) that came in the last
    /// `tailFraction` of training: near 0 once a curve has flattened, a quarter for a straight line.
    public var tailShare: Double?
    /// Share of the learning rate spent in that last part (cosine decay spends little there, so a curve
    /// flattens there even while it could still learn); nil without an lr curve.
    public var lrTailShare: Double?
    /// Fall of val loss from its first evaluation to its minimum, as a fraction of the first.
    public var valProgress: Double?
    /// Final val loss minus final train loss.
    public var gap: Double?
}

public struct Diagnosis: Sendable, Equatable {
    public var verdict: Verdict
    /// 0.5 (borderline) to 0.99 (far past every threshold).
    public var confidence: Double
    /// The step to keep: the val-loss minimum, or the last step.
    public var bestStep: Int?
    public var evidence: Evidence
    public var advice: String
}

/// Thresholds with their defaults; an experiment may override any under `diagnosis:`.
public struct Thresholds: Sendable, Equatable {
    /// Val loss ending this many percent above its minimum means over-fitting.
    public var overfitRisePercent = 3.0
    /// A loss still falling: more than this share of its whole fall came in the last `tailFraction` of training.
    public var stillFalling = 0.08
    /// A fall smaller than this fraction of the starting loss is no fall at all.
    public var minimumFall = 0.02
    /// Val loss that fell by less than this fraction over the whole run has barely learned (under-trained),
    /// even when a decaying schedule flattened its end.
    public var minimumProgress = 0.10
    /// The last part of training examined for "still falling", as a fraction of the steps.
    public var tailFraction = 0.25
    /// Relative noise above which a curve that does not fall is called unstable.
    public var unstableNoise = 0.13
    /// Train loss ending this factor above where it started (or any non-finite value) means diverged; a peak
    /// this far above the start that training never came back well below means unstable. (A model that blew up
    /// and collapsed to predicting common tokens plateaus near 1.5× its start: unstable, not diverged.)
    public var divergedRise = 2.0
    /// Train loss ending this fraction above its start (and beyond three times its noise) rose instead of
    /// falling: unstable.
    public var unstableRise = 0.2
    /// A start that falls by less than this fraction over `startFraction` of training (after warmup) is stalled.
    public var stalledChange = 0.01
    /// The early part examined for a stalled start.
    public var startFraction = 0.2
    /// Fewer train points than this is too little to judge.
    public var minimumPoints = 8

    public init() {}

    public static let names = DiagnosisSettings.names

    /// Sets a threshold by its `diagnosis:` name; false if there is no such name.
    public mutating func set(_ name: String, _ value: Double) -> Bool {
        switch name {
        case "overfit_rise_percent": overfitRisePercent = value
        case "still_falling": stillFalling = value
        case "minimum_fall": minimumFall = value
        case "minimum_progress": minimumProgress = value
        case "tail_fraction": tailFraction = value
        case "unstable_noise": unstableNoise = value
        case "unstable_rise": unstableRise = value
        case "diverged_rise": divergedRise = value
        case "stalled_change": stalledChange = value
        case "start_fraction": startFraction = value
        case "minimum_points": minimumPoints = Int(value)
        default: return false
        }
        return true
    }
}

public enum Diagnoser {
    /// Reads the train and val curves of one run. Pure: no I/O, same input → same verdict.
    public static func diagnose(train rawTrain: Curve, val rawVal: Curve? = nil, lr rawLR: Curve? = nil, schedule: Schedule = Schedule(),
                                thresholds t: Thresholds = Thresholds()) -> Diagnosis {
        let (train, trainBad) = rawTrain.cleaned()
        let (val, valBad) = (rawVal ?? Curve(steps: [], values: [])).cleaned()
        var e = Evidence()
        e.trainPoints = train.count
        e.valPoints = val.count
        e.nonfinite = trainBad + valBad

        if e.nonfinite > 0 && (train.isEmpty || trainBad > 0 && rawTrain.values.last.map { !$0.isFinite } == true) {
            return Diagnosis(verdict: .diverged, confidence: 0.99, bestStep: val.isEmpty ? nil : val.steps[val.values.indices.min { val.values[$0] < val.values[$1] }!],
                             evidence: e, advice: advice(.diverged, bestStep: nil, e: e, t: t))
        }
        guard train.count >= t.minimumPoints else {
            return Diagnosis(verdict: .insufficient_data, confidence: 0.99, bestStep: nil, evidence: e,
                             advice: "only \(train.count) train-loss points: log more often (or train longer) to judge the curve")
        }

        let smooth = train.smoothed(window: Curve.window(for: train.count))
        let level = max(median(train.values), 1e-12)
        e.noise = median(zip(train.values, smooth).map { abs($0 - $1) }) * 1.4826 / level
        // The first point is the model before training moved it — the reference for a blow-up — unless the
        // curve is so noisy that one point means little; the end is the median of the last tenth.
        let edge = max(3, train.count / 10)
        e.trainStart = (e.noise ?? 0) > t.unstableNoise ? median(Array(train.values.prefix(edge))) : train.values[0]
        e.trainFinal = median(Array(train.values.suffix(edge)))
        e.trainPeak = smooth.max()
        let steps = train.steps.map(Double.init)
        let first = steps.first!, last = max(steps.last!, Double(schedule.totalSteps ?? 0))
        let span = max(last - first, 1)

        // Relative change of the smoothed curve between two step positions.
        func change(from a: Double, to b: Double) -> Double? {
            let idx = steps.indices.filter { steps[$0] >= a && steps[$0] <= b }
            guard idx.count >= 3 else { return nil }
            let fitted = slope(idx.map { steps[$0] }, idx.map { smooth[$0] }) * (b - a)
            return fitted / max(abs(smooth[idx.first!]), 1e-12)
        }
        let tailStart = steps.last! - t.tailFraction * span
        e.trainTailChange = change(from: tailStart, to: steps.last!)
        let warmup = Double(schedule.warmupSteps ?? 0)
        let startFrom = max(first, warmup)
        e.trainStartChange = change(from: startFrom, to: startFrom + t.startFraction * span)

        // How much of the whole fall came at the end, on a smoothed curve. The curve's value where the tail starts
        // is interpolated between the points around it, so a sparse curve (a few evaluations) still has a tail.
        func tailShare(_ xs: [Double], _ ys: [Double]) -> Double? {
            let cut = xs.last! - t.tailFraction * span
            guard ys.count >= 3, let i = xs.firstIndex(where: { $0 >= cut }) else { return nil }
            let total = ys[0] - ys.last!
            guard total > t.minimumFall * abs(ys[0]) else { return 0 }
            let atCut = i == 0 || xs[i] == xs[i - 1] ? ys[i] : ys[i - 1] + (ys[i] - ys[i - 1]) * (cut - xs[i - 1]) / (xs[i] - xs[i - 1])
            return (atCut - ys.last!) / total
        }
        e.tailShare = tailShare(steps, smooth)
        if let lr = rawLR?.cleaned().curve, lr.count >= 3 {
            let total = lr.values.reduce(0, +)
            let cut = Double(lr.steps.last!) - t.tailFraction * span
            let tail = zip(lr.steps, lr.values).filter { Double($0.0) >= cut }.map(\.1).reduce(0, +)
            if total > 0 { e.lrTailShare = tail / total }
        }

        var bestStep: Int? = train.steps.last
        if val.count >= 3 {
            let vs = val.smoothed(window: Curve.window(for: val.count))
            let iMin = vs.indices.min { vs[$0] < vs[$1] || (vs[$0] == vs[$1] && $0 < $1) }!
            e.valMin = val.values[iMin]
            e.valMinStep = val.steps[iMin]
            e.valFinal = val.values.last
            e.valRisePercent = (vs.last! - vs[iMin]) / max(abs(vs[iMin]), 1e-12) * 100
            let tail = max(3, val.count / 4)
            let tx = val.steps.suffix(tail).map(Double.init), ty = Array(vs.suffix(tail))
            e.valTailChange = slope(tx, ty) * (tx.last! - tx.first!) / max(abs(ty.first!), 1e-12)
            e.tailShare = tailShare(val.steps.map(Double.init), vs)
            e.valProgress = (val.values[0] - vs[iMin]) / max(abs(val.values[0]), 1e-12)
            let startEnd = Double(val.steps[0]) + t.startFraction * span
            let early = max(3, val.steps.filter { Double($0) <= startEnd }.count)
            let ex = val.steps.prefix(early).map(Double.init), ey = Array(val.values.prefix(early))
            e.valStartChange = slope(ex, ey) * (ex.last! - ex.first!) / max(abs(ey.first!), 1e-12)
            e.gap = val.values.last! - train.values.last!
            e.valJitter = jitter(val.values)
            bestStep = val.steps[iMin]
        } else if let v = val.values.last {
            e.valFinal = v
            e.gap = v - train.values.last!
        }

        let (verdict, confidence) = decide(e, t)
        if verdict != .overfitting && verdict != .good_fit { bestStep = e.valMinStep ?? bestStep }
        return Diagnosis(verdict: verdict, confidence: confidence, bestStep: bestStep, evidence: e,
                         advice: advice(verdict, bestStep: bestStep, e: e, t: t))
    }

    /// The rules, in order; each verdict's confidence grows with its margin past the threshold.
    static func decide(_ e: Evidence, _ t: Thresholds) -> (Verdict, Double) {
        func confidence(_ margin: Double) -> Double { min(0.99, max(0.5, 0.5 + 0.25 * margin)) }
        let start = e.trainStart!, final = e.trainFinal!, peak = e.trainPeak ?? start
        let overall = (final - start) / max(abs(start), 1e-12)
        let noise = e.noise ?? 0

        // Ended far above where it started, by more than its own noise could explain.
        if e.nonfinite > 0 || (final > start * t.divergedRise && overall > 3 * noise) {
            return (.diverged, e.nonfinite > 0 ? 0.95 : confidence(final / (start * t.divergedRise)))
        }
        // Erratic and not falling by more than its noise, or blown up and only come back to about its start.
        // A smooth val curve says the train noise is batch-to-batch noise of the data, not a model jumping about
        // (a learning rate too low leaves train loss as noisy as at the start while val creeps down).
        let valJumps = (e.valJitter ?? .infinity) > t.unstableNoise / 4
        if noise > t.unstableNoise, overall > -2 * noise, valJumps {
            return (.unstable, confidence(noise / t.unstableNoise - 1))
        }
        if peak > start * t.divergedRise, overall > -0.1 {
            return (.unstable, confidence(peak / (start * t.divergedRise)))
        }
        // Rose instead of falling, by more than its noise explains: blown up and stuck high (a model collapsed
        // to predicting common tokens), not merely slow.
        let rose = max(t.unstableRise, 3 * noise)
        if overall > rose {
            return (.unstable, confidence(overall / rose - 1))
        }
        // Val turned up while train kept falling (or val rose so far that train hardly matters).
        if let rise = e.valRisePercent, rise > t.overfitRisePercent, (e.trainTailChange ?? overall) < 0 || rise > 3 * t.overfitRisePercent {
            return (.overfitting, confidence(rise / t.overfitRisePercent - 1))
        }
        // Moved, but barely: val fell a little over the whole run — a learning rate too low, not a stalled start.
        if let progress = e.valProgress, progress < t.minimumProgress, progress > t.minimumFall {
            return (.under_trained, confidence(1 - progress / t.minimumProgress + 0.5))
        }
        // Flat at the start (after warmup), and val — when there is one — did not move either.
        if let early = e.trainStartChange, early > -t.stalledChange, (e.valStartChange ?? 0) > -t.stalledChange {
            return (.stalled_start, confidence((early + t.stalledChange) / t.stalledChange))
        }
        // Still learning at the end: a good share of the whole fall came in the last part of training. Val,
        // averaged over a whole set, is the steadier witness when there is one.
        // A schedule that spent little learning rate at the end flattens the curve there: judge the fall
        // against the rate spent (down to a quarter of the plain threshold).
        let share = e.tailShare ?? 0
        let stillFalling = t.stillFalling * min(1, max(0.25, (e.lrTailShare ?? t.tailFraction) / t.tailFraction))
        if share > stillFalling {
            return (.under_trained, confidence(share / stillFalling - 1))
        }
        if let progress = e.valProgress, progress < t.minimumProgress {
            return (.under_trained, confidence(1 - progress / t.minimumProgress + 0.5))
        }
        return (.good_fit, confidence(1.5 - share / stillFalling))
    }

    static func advice(_ v: Verdict, bestStep: Int?, e: Evidence, t: Thresholds) -> String {
        switch v {
        case .good_fit:
            return "train and val loss fell together and flattened; keep these settings"
        case .overfitting:
            let at = bestStep.map { " at step \($0)" } ?? ""
            return "val loss reached its minimum\(at) and then rose \(String(format: "%.1f", e.valRisePercent ?? 0))% while train loss kept falling: "
                + "stop there (use the best checkpoint), train fewer epochs, or add more diverse data"
        case .under_trained:
            if let progress = e.valProgress, progress < t.minimumProgress {
                return "val loss barely moved (it fell \(String(format: "%.1f", progress * 100))% over the run): "
                    + "raise the learning rate (about 10×); more epochs at this rate would buy little"
            }
            return "both losses were still falling at the end: train more epochs, or raise the learning rate a little"
        case .diverged:
            return "the loss blew up (non-finite or far above its start): lower the learning rate about 10×, and check warmup and gradient clipping"
        case .unstable:
            if let start = e.trainStart, let final = e.trainFinal, final > start {
                return "the loss rose instead of falling (\(String(format: "%.3g", start)) → \(String(format: "%.3g", final))): "
                    + "lower the learning rate about 10×"
            }
            return "the loss is erratic and not decreasing: lower the learning rate about 10×"
        case .stalled_start:
            return "the loss stayed flat at the start: raise warmup_ratio (about 1% per epoch) or the learning rate"
        case .insufficient_data:
            return "too few points to judge"
        }
    }
}

/// Movement of a curve beyond one fall to its minimum and one rise from it, per step between points and
/// relative to its median level (0 for a curve that only falls, or falls and then rises).
func jitter(_ values: [Double]) -> Double? {
    guard values.count >= 3, let low = values.min() else { return nil }
    let travelled = zip(values, values.dropFirst()).reduce(0) { $0 + abs($1.1 - $1.0) }
    let explained = (values.first! - low) + (values.last! - low)
    return max(0, travelled - explained) / Double(values.count - 1) / max(abs(median(values)), 1e-12)
}
