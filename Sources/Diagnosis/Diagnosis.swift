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

    /// A warmup read off the logged learning rate, for trainers whose logs carry no schedule (Hugging Face's
    /// trainer_state.json, LLaMA-Factory's trainer_log.jsonl): the first step at the lr's peak, when it ramped up to it.
    public static func warmupSteps(lr: Curve) -> Int? {
        guard lr.values.count >= 3, let peak = lr.values.max(), peak > 0,
            let first = lr.values.firstIndex(where: { $0 >= 0.999 * peak }), first > 0, lr.values[0] < 0.9 * peak
        else { return nil }
        return lr.steps[first]
    }
}

/// The numbers behind a verdict.
public struct Evidence: Sendable, Equatable, Codable {
    public var trainPoints = 0
    public var valPoints = 0
    public var nonfinite = 0
    /// Fewer train points than `minimum_points`: the reading rests on val and is less sure.
    public var sparse = false
    /// The loss the run started from: the first point, or the median of the first tenth when the curve is noisy.
    public var trainStart: Double?
    public var trainFinal: Double?
    /// The highest point of the smoothed train curve.
    public var trainPeak: Double?
    /// Mean train loss in the last quarter of the steps over the mean in the first quarter (1 = no decrease).
    public var trainQuarterRatio: Double?
    /// Relative change of train loss from the start to the end of the first `start_fraction` of the steps
    /// (medians of three points, so a first-step artefact or one noisy batch does not decide it).
    public var trainStartChange: Double?
    /// Fall of train loss from its first points to its end, relative to the first points (the start-up artefact
    /// left out): a stalled start that then learned has fallen far.
    public var fallAfterStart: Double?
    /// Standard error of `trainStartChange` (from the scatter of the points about the fitted line).
    public var trainStartError: Double?
    /// Share of the steps spent warming up (from the schedule, or read off the logged learning rate).
    public var warmupShare: Double?
    /// Optimizer steps the start window spans (`start_fraction` of the last step).
    public var startSteps: Int?
    /// Relative change of train loss over the last part of training, from the mean over 65–75% of the steps to the
    /// mean over the last tenth (train-only runs are read by it).
    public var trainTailChange: Double?
    /// Spread of train loss around its smoothed curve, relative to its level (robust: median absolute deviation).
    public var noise: Double?
    /// Train points after the first tenth that jump 1.5× above the median of the five before them.
    public var spikes: Int?
    /// The lowest val loss as logged and its step: the run's best step (`Diagnoser.bestStep`).
    public var valMin: Double?
    public var valMinStep: Int?
    /// The minimum of the smoothed val curve and its step, where the turn is read (rise, gap, train after it);
    /// evidence only, never the step to keep: it can fall between evaluations' minima.
    public var smoothedMin: Double?
    public var smoothedMinStep: Int?
    public var valFinal: Double?
    /// Rise of smoothed val loss from its minimum to the end, in percent of the minimum.
    public var valRisePercent: Double?
    /// How far a rise has to go before it is more than val's own noise, in percent (two standard errors of the
    /// smoothed val curve).
    public var valNoisePercent: Double?
    /// Relative fall of smoothed val loss over the last `tail_fraction` of the steps (positive = still falling).
    public var valTailFall: Double?
    /// Relative fall of val loss at the last evaluation, when that evaluation is the lowest: the running median
    /// that smooths val cannot show a drop at its very end.
    public var valLastFall: Double?
    /// That fall over the fall in the same stretch before it: near 1 for a curve still falling at the same pace,
    /// small for one settling onto its floor (an exponential approach gives e^(−steps/τ)).
    public var valSlowdown: Double?
    /// How much val loss moved, per evaluation and relative to its level, beyond one fall and one rise: near 0
    /// for a val curve that falls (and perhaps turns up) smoothly, large when it jumps about. Val is an average
    /// over a whole set, so it separates a model that jumps about from train loss that is merely batch noise.
    public var valJitter: Double?
    /// Share of the whole fall of val (train without val) that came in the last `tail_fraction` of the steps: near
    /// 0 once a curve has flattened, a quarter for a straight line.
    public var tailShare: Double?
    /// Share of the learning rate spent in that last part (cosine or linear decay spends little there, so a rise
    /// there is small even when the model has started to memorise); nil without an lr curve.
    public var lrTailShare: Double?
    /// Fall of val loss from its first evaluation to its minimum, as a fraction of the first.
    public var valProgress: Double?
    /// Relative change of smoothed train loss after smoothed val's minimum (negative = train kept falling).
    public var trainAfterBest: Double?
    /// Final val loss minus final train loss.
    public var gap: Double?
    /// How much the train–val gap widened after smoothed val's minimum, relative to val's level.
    public var gapWidening: Double?
    /// Share of the steps after val first came within its noise of its minimum (a plateau when val stayed there).
    public var plateauShare: Double?
    /// The step where that plateau began.
    public var plateauStep: Int?
    /// Fall of smoothed train loss over that plateau, relative to where it was when the plateau began.
    public var trainFallOnPlateau: Double?
    /// The epoch of the best step and the epochs run, from `steps_per_epoch`.
    public var stepsPerEpoch: Int?
    public var bestEpoch: Double?
    public var epochs: Double?
    /// Share of the run's steps that came after the best step.
    public var afterBestShare: Double?
    /// Each task type's val curve read on its own, earliest turn first (when the trainer logs `val/loss@TASK`).
    public var channels: [ChannelReading]?
}

public struct Diagnosis: Sendable, Equatable {
    public var verdict: Verdict
    /// 0.5 (borderline) to 0.99 (far past every threshold); at most 0.7 for a sparse run.
    public var confidence: Double
    /// The run's best step (`Diagnoser.bestStep`): the evaluated step with the lowest val loss.
    public var bestStep: Int?
    public var evidence: Evidence
    public var advice: String
}

/// Thresholds with their defaults; an experiment may override any under `diagnosis:`.
public struct Thresholds: Sendable, Equatable {
    /// Val loss ending this many percent above its minimum (and beyond its own noise) means over-fitting.
    public var overfitRisePercent = 1.0
    /// A val rise or fall counts only beyond this many standard errors of the smoothed val curve.
    public var noiseMultiple = 2.0
    /// Still learning: val fell more than this fraction of its level over the last `tailFraction` of the steps
    /// (without val: train, over a tenth of the steps, three times this).
    public var stillFalling = 0.01
    /// Val falling by this fraction of its level per epoch at the end is still learning, however much it slowed.
    public var stillFallingPerEpoch = 0.02
    /// A last-quarter fall below this share of the quarter before it is a curve settling onto its floor, not one
    /// still learning.
    public var settling = 0.3
    /// A fall smaller than this fraction of the starting loss is no fall at all.
    public var minimumFall = 0.02
    /// Train loss whose last quarter is less than this fraction below its first quarter did not decrease.
    public var minimumDecrease = 0.03
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
    /// This many loss spikes (a point 1.5× the median of the five before it) after the first tenth, with a val
    /// curve that jumps too (or none), mean unstable.
    public var spikes = 3.0
    /// A start that falls by less than this fraction over `startFraction` of the steps is stalled.
    public var stalledChange = 0.02
    /// The early part examined for a stalled start.
    public var startFraction = 0.15
    /// Val within its noise of its minimum for this share of the steps while train kept falling: memorising.
    public var plateauFraction = 0.4
    /// Fewer train points than this is sparse: read from val, with lower confidence (insufficient without val).
    public var minimumPoints = 8
    /// A task type with fewer validation records than this is not named in the advice: two records' loss moves by
    /// a percent on noise alone.
    public var channelRecords = 5

    public init() {}

    public static let names = DiagnosisSettings.names

    /// Sets a threshold by its `diagnosis:` name; false if there is no such name.
    public mutating func set(_ name: String, _ value: Double) -> Bool {
        switch name {
        case "overfit_rise_percent": overfitRisePercent = value
        case "noise_multiple": noiseMultiple = value
        case "still_falling": stillFalling = value
        case "settling": settling = value
        case "still_falling_per_epoch": stillFallingPerEpoch = value
        case "minimum_fall": minimumFall = value
        case "minimum_decrease": minimumDecrease = value
        case "minimum_progress": minimumProgress = value
        case "tail_fraction": tailFraction = value
        case "unstable_noise": unstableNoise = value
        case "unstable_rise": unstableRise = value
        case "diverged_rise": divergedRise = value
        case "spikes": spikes = value
        case "stalled_change": stalledChange = value
        case "start_fraction": startFraction = value
        case "plateau_fraction": plateauFraction = value
        case "minimum_points": minimumPoints = Int(value)
        case "channel_records": channelRecords = Int(value)
        default: return false
        }
        return true
    }
}

public enum Diagnoser {
    /// Reads the train and val curves of one run. Pure: no I/O, same input → same verdict.
    /// `valByTask` holds val curves per task type (`val/loss@TASK`); they are read too, and the advice says
    /// which task type turned first when they differ, naming only task types with enough validation records
    /// (`valRecords`, as the trainer logged them; a task type whose count is unknown is named). The advice names
    /// a checkpoint only from `checkpoints` (nil: the run's folder is unknown).
    public static func diagnose(
        train rawTrain: Curve, val rawVal: Curve? = nil, lr rawLR: Curve? = nil, schedule: Schedule = Schedule(),
        thresholds t: Thresholds = Thresholds(), valByTask: [String: Curve] = [:],
        valRecords: [String: Int] = [:], checkpoints: Checkpoints? = nil
    ) -> Diagnosis {
        var schedule = schedule
        if schedule.warmupSteps == nil, let rawLR { schedule.warmupSteps = Schedule.warmupSteps(lr: rawLR.cleaned().0) }
        let (train, trainBad) = rawTrain.cleaned()
        let (val, valBad) = (rawVal ?? Curve(steps: [], values: [])).cleaned()
        var e = Evidence()
        e.trainPoints = train.count
        e.valPoints = val.count
        e.nonfinite = trainBad + valBad
        let bestStep = Self.bestStep(val: val, reported: checkpoints?.bestStep)
        if let step = bestStep, let i = val.steps.firstIndex(of: step) {
            e.valMin = val.values[i]
            e.valMinStep = step
        }

        if e.nonfinite > 0 && (train.isEmpty || trainBad > 0 && rawTrain.values.last.map { !$0.isFinite } == true) {
            return Diagnosis(
                verdict: .diverged, confidence: 0.99, bestStep: bestStep, evidence: e,
                advice: advice(.diverged, bestStep: nil, e: e, t: t))
        }
        // A run that logs every few hundred steps still has a reading when val was evaluated a few times.
        e.sparse = train.count < t.minimumPoints
        guard train.count >= 2, !e.sparse || val.count >= 3 else {
            // Nothing logged is not a curve too short to judge: the trainer never reported (it did not start, crashed
            // first, or logs under other names).
            let advice =
                train.isEmpty && val.isEmpty
                ? "no train-loss or val-loss point was logged: the run did not get to training, or its trainer logs under other names "
                    + "(`harrow logs RUN --stderr`; `trainer.metrics.keys` maps names)"
                : "only \(train.count) train-loss and \(val.count) val-loss points: log or evaluate more often (or train longer) to judge the curve"
            return Diagnosis(verdict: .insufficient_data, confidence: 0.99, bestStep: bestStep, evidence: e, advice: advice)
        }

        let n = train.count
        let smooth = train.smoothed(window: Curve.window(for: n))
        let level = max(median(train.values), 1e-12)
        // Noise about a running median of at least three points: a curve too short to smooth (under 20 points)
        // still shows its batch-to-batch scatter, which the unsmoothed curve would hide as zero.
        let local = Curve.window(for: n) >= 3 || n < 5 ? smooth : train.smoothed(window: 3)
        e.noise = median(zip(train.values, local).map { abs($0 - $1) }) * 1.4826 / level
        let noise = e.noise ?? 0
        // The first point is the model before training moved it — the reference for a blow-up — unless the
        // curve is so noisy that one point means little; the end is the median of the last tenth.
        let edge = e.sparse ? 1 : max(3, n / 10)
        e.trainStart = noise > t.unstableNoise ? median(Array(train.values.prefix(edge))) : train.values[0]
        e.trainFinal = median(Array(train.values.suffix(edge)))
        e.trainPeak = smooth.max()
        // Positions are shares of the last logged step, so windows mean the same for any logging interval.
        let end = Double(max(train.steps.last!, val.steps.last ?? 0))
        let span = max(end - Double(min(train.steps[0], val.steps.first ?? train.steps[0])), 1)
        func mean(from a: Double, to b: Double) -> Double? {
            let xs = zip(train.steps, train.values).filter { Double($0.0) >= a * end && Double($0.0) <= b * end }.map(\.1)
            return xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
        }
        if !e.sparse, let head = mean(from: 0, to: 0.25), let tail = mean(from: 0.75, to: 1) {
            e.trainQuarterRatio = tail / max(head, 1e-12)
        }
        if let before = mean(from: 0.65, to: 0.75), let last = mean(from: 0.9, to: 1) {
            e.trainTailChange = (last - before) / max(before, 1e-12)
        }
        // The start, from the first step (warmup included: a loss held flat by a long warmup stalled as much as one
        // held back by its learning rate, and the advice says which): a least-squares line through the points of the
        // first `start_fraction` of the steps, so one noisy batch does not decide it; the fall after it is measured
        // from the median of the first three points, which a start-up artefact (a first logged loss far above the
        // rest) does not move.
        if let w = schedule.warmupSteps { e.warmupShare = Double(w) / end }
        let startEnd = t.startFraction * end
        e.startSteps = Int(startEnd)
        let early = train.values.indices.filter { Double(train.steps[$0]) <= startEnd }
        if early.count >= 3 {
            let xs = early.map { Double(train.steps[$0]) }, ys = early.map { train.values[$0] }
            let fitted = slope(xs, ys) * (startEnd - xs[0])
            let from = median(Array(ys.prefix(3)))
            e.trainStartChange = fitted / max(abs(from), 1e-12)
            e.fallAfterStart = (from - e.trainFinal!) / max(abs(from), 1e-12)
            // The fitted change's standard error: batch noise over a few points can fake or hide a fall of 2%.
            if xs.count > 2 {
                let s = slope(xs, ys), mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
                let residual = zip(xs, ys).map { pow($1 - (my + s * ($0 - mx)), 2) }.reduce(0, +) / Double(xs.count - 2)
                let sxx = xs.map { pow($0 - mx, 2) }.reduce(0, +)
                if sxx > 0 {
                    e.trainStartError = (residual / sxx).squareRoot() * (startEnd - xs[0]) / max(abs(from), 1e-12)
                }
            }
        }
        if !e.sparse {
            e.spikes =
                train.values.indices.dropFirst(5).filter { i in
                    guard Double(train.steps[i]) > 0.1 * end else { return false }
                    let before = median(Array(train.values[(i - 5)..<i]))
                    return train.values[i] > 1.5 * before && train.values[i] > before + 0.05
                }.count
        }

        // How much of the whole fall came at the end. The curve's value where the tail starts is interpolated
        // between the points around it, so a sparse curve (a few evaluations) still has a tail.
        func tailShare(_ xs: [Double], _ ys: [Double]) -> Double? {
            let cut = xs.last! - t.tailFraction * span
            guard ys.count >= 3, let i = xs.firstIndex(where: { $0 >= cut }) else { return nil }
            let total = ys[0] - ys.last!
            guard total > t.minimumFall * abs(ys[0]) else { return 0 }
            return (interpolate(xs, ys, at: cut, from: i) - ys.last!) / total
        }
        let steps = train.steps.map(Double.init)
        e.tailShare = tailShare(steps, smooth)
        if let lr = rawLR?.cleaned().curve, lr.count >= 3 {
            let total = lr.values.reduce(0, +)
            let cut = Double(lr.steps.last!) - t.tailFraction * span
            let tail = zip(lr.steps, lr.values).filter { Double($0.0) >= cut }.map(\.1).reduce(0, +)
            if total > 0 { e.lrTailShare = tail / total }
        }
        func trainAt(_ step: Int) -> Double {
            guard let i = steps.firstIndex(where: { $0 >= Double(step) }) else { return smooth.last! }
            return interpolate(steps, smooth, at: Double(step), from: i)
        }

        if val.count >= 3 {
            let w = Curve.window(for: val.count)
            let vs = val.smoothed(window: w)
            let vx = val.steps.map(Double.init)
            let iMin = vs.indices.min { vs[$0] < vs[$1] || (vs[$0] == vs[$1] && $0 < $1) }!
            let vmin = max(abs(vs[iMin]), 1e-12)
            e.smoothedMin = vs[iMin]
            e.smoothedMinStep = val.steps[iMin]
            e.valFinal = val.values.last
            e.valRisePercent = (vs.last! - vs[iMin]) / vmin * 100
            e.valJitter = jitter(val.values)
            // Val's own noise. A smooth curve only reverses direction where its trend is flat, so the size of its
            // reversals (the smaller step on either side of a local extreme) is its noise; one reversal is the
            // turn of an over-fit, not noise, so it takes three. A rise or fall between two smoothed points
            // counts beyond `noise_multiple` of its standard error.
            let reversals = (1..<(val.count - 1)).compactMap { i -> Double? in
                let before = val.values[i] - val.values[i - 1], after = val.values[i + 1] - val.values[i]
                return before * after < 0 ? min(abs(before), abs(after)) : nil
            }
            let sigma = reversals.count >= 3 ? median(reversals) / max(abs(median(val.values)), 1e-12) : 0
            e.valNoisePercent = t.noiseMultiple * sigma * (2 / Double(w)).squareRoot() * 100
            let cut = vx.lastIndex { $0 <= (1 - t.tailFraction) * end } ?? 0
            e.valTailFall = (vs[cut] - vs.last!) / max(abs(vs[cut]), 1e-12)
            let (prev, last) = (val.values[val.count - 2], val.values[val.count - 1])
            if last <= val.values.min()! { e.valLastFall = (prev - last) / max(abs(prev), 1e-12) }
            let mid = vx.lastIndex { $0 <= (1 - 2 * t.tailFraction) * end } ?? 0
            let before = (vs[mid] - vs[cut]) / max(abs(vs[mid]), 1e-12)
            if mid < cut, before > 0 { e.valSlowdown = e.valTailFall! / before }
            e.tailShare = tailShare(vx, vs)
            e.valProgress = (val.values[0] - vs[iMin]) / max(abs(val.values[0]), 1e-12)
            e.gap = val.values.last! - train.values.last!
            let trainBest = trainAt(val.steps[iMin])
            e.trainAfterBest = (e.trainFinal! - trainBest) / max(abs(trainBest), 1e-12)
            e.gapWidening = ((vs.last! - e.trainFinal!) - (vs[iMin] - trainBest)) / vmin
            // The plateau begins where val first came within the rise threshold of its minimum.
            let within = vmin * (1 + t.overfitRisePercent / 100)
            if let iFlat = vs.indices.first(where: { vs[$0] <= within }), iFlat < vs.count - 1 {
                e.plateauShare = (end - vx[iFlat]) / span
                e.plateauStep = val.steps[iFlat]
                let trainThen = trainAt(val.steps[iFlat])
                e.trainFallOnPlateau = (trainThen - e.trainFinal!) / max(abs(trainThen), 1e-12)
            }
        } else if let v = val.values.last {
            e.valFinal = v
            e.gap = v - train.values.last!
        }
        if let spe = schedule.stepsPerEpoch, spe > 0 {
            e.stepsPerEpoch = spe
            e.epochs = end / Double(spe)
            if let b = bestStep { e.bestEpoch = Double(b) / Double(spe) }
        }
        if let b = bestStep { e.afterBestShare = (end - Double(b)) / span }

        var (verdict, confidence) = decide(e, t)
        if e.sparse || (1..<5).contains(e.valPoints) { confidence = min(confidence, 0.7) }
        var said = advice(verdict, bestStep: bestStep, e: e, t: t, lastStep: Int(end), checkpoints: checkpoints)
        if !valByTask.isEmpty {
            var readings = channels(train: rawTrain, channels: valByTask, lr: rawLR, schedule: schedule, thresholds: t)
            for i in readings.indices { readings[i].records = valRecords[readings[i].task] }
            e.channels = readings
            if let summary = channelSummary(readings.filter { ($0.records ?? t.channelRecords) >= t.channelRecords }) {
                said += ". By task type: " + summary
            }
        }
        return Diagnosis(verdict: verdict, confidence: confidence, bestStep: bestStep, evidence: e, advice: said)
    }

    /// A start window of fewer optimizer steps than this is a lag, not a stall, when val is still falling at the end.
    static let shortLagSteps = 10

    /// The rules, in order; each verdict's confidence grows with its margin past the threshold.
    static func decide(_ e: Evidence, _ t: Thresholds) -> (Verdict, Double) {
        func confidence(_ margin: Double) -> Double { min(0.99, max(0.5, 0.5 + 0.25 * margin)) }
        let start = e.trainStart!, final = e.trainFinal!, peak = e.trainPeak ?? start
        let overall = (final - start) / max(abs(start), 1e-12)
        let noise = e.noise ?? 0
        // A smooth val curve says the train noise is batch-to-batch noise of the data, not a model jumping about
        // (a learning rate too low leaves train loss as noisy as at the start while val creeps down).
        let valJumps = (e.valJitter ?? .infinity) > t.unstableNoise / 4
        let valFellSteadily = (e.valProgress ?? 0) > t.minimumFall && !valJumps
        // A learning rate too low holds train back as much as val: train that fell far while val barely moved had
        // learning rate enough, and val is limited by what the data generalise to. Last quarter against first when
        // there are enough points (batch noise averages out), else start to end.
        let trainBarelyMoved = (e.trainQuarterRatio.map { 1 - $0 } ?? -overall) < t.minimumProgress
        // Val still falling at the end, by more than its noise: more epochs would still help (its margin past the
        // threshold). Settling onto its floor is not still learning, unless it still fell by several percent per epoch
        // (a decaying schedule slows a curve that has far to go).
        let valSettling =
            e.valTailFall.map { fall in
                (e.valSlowdown ?? 1) < t.settling && (e.epochs.map { fall / max(t.tailFraction * $0, 1e-9) } ?? 0) < t.stillFallingPerEpoch
            } ?? false
        let valStillFalling = e.valTailFall.flatMap { fall -> Double? in
            let needed = max(t.stillFalling, (e.valNoisePercent ?? 0) / 100)
            let rose = (e.valRisePercent ?? 0) > max(t.overfitRisePercent, e.valNoisePercent ?? 0)
            return fall > needed && !rose && !valSettling ? fall / needed : nil
        }

        // Ended far above where it started, by more than its own noise could explain.
        if e.nonfinite > 0 || (final > start * t.divergedRise && overall > 3 * noise) {
            return (.diverged, e.nonfinite > 0 ? 0.95 : confidence(final / (start * t.divergedRise)))
        }
        // Rose far above its start and never came back well below it: blown up (a model collapsed to predicting
        // common tokens plateaus near 1.5× its start), not merely slow.
        if peak > start * t.divergedRise, overall > -0.1 {
            return (.unstable, confidence(peak / (start * t.divergedRise)))
        }
        let rose = max(t.unstableRise, 3 * noise)
        if overall > rose {
            return (.unstable, confidence(overall / rose - 1))
        }
        // No overall decrease. With val jumping about too (or no val to say otherwise) the learning rate is too
        // high; with val smooth and flat, or train flat and quiet, training never started.
        if let q = e.trainQuarterRatio, q > 1 - t.minimumDecrease, !valFellSteadily {
            let quiet = e.valPoints >= 3 ? !valJumps : noise < t.minimumFall / 4
            // A loss that ended above its first value, beyond its noise, was pushed up, not held back.
            let pushedUp = overall > t.minimumDecrease && overall > 3 * noise
            if quiet && !pushedUp { return (.stalled_start, confidence(1)) }
            return (.unstable, confidence((q - 1 + t.minimumDecrease) / t.minimumDecrease))
        }
        // Erratic and not falling by more than its noise.
        if noise > t.unstableNoise, overall > -2 * noise, valJumps {
            return (.unstable, confidence(noise / t.unstableNoise - 1))
        }
        // Falling, but through repeated spikes, with a val curve that jumps too, or too few evaluations to say otherwise
        // (a handful of evaluations falling in a line cannot show that the model did not jump between them).
        if let spikes = e.spikes, Double(spikes) >= t.spikes, valJumps || e.valPoints < t.minimumPoints {
            return (.unstable, confidence(Double(spikes) / t.spikes - 1))
        }
        // Flat over the start, warmup included (a loss that waits out a long warmup has stalled as much as one
        // held back by a learning rate too low, and the advice names the warmup): a fall within its standard error
        // is no fall while that error is below the fall asked of the rest of the run; points scattered more widely
        // than that show a stall only by rising beyond their error. Then it did learn, to below where it began (a
        // loss that rose over the start and came back to its first value has not).
        // Val still falling at the end outranks a lag of a few optimizer steps at the start that no long warmup
        // explains (a LoRA update starts from zero, and Adam takes a few steps to find its scale): more epochs is the
        // first thing to change.
        let startError = e.trainStartError ?? 0
        let longWarmup = e.warmupShare.flatMap { w in e.epochs.map { Warmup.isLong(w, epochs: $0) } } ?? false
        let shortLag = (e.startSteps ?? .max) < Self.shortLagSteps
        if let early = e.trainStartChange,
            startError < 10 * t.minimumFall ? early > -max(t.stalledChange, startError) : early > startError,
            let fell = e.fallAfterStart, fell > 10 * t.minimumFall, final < (1 - t.minimumFall) * start,
            valStillFalling == nil || longWarmup || !shortLag
        {
            return (.stalled_start, confidence((early + t.stalledChange) / t.stalledChange))
        }
        // Val turned up, beyond its own noise, while train did not turn up beyond half of its own (a noisy train
        // curve flat after val's minimum has not gone the way val went).
        if let rise = e.valRisePercent, let after = e.trainAfterBest {
            let needed = max(t.overfitRisePercent, e.valNoisePercent ?? 0)
            if rise > needed, after < noise / 2 || rise > 5 * needed {
                // Under a decaying schedule little learning rate was left to push val up: the same rise says more.
                let lrLeft = e.lrTailShare.map { min(2, max(1, t.tailFraction / 2 / max($0, 1e-9))) } ?? 1
                return (.overfitting, confidence(rise / needed * lrLeft - 1))
            }
        }
        // Val flat for a long stretch while train kept falling and pulled away: memorising; the steps after
        // the plateau bought nothing. Only once val had learnt something (a curve that barely moved, with train
        // barely moving too, was held back by a learning rate too low), and only once val had turned up by the rise
        // threshold, if within its noise (a plateau within a fraction of a percent of its minimum lost nothing).
        if let share = e.plateauShare, share >= t.plateauFraction, let fall = e.trainFallOnPlateau, fall > 5 * t.minimumFall,
            (e.gapWidening ?? 0) > 0, (e.valProgress ?? 1) >= t.minimumProgress || !trainBarelyMoved,
            (e.valRisePercent ?? 0) >= t.overfitRisePercent
        {
            return (.overfitting, confidence(share / t.plateauFraction - 0.5))
        }
        // Still falling at the end, by more than val's noise: more epochs would still help. Without val, train
        // is the witness, and it has to fall three times as far through its batch noise.
        if let fall = e.valTailFall {
            if let margin = valStillFalling { return (.under_trained, confidence(margin - 1)) }
            // A drop to a new minimum at the very last evaluation, beyond one evaluation's noise (the smoothed
            // curve's noise times the square root of the smoothing window): still learning when training stopped.
            let pointNoise = (e.valNoisePercent ?? 0) / 100 * Double(Curve.window(for: e.valPoints)).squareRoot()
            if let drop = e.valLastFall, drop > max(t.stillFalling, pointNoise) {
                return (.under_trained, confidence(drop / max(t.stillFalling, pointNoise) - 1))
            }
            // Val too noisy to show its fall, but at its lowest at the last evaluation and lower over the tail, not
            // settling, while train still fell steeply through it: train is the witness, as when there is no val.
            if e.valLastFall != nil, fall > t.stillFalling, !valSettling, let change = e.trainTailChange, -change > 3 * t.stillFalling {
                return (.under_trained, min(0.7, confidence(-change / (3 * t.stillFalling) - 1)))
            }
        } else if let change = e.trainTailChange, -change > 3 * t.stillFalling {
            return (.under_trained, confidence(-change / (3 * t.stillFalling) - 1))
        }
        // Moved, but barely, after several passes over the data or steadily to the end, and train barely moved too:
        // a learning rate too low. (Within one pass over a large set, a few percent can be all a good run gets; and
        // val that flattened a few percent down while train fell far is a fit, not a learning rate held back.)
        if let progress = e.valProgress, progress < t.minimumProgress, progress > t.minimumFall, trainBarelyMoved,
            (e.epochs ?? 0) >= 2 || (e.tailShare ?? 0) > t.tailFraction / 2
        {
            return (.under_trained, confidence(1 - progress / t.minimumProgress + 0.5))
        }
        // As sure as the nearer of the two ways it could have been still falling: by as much, or at the same pace.
        let fall = max(0, e.valTailFall ?? -(e.trainTailChange ?? 0) / 3)
        let pace = max(
            (e.valSlowdown ?? 1) / t.settling, e.epochs.map { fall / max(t.tailFraction * $0, 1e-9) / t.stillFallingPerEpoch } ?? 0)
        return (.good_fit, confidence(1.5 - min(fall / t.stillFalling, e.valTailFall == nil ? .infinity : pace)))
    }
}

/// The value at x of a piecewise-linear curve through (xs, ys), given the first index whose x is at or past it.
func interpolate(_ xs: [Double], _ ys: [Double], at x: Double, from i: Int) -> Double {
    guard i > 0, xs[i] != xs[i - 1] else { return ys[i] }
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])
}

/// Movement of a curve beyond one fall to its minimum and one rise from it, per step between points and
/// relative to its median level (0 for a curve that only falls, or falls and then rises).
func jitter(_ values: [Double]) -> Double? {
    guard values.count >= 3, let low = values.min() else { return nil }
    let travelled = zip(values, values.dropFirst()).reduce(0) { $0 + abs($1.1 - $1.0) }
    let explained = (values.first! - low) + (values.last! - low)
    return max(0, travelled - explained) / Double(values.count - 1) / max(abs(median(values)), 1e-12)
}
