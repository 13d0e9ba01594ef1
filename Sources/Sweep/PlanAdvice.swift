import HarrowCore
import Foundation
import Yams

/// Plan-time advice (issue 31): where a trial's settings disagree with practitioners' rules of thumb for LoRA
/// fine-tuning, before anything runs. Advice, never a refusal: `harrow plan` prints it and still exits 0.
/// Pure: the caller counts each dataset's records (`records`, by the path the trial names) and passes them in;
/// a dataset it could not count (missing, or a name a trainer profile resolves) leaves the data-size rule silent.
public enum PlanAdvice {
    /// One rule of thumb. Its raw value is the name `advice: {ignore: [...]}` takes in an experiment file.
    public enum Rule: String, CaseIterable, Sendable, Hashable {
        case epochs
        case warmup
        case mixRatio = "mix_ratio"
        case loraScale = "lora_alpha"
        case lr

        /// The rule as practitioners say it, quoted with every warning it gives.
        public var statement: String {
            switch self {
            case .epochs: "fewer epochs for more data: ~15 for 100 records, 10 for 1k, 2–3 for 10k+"
            case .warmup: "warmup about 1% per epoch (3 epochs → 0.03), at most about 0.1; raise it if loss will not start falling"
            case .mixRatio: "mix 15–30% general data into domain SFT to limit catastrophic forgetting"
            case .loraScale: "the LoRA update is scaled by lora_alpha / lora_r: keep that within 0.5–4"
            case .lr: "LoRA learning rates sit in 1e-5 … 1e-3"
            }
        }
    }

    /// One piece of advice and the trials it concerns. Trials whose settings give the same text share one warning.
    public struct Warning: Sendable, Equatable {
        public var rule: Rule
        /// What the trials set against what the rule suggests, with the values: `epochs 60 for 95 training records …`.
        public var message: String
        /// The values the message is about, in the order it names them (`records`: the training records counted).
        public var values: [Value]
        /// Keys of the trials it concerns, in plan order.
        public var trials: [String]
        /// Their 1-based positions in the plan: the `#` of `harrow plan`'s table, `index` in its JSON.
        public var indices: [Int]
    }

    public struct Value: Sendable, Equatable {
        public var name: String
        public var value: ParamValue
    }

    /// The advice for a plan's trials, less the rules its experiment ignores.
    public static func advise(_ plan: Plan, records: [String: Int]) -> [Warning] {
        advise(plan.trials, records: records, ignoring: plan.experiment.adviceIgnore)
    }

    /// The advice for these trials, grouped by text, ordered by rule and then by the first trial each concerns.
    public static func advise(_ trials: [Trial], records: [String: Int], ignoring: Set<Rule> = []) -> [Warning] {
        var warnings: [Warning] = [], group: [String: Int] = [:]
        for (i, trial) in trials.enumerated() {
            for finding in findings(trial, records: records) where !ignoring.contains(finding.rule) {
                let id = finding.rule.rawValue + "\n" + finding.message
                if let g = group[id] {
                    warnings[g].trials.append(trial.key)
                    warnings[g].indices.append(i + 1)
                } else {
                    group[id] = warnings.count
                    warnings.append(Warning(rule: finding.rule, message: finding.message, values: finding.values,
                                            trials: [trial.key], indices: [i + 1]))
                }
            }
        }
        let order = Dictionary(uniqueKeysWithValues: Rule.allCases.enumerated().map { ($1, $0) })
        return warnings.sorted { (order[$0.rule]!, $0.indices[0]) < (order[$1.rule]!, $1.indices[0]) }
    }

    // MARK: The rules

    /// Epochs the rule gives for a training set of `records`: 15 at 100, 10 at 1k, 3 at 10k, 2 at 100k, linear in
    /// log10(records) between them and flat beyond.
    public static func suggestedEpochs(records: Int) -> Double {
        let anchors: [(log10Records: Double, epochs: Double)] = [(2, 15), (3, 10), (4, 3), (5, 2)]
        let x = log10(Double(max(records, 1)))
        if x <= anchors[0].log10Records { return anchors[0].epochs }
        for (a, b) in zip(anchors, anchors.dropFirst()) where x <= b.log10Records {
            return a.epochs + (b.epochs - a.epochs) * (x - a.log10Records) / (b.log10Records - a.log10Records)
        }
        return anchors[anchors.count - 1].epochs
    }

    /// Bounds of each rule (a value exactly on a bound is fine).
    static let epochsFactor = (low: 0.5, high: 2.0)
    static let warmupFactor = (low: 0.25, high: 4.0)
    static let maximumWarmup = 0.1
    static let mixRange = (low: 0.15, high: 0.30)
    static let scaleRange = (low: 0.5, high: 4.0)
    static let lrBounds = (low: 1e-5, high: 5e-3)
    /// Floating-point slack, so 0.15 / 0.6 counts as the 0.25 it is.
    static let slack = 1e-9

    struct Finding {
        var rule: Rule
        var message: String
        var values: [Value]
    }

    static func findings(_ trial: Trial, records: [String: Int]) -> [Finding] {
        var out: [Finding] = []
        func number(_ name: String) -> Double? { trial[name]?.number }
        let epochs = number("epochs").flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        let lora = trial["full_finetune"] != .bool(true)

        // Epochs against the size of the training set.
        if let epochs, let n = trainingRecords(trial, records: records) {
            let suggested = suggestedEpochs(records: n.count)
            let ratio = epochs / suggested
            let data = "\(n.count) training records" + (n.cappedBy.map { " (max_samples \($0))" } ?? "")
            let values = [Value(name: "epochs", value: trial["epochs"]!), Value(name: "records", value: .int(n.count))]
            if ratio > epochsFactor.high * (1 + slack) {
                out.append(Finding(rule: .epochs, message: "epochs \(shown(trial["epochs"]!)) for \(data) is \(short(ratio))× "
                    + "the ~\(short(suggested)) the rule gives: expect over-fitting (keep the best checkpoint, or train fewer epochs)", values: values))
            } else if ratio < epochsFactor.low * (1 - slack) {
                out.append(Finding(rule: .epochs, message: "epochs \(shown(trial["epochs"]!)) for \(data) is \(short(ratio))× "
                    + "the ~\(short(suggested)) the rule gives: expect it to end under-trained", values: values))
            }
        }

        // Warmup against epochs.
        if let epochs, let w = number("warmup_ratio"), w >= 0 {
            // About 1% per epoch, up to 10%: past that the share spent warming up is what a long run no longer needs.
            let expected = min(epochs / 100, maximumWarmup)
            let ratio = w / expected
            let values = [Value(name: "warmup_ratio", value: trial["warmup_ratio"]!), Value(name: "epochs", value: trial["epochs"]!)]
            let head = "warmup_ratio \(shown(trial["warmup_ratio"]!)) with \(shown(trial["epochs"]!)) epochs"
            if w == 0 {
                out.append(Finding(rule: .warmup, message: "\(head): no warmup, where the rule gives ~\(short(expected))", values: values))
            } else if ratio < warmupFactor.low * (1 - slack) {
                out.append(Finding(rule: .warmup, message: "\(head) is \(short(ratio))× the ~\(short(expected)) the rule gives", values: values))
            } else if ratio > warmupFactor.high * (1 + slack) {
                out.append(Finding(rule: .warmup, message: "\(head) is \(short(ratio))× the ~\(short(expected)) the rule gives: "
                    + "much of the run passes at a reduced learning rate", values: values))
            }
        }

        // The general share of the training set.
        if let m = number("mix_ratio") {
            let values = [Value(name: "mix_ratio", value: trial["mix_ratio"]!)]
            let head = "mix_ratio \(shown(trial["mix_ratio"]!))"
            if m > mixRange.high * (1 + slack) {
                out.append(Finding(rule: .mixRatio, message: "\(head): \(short(m * 100, digits: 3))% of the training set is general data, "
                    + "above 15–30%: the domain gets fewer of the steps", values: values))
            } else if m > 0, m < mixRange.low * (1 - slack) {
                out.append(Finding(rule: .mixRatio, message: "\(head): \(short(m * 100, digits: 3))% of the training set is general data, "
                    + "below 15–30%: little guard against forgetting", values: values))
            } else if m == 0, case .string(let general)? = trial["general_dataset"], !general.isEmpty {
                out.append(Finding(rule: .mixRatio, message: "\(head) with a general_dataset named: no general data is mixed in, "
                    + "so the model risks catastrophic forgetting of general knowledge", values: values))
            }
        }

        // The LoRA update's scale.
        if lora, let alpha = number("lora_alpha"), let r = number("lora_r"), r > 0 {
            let scale = alpha / r
            let values = [Value(name: "lora_alpha", value: trial["lora_alpha"]!), Value(name: "lora_r", value: trial["lora_r"]!)]
            let head = "lora_alpha \(shown(trial["lora_alpha"]!)) / lora_r \(shown(trial["lora_r"]!)) scales the update by \(short(scale))"
            if scale > scaleRange.high * (1 + slack) {
                out.append(Finding(rule: .loraScale, message: "\(head), above 4: large steps can destabilise training (lower lora_alpha)", values: values))
            } else if scale < scaleRange.low * (1 - slack) {
                out.append(Finding(rule: .loraScale, message: "\(head), below 0.5: the adapter learns slowly (raise lora_alpha)", values: values))
            }
        }

        // The learning rate.
        if lora, let lr = number("lr"), lr > 0 {
            let values = [Value(name: "lr", value: trial["lr"]!)]
            if lr > lrBounds.high {
                out.append(Finding(rule: .lr, message: "lr \(shown(trial["lr"]!)) is far above LoRA's usual 1e-5 … 1e-3: "
                    + "expect unstable or diverging loss (lower it about 10×)", values: values))
            } else if lr < lrBounds.low {
                out.append(Finding(rule: .lr, message: "lr \(shown(trial["lr"]!)) is far below LoRA's usual 1e-5 … 1e-3: "
                    + "expect loss to barely move", values: values))
            }
        }
        return out
    }

    /// The trial's training records: its `dataset`'s count, cut to `max_samples`. Nil when the dataset was not counted.
    static func trainingRecords(_ trial: Trial, records: [String: Int]) -> (count: Int, cappedBy: Int?)? {
        guard case .string(let path)? = trial["dataset"], let counted = records[path], counted > 0 else { return nil }
        if case .int(let cap)? = trial["max_samples"], cap >= 1, cap < counted { return (cap, cap) }
        return (counted, nil)
    }

    /// A parameter value as `harrow plan`'s table shows it (long sampled floats to 4 significant digits).
    static func shown(_ value: ParamValue) -> String {
        if case .double(let d) = value, d.description.count > 8 { return String(format: "%.4g", d) }
        return value.plain
    }

    /// A derived number to `digits` significant digits: 4, 0.2, 0.13, 2.3.
    static func short(_ x: Double, digits: Int = 2) -> String { String(format: "%.\(digits)g", x) }
}

// MARK: - `advice:` in an experiment file

extension ExperimentParser {
    /// `advice: {ignore: [epochs, warmup]}`: plan-time rules this experiment does not want to hear about.
    mutating func parseAdvice(_ node: Node) -> Set<PlanAdvice.Rule> {
        let names = PlanAdvice.Rule.allCases.map(\.rawValue)
        guard let m = node.mapping else {
            error(node, "`advice` must be a mapping like `{ignore: [epochs, warmup]}`", hint: "rules: \(names.joined(separator: ", "))")
            return []
        }
        checkKeys(m, allowed: ["ignore"], in: "advice")
        guard let list = m["ignore"] else { return [] }
        let items: [Node]
        if case .sequence(let seq) = list { items = Array(seq) } else { items = [list] }
        var ignored = Set<PlanAdvice.Rule>()
        for item in items {
            let name = item.scalar?.string ?? ""
            guard let rule = PlanAdvice.Rule(rawValue: name) else {
                error(item, "unknown advice rule '\(name)'", hint: didYouMean(name, names) ?? "rules: \(names.joined(separator: ", "))")
                continue
            }
            ignored.insert(rule)
        }
        return ignored
    }
}
