import HarrowCore
import BoundedYAML
import Foundation
import Yams

/// Release rules: thresholds on scores and losses, verdicts to refuse, non-regression against a baseline,
/// and provenance. Pure: a rule set and observed values in, pass/fail with reasons out.
public struct GateRules: Sendable, Equatable {
    public struct Threshold: Sendable, Equatable {
        public var metric: String
        public var min: Double?
        public var max: Double?
        /// The value must also differ from the starting model's beyond noise (a paired test), in the bound's direction.
        public var significant = false
    }

    public var name: String
    public var thresholds: [Threshold] = []
    /// Whether the gate has a `verdict:` rule at all.
    public var checksVerdict = false
    public var refuseVerdicts: [String] = []
    /// Accept `overfitting` when the evaluated checkpoint is the one at the val minimum.
    public var overfittingNeedsBestCheckpoint = true
    public var baseline: String?
    public var maxDrop: [String: Double] = [:]
    /// Which way a metric improves, where its name does not say (`goals: {bleu: maximize}`); `Goal.of(metric:)`
    /// otherwise. A drop is a move the wrong way: a fall for a score, a rise for a loss.
    public var goals: [String: Goal] = [:]
    /// A drop counts only beyond this many standard errors of the difference (0: any drop counts). The unpaired rule,
    /// kept for gate files that use it; `alpha` is the paired one.
    public var sigma: Double = 0
    /// A drop past the allowed one counts only when a paired test on the items both runs answered puts it beyond
    /// noise at this level; a comparison too small to decide anything fails closed.
    public var alpha: Double?
    public var cleanTree = false

    /// With a judged evalset's `usable` (its `DIMENSION/usable`, `DIMENSION/mean` and per-task-type names have a `/`).
    public static let metrics = ValueNames.all + ["usable"]
}

/// What is known of the run being gated.
public struct GateInput: Sendable {
    public typealias Value = Estimate

    public var run: String
    public var values: [String: Value]
    public var verdict: String?
    public var evaluatedBestCheckpoint: Bool
    /// The run's best step (the evaluated step with the lowest val loss), named when a rule is about it.
    public var bestStep: Int?
    public var dirty: Bool?
    public var baselineRun: String?
    public var baseline: [String: Value]?
    /// Paired tests of this run against the baseline run, by value name (B = this run).
    public var againstBaseline: [String: PairedSummary] = [:]
    /// Paired tests of this run against its starting model: `gain`, `gain/DIMENSION`, `forgetting`.
    public var againstStart: [String: PairedSummary] = [:]

    public init(
        run: String, values: [String: Value], verdict: String?, evaluatedBestCheckpoint: Bool, dirty: Bool?,
        baselineRun: String? = nil, baseline: [String: Value]? = nil
    ) {
        self.run = run
        self.values = values
        self.verdict = verdict
        self.evaluatedBestCheckpoint = evaluatedBestCheckpoint
        self.dirty = dirty
        self.baselineRun = baselineRun
        self.baseline = baseline
    }
}

public struct RuleResult: Sendable, Equatable {
    public var rule: String
    public var observed: String
    public var expected: String
    public var passed: Bool
    public var reason: String
}

public enum Gate {
    /// Every rule's result; a missing value fails its rule with a reason, never passes silently.
    public static func check(_ rules: GateRules, _ input: GateInput) -> [RuleResult] {
        var out: [RuleResult] = []
        func fmt(_ v: Double) -> String { String(format: "%.4g", v) }
        for t in rules.thresholds {
            let bound = [t.min.map { "≥ \(fmt($0))" }, t.max.map { "≤ \(fmt($0))" }].compactMap { $0 }.joined(separator: " and ")
            guard let v = input.values[t.metric]?.value else {
                out.append(
                    RuleResult(
                        rule: t.metric, observed: "missing", expected: bound, passed: false,
                        reason: "no \(t.metric) for run \(input.run): evaluate it (harrow eval) or train with val loss"))
                continue
            }
            let ok = (t.min.map { v >= $0 } ?? true) && (t.max.map { v <= $0 } ?? true)
            guard t.significant else {
                out.append(
                    RuleResult(
                        rule: t.metric, observed: fmt(v), expected: bound, passed: ok,
                        reason: ok ? "within bounds" : "\(t.metric) \(fmt(v)) is not \(bound)"))
                continue
            }
            // Beyond noise, in the direction the bound asks for: above the starting model for a min, below for a max.
            let expected = bound + ", beyond noise"
            guard let test = input.againstStart[t.metric] else {
                out.append(
                    RuleResult(
                        rule: t.metric, observed: fmt(v), expected: expected, passed: false,
                        reason: "no paired test of \(t.metric) against the starting model: its items were not kept (evaluate the run again)"
                    ))
                continue
            }
            let direction = t.min != nil ? test.delta > 0 : test.delta < 0
            let beyond = test.significant && direction
            let observed = "\(fmt(v)) (\(Paired.formatP(test.p)), 95% [\(fmt(test.low)), \(fmt(test.high))], \(test.n) items)"
            let reason =
                !ok
                ? "\(t.metric) \(fmt(v)) is not \(bound)"
                : beyond
                    ? "within bounds and beyond noise"
                    : "\(t.metric) \(fmt(v)) is within noise of the starting model (\(Paired.formatP(test.p)))"
                        + (test.itemsFor80Power.map { "; about \($0) items would tell" } ?? "")
            out.append(RuleResult(rule: t.metric, observed: observed, expected: expected, passed: ok && beyond, reason: reason))
        }
        if rules.checksVerdict {
            let refused = "not " + (rules.refuseVerdicts.isEmpty ? "-" : rules.refuseVerdicts.joined(separator: ", "))
            if let v = input.verdict {
                var ok = !rules.refuseVerdicts.contains(v)
                var reason = ok ? "verdict \(v)" : "verdict \(v) is refused"
                if ok, v == "overfitting", rules.overfittingNeedsBestCheckpoint, !input.evaluatedBestCheckpoint {
                    ok = false
                    reason =
                        "over-fitted, and the evaluated checkpoint is not the one at the val minimum"
                        + (input.bestStep.map { " (step \($0))" } ?? "")
                }
                out.append(RuleResult(rule: "verdict", observed: v, expected: refused, passed: ok, reason: reason))
            } else {
                out.append(
                    RuleResult(
                        rule: "verdict", observed: "missing", expected: refused, passed: false,
                        reason: "run \(input.run) has no diagnosis: run harrow diagnose \(input.run) --save"))
            }
        }
        if !rules.maxDrop.isEmpty {
            for (metric, allowed) in rules.maxDrop.sorted(by: { $0.key < $1.key }) {
                let name = "no drop in \(metric)"
                guard let base = input.baseline?[metric] else {
                    out.append(
                        RuleResult(
                            rule: name, observed: "missing", expected: "baseline", passed: false,
                            reason: input.baseline == nil
                                ? "no baseline run: give --baseline RUN or `baseline:` in the gate"
                                : "the baseline \(input.baselineRun ?? "") has no \(metric)"))
                    continue
                }
                guard let now = input.values[metric] else {
                    out.append(
                        RuleResult(
                            rule: name, observed: "missing", expected: "drop ≤ \(fmt(allowed))", passed: false,
                            reason: "no \(metric) for run \(input.run)"))
                    continue
                }
                let drop = (rules.goals[metric] ?? Goal.of(metric: metric)).worsening(from: base.value, to: now.value)
                if let alpha = rules.alpha {
                    out.append(
                        pairedDrop(metric, drop: drop, allowed: allowed, alpha: alpha, input: input, now: now.value, base: base.value))
                    continue
                }
                let noise = rules.sigma * (base.stderr * base.stderr + now.stderr * now.stderr).squareRoot()
                let ok = drop <= allowed + noise
                let expected = "drop ≤ \(fmt(allowed))" + (rules.sigma > 0 ? " + \(fmt(rules.sigma))σ (\(fmt(noise)))" : "")
                out.append(
                    RuleResult(
                        rule: name, observed: "\(fmt(now.value)) vs \(fmt(base.value)) (drop \(fmt(drop)))", expected: expected, passed: ok,
                        reason: ok ? "within the allowed drop" : "\(metric) fell \(fmt(drop)) below baseline \(input.baselineRun ?? "")"))
            }
        }
        if rules.cleanTree {
            switch input.dirty {
            case false?:
                out.append(
                    RuleResult(
                        rule: "clean tree", observed: "clean", expected: "clean", passed: true, reason: "trained from a clean git tree"))
            case true?:
                out.append(
                    RuleResult(
                        rule: "clean tree", observed: "dirty", expected: "clean", passed: false,
                        reason: "trained from a git tree with uncommitted changes"))
            case nil:
                out.append(
                    RuleResult(
                        rule: "clean tree", observed: "unknown", expected: "clean", passed: false,
                        reason: "no git provenance recorded for the run"))
            }
        }
        return out
    }

    /// A drop judged by a paired test: past the allowance and beyond noise fails; past it within noise passes, unless
    /// the comparison could not have called anything beyond noise, which fails closed; a drop the paired test cannot
    /// see (val losses have no items) is judged as it stands.
    static func pairedDrop(_ metric: String, drop: Double, allowed: Double, alpha: Double, input: GateInput, now: Double, base: Double)
        -> RuleResult
    {
        func fmt(_ v: Double) -> String { String(format: "%.4g", v) }
        let name = "no drop in \(metric)", expected = "drop ≤ \(fmt(allowed)) beyond noise (α = \(fmt(alpha)))"
        // Losses fall when things improve; scores rise. `drop` is already signed so that positive is worse.
        guard let test = input.againstBaseline[metric] else {
            let ok = drop <= allowed
            return RuleResult(
                rule: name, observed: "\(fmt(now)) vs \(fmt(base)) (drop \(fmt(drop)), no items to pair)", expected: expected, passed: ok,
                reason: ok ? "within the allowed drop" : "\(metric) fell \(fmt(drop)) below baseline \(input.baselineRun ?? "")")
        }
        let observed =
            "\(fmt(now)) vs \(fmt(base)) (drop \(fmt(drop)), 95% [\(fmt(-test.high)), \(fmt(-test.low))], \(Paired.formatP(test.p)), \(test.n) items)"
        if drop <= allowed {
            return RuleResult(rule: name, observed: observed, expected: expected, passed: true, reason: "within the allowed drop")
        }
        // The drop past the allowance, in paired standard errors of the difference.
        let z = test.stderr > 0 ? (drop - allowed) / test.stderr : .infinity
        if z > Paired.normalQuantile(1 - alpha / 2) {
            return RuleResult(
                rule: name, observed: observed, expected: expected, passed: false,
                reason: "\(metric) fell \(fmt(drop)) below baseline \(input.baselineRun ?? ""), beyond noise")
        }
        guard test.decidable else {
            return RuleResult(
                rule: name, observed: observed, expected: expected, passed: false,
                reason: "cannot be decided with \(test.n) items: no outcome on them could be beyond noise"
                    + (test.itemsFor80Power.map { "; about \($0) items would decide a drop this large" } ?? ""))
        }
        return RuleResult(
            rule: name, observed: observed, expected: expected, passed: true,
            reason: "a drop of \(fmt(drop)) is within noise (\(Paired.formatP(test.p)))")
    }
}

public struct GateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

extension GateRules {
    /// Parses a gate file; errors name file, line and column.
    public static func parse(yaml: String, file: String) throws(GateError) -> GateRules {
        let source = YAMLFile(file: file, text: yaml)
        func at(_ n: Node?) -> String { source.place(n) }
        let root: Node
        switch source.root(prefix: "invalid YAML: ") {
        case .failure(let problem): throw GateError(problem.description)
        case .success(nil): throw GateError("\(file):1:1: the gate file is empty")
        case .success(let r?): root = r
        }
        guard let m = root.mapping else { throw GateError("\(at(root)): a gate is a mapping of rules") }
        var rules = GateRules(name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension)
        func number(_ n: Node) throws(GateError) -> Double {
            guard let d = n.float ?? n.int.map(Double.init) else {
                throw GateError("\(at(n)): expected a number, found '\(n.string ?? "a \(n)")'")
            }
            return d
        }
        for (k, v) in m {
            let key = k.string ?? ""
            switch key {
            case "name": rules.name = v.string ?? rules.name
            case "thresholds":
                guard let tm = v.mapping else { throw GateError("\(at(v)): thresholds map a metric to {min, max}") }
                for (mk, mv) in tm {
                    let metric = mk.string ?? ""
                    guard GateRules.metrics.contains(metric) || metric.contains("/") else {
                        throw GateError(
                            "\(at(mk)): unknown metric '\(metric)'; one of \(GateRules.metrics.joined(separator: ", ")) or dimension/task_type (judged sets: DIMENSION/usable, DIMENSION/mean, usable/TASK_TYPE)"
                        )
                    }
                    guard let bounds = mv.mapping, bounds.count > 0 else {
                        throw GateError("\(at(mv)): give min and/or max for '\(metric)'")
                    }
                    if bounds["significant"]?.bool == true, !(metric == "gain" || metric.hasPrefix("gain/")) {
                        throw GateError("\(at(mv)): significant applies to gain and gain/DIMENSION (a test against the starting model)")
                    }
                    var t = Threshold(metric: metric)
                    for (bk, bv) in bounds {
                        switch bk.string {
                        case "min": t.min = try number(bv)
                        case "max": t.max = try number(bv)
                        case "significant": t.significant = bv.bool ?? false
                        default: throw GateError("\(at(bk)): unknown key '\(bk.string ?? "")' (min, max or significant)")
                        }
                    }
                    rules.thresholds.append(t)
                }
            case "verdict":
                guard let vm = v.mapping else {
                    throw GateError("\(at(v)): verdict takes {refuse: [...], overfitting_needs_best_checkpoint: true}")
                }
                rules.checksVerdict = true
                for (vk, vv) in vm {
                    switch vk.string {
                    case "refuse": rules.refuseVerdicts = vv.sequence?.compactMap(\.string) ?? []
                    case "overfitting_needs_best_checkpoint": rules.overfittingNeedsBestCheckpoint = vv.bool ?? true
                    default: throw GateError("\(at(vk)): unknown key '\(vk.string ?? "")' in verdict")
                    }
                }
            case "baseline":
                guard let bm = v.mapping else { throw GateError("\(at(v)): baseline takes {run, max_drop, alpha, sigma}") }
                for (bk, bv) in bm {
                    switch bk.string {
                    case "run": rules.baseline = bv.string
                    case "sigma": rules.sigma = try number(bv)
                    case "alpha":
                        let a = try number(bv)
                        guard a > 0 && a < 1 else { throw GateError("\(at(bv)): alpha is a level between 0 and 1, such as 0.05") }
                        rules.alpha = a
                    case "max_drop":
                        guard let dm = bv.mapping else { throw GateError("\(at(bv)): max_drop maps metrics to allowed drops") }
                        for (dk, dv) in dm { rules.maxDrop[dk.string ?? ""] = try number(dv) }
                    default: throw GateError("\(at(bk)): unknown key '\(bk.string ?? "")' in baseline")
                    }
                }
            case "goals":
                guard let gm = v.mapping else { throw GateError("\(at(v)): goals map a metric to minimize or maximize") }
                for (gk, gv) in gm {
                    guard let goal = gv.string.flatMap(Goal.init(rawValue:)) else {
                        throw GateError("\(at(gv)): a goal is minimize or maximize")
                    }
                    rules.goals[gk.string ?? ""] = goal
                }
            case "provenance":
                rules.cleanTree = v.mapping?["clean_tree"]?.bool ?? false
            default:
                throw GateError("\(at(k)): unknown key '\(key)' (name, thresholds, verdict, baseline, goals, provenance)")
            }
        }
        return rules
    }
}

/// JUnit XML (one testcase per rule) and a Markdown summary for a pull-request comment.
public enum GateReport {
    public static func junit(_ results: [RuleResult], gate: String, run: String) -> String {
        func esc(_ s: String) -> String { Markup.escape(s) }
        let failures = results.filter { !$0.passed }.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"harrow gate\" tests=\"\(results.count)\" failures=\"\(failures)\">\n"
        x += "  <testsuite name=\"\(esc(gate)) · \(esc(run))\" tests=\"\(results.count)\" failures=\"\(failures)\">\n"
        for r in results {
            x += "    <testcase classname=\"\(esc(gate))\" name=\"\(esc(r.rule))\">"
            if !r.passed { x += "<failure message=\"\(esc(r.reason))\">observed \(esc(r.observed)); expected \(esc(r.expected))</failure>" }
            x += "</testcase>\n"
        }
        return x + "  </testsuite>\n</testsuites>\n"
    }

    public static func markdown(_ results: [RuleResult], gate: String, run: String) -> String {
        let passed = results.allSatisfy(\.passed)
        var md = "### \(passed ? "✅" : "❌") Gate `\(gate)` for run `\(run)`\n\n| rule | observed | expected | result |\n|---|---|---|---|\n"
        for r in results {
            md += "| \(r.rule) | \(r.observed) | \(r.expected) | \(r.passed ? "pass" : "**fail**: \(r.reason)") |\n"
        }
        return md
    }
}
