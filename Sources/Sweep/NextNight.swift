import Foundation
import HarrowCore

/// `harrow next`: the next night's experiment, written from this night's results. Pure: the caller reads the
/// sweep's runs, their verdicts and the parameters' effects from the store and passes them in.
///
/// Per searched parameter, in this order:
/// 1. a value whose every run over-fitted, diverged (`unstable`) or failed is dropped (never the best run's);
/// 2. a parameter that explained under `minorShare` of the metric's variance is fixed at the best run's value;
/// 3. a numeric axis is narrowed to the best run's value and its neighbours, and extended one step past an edge the
///    best run sits on; a range (random, bayes) is narrowed to the span of the best quarter of runs;
/// A data-scaling axis (`max_samples`) and seed repeats are kept as written. A mixing ratio is kept as searched unless the metric is forgetting (val loss alone would always choose no
/// general data).
/// 4. epochs follow the best run's verdict: over-fitted → around the epoch of its best step; under-trained → twice
///    as many. A stalled start adds a larger warmup.
/// Each change is a comment above the parameter it changes.
public enum NextNight {
    /// One finished (or failed) run of the night.
    public struct Outcome: Sendable {
        public var params: [String: ParamValue]
        /// The sweep's metric (its best value over the run); nil for a run that failed or never reported it.
        public var value: Double?
        /// The stored verdict (`good_fit`, `overfitting`, `under_trained`, `unstable`, `stalled_start`, …).
        public var verdict: String?
        /// The epoch of the run's best step, when its curves say.
        public var bestEpoch: Double?
        public init(params: [String: ParamValue], value: Double?, verdict: String?, bestEpoch: Double? = nil) {
            self.params = params; self.value = value; self.verdict = verdict; self.bestEpoch = bestEpoch
        }
    }

    /// A parameter's share of the metric's variance (`Effects` in the report).
    public struct Effect: Sendable {
        public var parameter: String
        public var share: Double
        public init(parameter: String, share: Double) { self.parameter = parameter; self.share = share }
    }

    /// The new value of one parameter and why: `spec` is its YAML flow mapping (`{values: [1, 2]}`); nil keeps
    /// the parameter as written and only says why.
    public struct Change: Sendable, Equatable {
        public var parameter: String
        public var spec: String?
        public var reasons: [String]
    }

    public struct Proposal: Sendable {
        /// Parameters the proposal changes (the rest are kept as written).
        public var changes: [Change]
        /// Lines for the file's head: the night it comes from and its best run.
        public var summary: [String]
        public var best: Outcome?
    }

    public static let minorShare = 0.05
    static let badVerdicts: Set<String> = ["overfitting", "unstable"]

    public static func propose(_ experiment: Experiment, outcomes: [Outcome], effects: [Effect], sweep: String) -> Proposal {
        let lowerIsBetter = (experiment.metric?.goal ?? .minimize) == .minimize
        let metric = experiment.metric?.name ?? "val/loss"
        let measured = outcomes.filter { $0.value?.isFinite == true }
        let best = measured.min { lowerIsBetter ? $0.value! < $1.value! : $0.value! > $1.value! }
        var summary = ["The night after sweep '\(sweep)': \(outcomes.count) runs, \(measured.count) with \(metric)."]
        guard let best else {
            summary.append("No run reported \(metric): nothing to narrow, the search is kept as it was.")
            return Proposal(changes: [], summary: summary, best: nil)
        }
        summary.append(
            "Its best run: \(metric) \(format(best.value!)) at "
                + searched(experiment).compactMap { p in
                    best.params[p.name].map { "\(p.name) \($0.plain)" }
                }.joined(separator: ", ") + (best.verdict.map { " (\($0.replacingAll("_", with: " ")))" } ?? "") + ".")
        let share = Dictionary(effects.map { ($0.parameter, $0.share) }, uniquingKeysWith: { a, _ in a })

        var changes: [Change] = []
        for p in searched(experiment) {
            if let c = change(
                p, experiment: experiment, outcomes: outcomes, best: best, share: share[p.name], metric: metric,
                lowerIsBetter: lowerIsBetter)
            {
                changes.append(c)
            }
        }
        // Epochs and warmup from the best run's verdict, whether they were searched or fixed.
        if let c = epochsFromVerdict(experiment, best: best, current: changes.first { $0.parameter == "epochs" }) {
            changes.removeAll { $0.parameter == "epochs" }
            changes.append(c)
        }
        if best.verdict == "stalled_start", let w = best.params["warmup_ratio"]?.number {
            // Under a warmup many times the usual share the loss was waiting for its learning rate: a shorter one is
            // tried; under a usual one, a larger.
            let tried: [Double], why: String
            if let epochs = best.params["epochs"]?.number, Warmup.isLong(w, epochs: epochs) {
                let usual = Warmup.usualShare(epochs: epochs)
                tried = [usual, w]
                why =
                    "its warmup of \(format(w)) is over \(format(Warmup.longFactor))× the ~\(format(usual)) usual for \(format(epochs)) epochs, "
                    + "so a shorter one is tried beside it"
            } else {
                tried = [w, max(w * 2, w + 0.03)]
                why = "a larger warmup is tried beside its \(format(w))"
            }
            changes.removeAll { $0.parameter == "warmup_ratio" }
            changes.append(
                Change(
                    parameter: "warmup_ratio", spec: values(tried.map { .double(roundSignificant($0)) }),
                    reasons: ["the best run's loss was flat at the start (stalled start): " + why]))
        }
        return Proposal(changes: changes, summary: summary, best: best)
    }

    /// Parameters the night searched: more than one value, not derived, and not repeats (`seed`).
    public static func searched(_ experiment: Experiment) -> [Experiment.Parameter] {
        experiment.parameters.filter { p in
            guard p.name != "seed" else { return false }
            switch p.distribution {
            case .constant: return false
            case .categorical(let choices): return choices.count > 1 && choices.allSatisfy { if case .value = $0 { true } else { false } }
            case .weightedCategorical(let v, _): return v.count > 1
            default: return true
            }
        }
    }

    static func change(
        _ p: Experiment.Parameter, experiment: Experiment, outcomes: [Outcome], best: Outcome, share: Double?, metric: String,
        lowerIsBetter: Bool
    ) -> Change? {
        guard let bestValue = best.params[p.name] else { return nil }
        // A data-scaling axis asks what more records buy; the report's scaling panel answers it, and the night's
        // best run is, as a rule, the largest set.
        if ["max_samples", "train_records"].contains(p.name) {
            return Change(
                parameter: p.name, spec: nil,
                reasons: [
                    "kept as searched: a data-scaling axis (the report's scaling panel says what more records buy)"
                ])
        }
        // The mixing ratio trades domain fit against forgetting, which a domain metric does not see: judged by
        // val loss alone, no general data would always win.
        if p.name == "mix_ratio", !metric.contains("forgetting") {
            return Change(
                parameter: p.name, spec: nil,
                reasons: [
                    "kept as searched: mix_ratio trades \(metric) against forgetting, which \(metric) does not measure "
                        + "(sweep on `forgetting`, or compare its values with `harrow compare`)"
                ])
        }
        // Unimportant: fixed at the best run's value.
        if let share, share < minorShare {
            return Change(
                parameter: p.name, spec: "{value: \(bestValue.yaml)}",
                reasons: [
                    "explained \(percent(share)) of \(metric)'s variance (under \(percent(minorShare))): fixed at the best run's \(bestValue.yaml)"
                ])
        }
        switch p.distribution {
        case .categorical(let choices):
            let levels = choices.compactMap { if case .value(let v) = $0 { v } else { nil } }
            return narrowLevels(p.name, levels, outcomes: outcomes, best: bestValue, share: share, metric: metric)
        case .uniform, .logUniformValues, .intUniform, .qUniform, .qLogUniformValues, .normal, .logNormal:
            return narrowRange(p, outcomes: outcomes, lowerIsBetter: lowerIsBetter)
        default:
            return nil
        }
    }

    /// A grid axis: drop values whose runs all went wrong, keep the best value's neighbours, extend past an edge.
    static func narrowLevels(_ name: String, _ levels: [ParamValue], outcomes: [Outcome], best: ParamValue, share: Double?, metric: String)
        -> Change?
    {
        var reasons: [String] = []
        var kept = levels
        for level in levels where level != best {
            let runs = outcomes.filter { $0.params[name] == level }
            guard !runs.isEmpty else { continue }
            let bad = runs.filter { $0.value == nil || badVerdicts.contains($0.verdict ?? "") }
            if bad.count == runs.count {
                kept.removeAll { $0 == level }
                let verdicts = Dictionary(grouping: bad) { $0.value == nil ? "failed" : ($0.verdict ?? "").replacingAll("_", with: " ") }
                    .sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }.joined(separator: ", ")
                reasons.append(
                    "\(level.yaml) dropped: "
                        + (runs.count == 1
                            ? "its one run went wrong (\(verdicts))"
                            : "all \(runs.count) of its runs went wrong (\(verdicts))"))
            }
        }
        let numbers = kept.compactMap(\.number)
        if numbers.count == kept.count, kept.count >= 2, let b = best.number {
            let sorted = Array(Set(numbers)).sorted()
            guard let i = sorted.firstIndex(of: b) else {
                return reasons.isEmpty ? nil : Change(parameter: name, spec: values(kept), reasons: reasons)
            }
            var window = Array(sorted[max(0, i - 1)...min(sorted.count - 1, i + 1)])
            let integral = kept.allSatisfy { if case .int = $0 { true } else { false } }
            // The best at an edge of what was tried: the optimum may lie beyond it, so one step further is tried.
            // Only past an edge of every value tried: past a dropped value lies what already went wrong.
            let tried = Array(Set(levels.compactMap(\.number))).sorted()
            let edge = b == tried.last ? 1 : b == tried.first ? -1 : 0
            if sorted.count >= 2, edge != 0, let step = beyond(sorted, upward: edge > 0, name: name, integral: integral) {
                if edge < 0 { window.insert(step, at: 0) } else { window.append(step) }
                reasons.append(
                    "the best run's \(format(b)) is at the \(edge < 0 ? "low" : "high") edge of the values tried: \(format(step)) added beyond it"
                )
            }
            if window.count < sorted.count {
                let dropped = sorted.filter { !window.contains($0) }.map(format).joined(separator: ", ")
                reasons.append(
                    "narrowed to the best run's \(format(b)) and its neighbours (\(dropped) left out)"
                        + (share.map { "; it explained \(percent($0)) of \(metric)'s variance" } ?? ""))
            }
            kept = window.map { integral ? .int(Int($0.rounded())) : .double($0) }
        }
        guard !reasons.isEmpty else { return nil }
        return Change(parameter: name, spec: kept.count == 1 ? "{value: \(kept[0].yaml)}" : values(kept), reasons: reasons)
    }

    /// One step past the edge of sorted values: geometric when they are (lr-like, ratio ≥ 2 between neighbours), else
    /// arithmetic; nil when the step would leave the parameter's domain (a ratio or share above 1, a rank below 1).
    static func beyond(_ sorted: [Double], upward: Bool, name: String, integral: Bool) -> Double? {
        let (a, b) = upward ? (sorted[sorted.count - 2], sorted[sorted.count - 1]) : (sorted[1], sorted[0])
        var next: Double
        if a > 0, b > 0, max(a, b) / min(a, b) >= 2 {
            // Geometric, a rate to one significant digit (3e-4, 1e-3 go on to 3e-3, not 3.333e-3), a count whole
            // (ranks 8, 32 go on to 128).
            next = integral ? (b * (b / a)).rounded() : roundSignificant(b * (b / a), digits: 1)
        } else {
            next = roundSignificant(b + (b - a))
        }
        if integral { next = next.rounded() }
        let shares: Set<String> = ["warmup_ratio", "mix_ratio", "lora_dropout", "validation_fraction"]
        if shares.contains(name), !(0...1).contains(next) { return nil }
        if next <= 0 || next == b { return nil }
        if name == "warmup_ratio", next > 0.2 { return nil }
        return next
    }

    /// A range: the span of the best quarter of runs (at least three), widened by a tenth of that span.
    static func narrowRange(_ p: Experiment.Parameter, outcomes: [Outcome], lowerIsBetter: Bool) -> Change? {
        let ranked = outcomes.filter { $0.value?.isFinite == true && $0.params[p.name]?.number != nil }
            .sorted { lowerIsBetter ? $0.value! < $1.value! : $0.value! > $1.value! }
        guard ranked.count >= 8 else { return nil }
        let top = ranked.prefix(max(3, ranked.count / 4)).map { $0.params[p.name]!.number! }
        var low = top.min()!, high = top.max()!
        let log: Bool
        switch p.distribution {
        case .logUniformValues, .qLogUniformValues, .logNormal: log = true
        default: log = false
        }
        let integral: Bool = if case .intUniform = p.distribution { true } else { false }
        if log {
            let margin = pow(high / low, 0.1)
            low /= margin; high *= margin
        } else {
            let margin = (high - low) / 10
            low -= margin; high += margin
        }
        guard high > low else { return nil }
        let spec: String
        if integral {
            spec = "{distribution: int_uniform, min: \(Int(low.rounded(.down))), max: \(Int(high.rounded(.up)))}"
        } else {
            spec =
                "{distribution: \(log ? "log_uniform_values" : "uniform"), min: \(ParamValue.double(roundSignificant(low)).yaml), "
                + "max: \(ParamValue.double(roundSignificant(high)).yaml)}"
        }
        return Change(parameter: p.name, spec: spec, reasons: ["narrowed to the span of the best \(top.count) of \(ranked.count) runs"])
    }

    static func epochsFromVerdict(_ experiment: Experiment, best: Outcome, current: Change?) -> Change? {
        guard let epochs = best.params["epochs"]?.number else { return nil }
        switch best.verdict {
        case "overfitting":
            guard let at = best.bestEpoch, at < epochs * 0.8 else { return nil }
            let around = Array(Set([max(1, at.rounded(.down)), max(1, at.rounded(.up))])).sorted()
            return Change(
                parameter: "epochs", spec: values(around.map { .int(Int($0)) }),
                reasons: [
                    "the best run over-fitted: its val loss was lowest at epoch \(format(at)) of \(format(epochs)), so "
                        + "\(around.map(format).joined(separator: " and ")) epochs are tried"
                ])
        case "under_trained":
            let more = [epochs, epochs * 2]
            return Change(
                parameter: "epochs", spec: values(more.map { .int(Int($0)) }),
                reasons: [
                    "the best run was still improving at its end (under-trained): \(format(epochs * 2)) epochs are tried beside \(format(epochs))"
                ])
        default:
            return nil
        }
    }

    // MARK: Writing the file

    /// The experiment file with the proposal applied: the original text, its `name` replaced and each changed
    /// parameter's entry in `parameters:` replaced by its new spec under comments saying why. Other keys, and the
    /// user's comments on them, are kept as written.
    public static func render(original text: String, experiment: Experiment, proposal: Proposal, name: String) -> String {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var out: [String] = ["# Written by `harrow next` from sweep '\(experiment.name)'. Plan it with `harrow plan` before the night."]
        out += proposal.summary.map { "# " + $0 }
        if proposal.changes.isEmpty { out.append("# No change: every searched parameter is kept.") }
        var changes = Dictionary(proposal.changes.map { ($0.parameter, $0) }, uniquingKeysWith: { a, _ in a })
        var inParameters = false, parameterIndent: Int?
        var skipping = false
        var i = 0
        var sawName = false
        while i < lines.count {
            let line = lines[i]
            let indent = line.prefix { $0 == " " }.count
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let isContent = !trimmed.isEmpty && !trimmed.hasPrefix("#")
            if indent == 0, isContent {
                // A top-level key ends the parameters block; changes to parameters the file fixed elsewhere are added
                // at its end.
                if inParameters { out += remaining(&changes, indent: parameterIndent ?? 2) }
                inParameters = trimmed.hasPrefix("parameters:")
                parameterIndent = nil
                skipping = false
                if trimmed.hasPrefix("name:") {
                    out.append("name: \(ParamValue.string(name).yaml)")
                    sawName = true
                    i += 1
                    continue
                }
            } else if inParameters, isContent {
                if parameterIndent == nil { parameterIndent = indent }
                if indent == parameterIndent {
                    skipping = false
                    let key = String(trimmed.prefix { $0 != ":" }).trimmingCharacters(in: .whitespaces)
                        .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                    if let c = changes.removeValue(forKey: key) {
                        out += entry(c, indent: indent)
                        // A note keeps the entry as written; a new spec replaces it, continuation lines and all.
                        skipping = c.spec != nil
                        if skipping { i += 1; continue }
                    }
                } else if skipping {
                    i += 1
                    continue
                }
            } else if skipping, !isContent, !trimmed.isEmpty, indent > (parameterIndent ?? 0) {
                i += 1
                continue
            }
            out.append(line)
            i += 1
        }
        if inParameters { out += remaining(&changes, indent: parameterIndent ?? 2) }
        if !sawName { out.insert("name: \(ParamValue.string(name).yaml)", at: proposal.summary.count + 1) }
        return out.joined(separator: "\n") + "\n"
    }

    static func entry(_ c: Change, indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        return c.reasons.map { pad + "# next: " + $0 } + (c.spec.map { [pad + "\(c.parameter): \($0)"] } ?? [])
    }

    static func remaining(_ changes: inout [String: Change], indent: Int) -> [String] {
        let rest = changes.values.filter { $0.spec != nil }.sorted { $0.parameter < $1.parameter }
        changes = [:]
        return rest.flatMap { entry($0, indent: indent) }
    }

    static func values(_ v: [ParamValue]) -> String { "{values: [" + v.map(\.yaml).joined(separator: ", ") + "]}" }

    static func format(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e6 { return String(Int(x)) }
        return abs(x) < 0.01 || abs(x) >= 1e4 ? String(format: "%.3g", x) : String(format: "%.4g", x)
    }

    static func percent(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }

    /// `digits` significant digits, so a step of 3 × 1e-3 is 0.003 and not 0.0030000000000000005.
    static func roundSignificant(_ x: Double, digits: Int = 4) -> Double {
        guard x != 0, x.isFinite else { return x }
        let scale = pow(10, Double(digits - 1) - floor(log10(abs(x))))
        return (x * scale).rounded() / scale
    }
}
