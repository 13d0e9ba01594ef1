import HarrowCore
import Foundation
import Yams

/// Plan-time advice (issue 31): where a trial's settings disagree with practitioners' rules of thumb for LoRA
/// fine-tuning, before anything runs. Advice, never a refusal: `harrow plan` prints it and still exits 0.
///
/// A rule reads each setting as the trainer will see it: the trial's parameter; under a trainer profile, else the
/// trial's parameter under the tool's name, else the profile's base config (`trainer.config`: LLaMA-Factory's YAML,
/// by LLaMA-Factory's names), else LLaMA-Factory's default where the rule needs one. Pure: the caller reads the config
/// (`configArguments(yaml:)`), counts the records of each `DataSource` it is asked for (`dataSources`) and passes them
/// in; data it could not count leaves the data-size rule silent.
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

    /// Where a trial's training records come from, for the caller to count.
    public enum DataSource: Hashable, Sendable {
        /// A file the trial's `dataset` names by path: the non-empty lines of a `.jsonl`.
        case file(String)
        /// A dataset LLaMA-Factory looks up by name in `datasetDir/dataset_info.json` (`dataset_dir` as the trial or
        /// config writes it, relative to where harrow and so the trainer run): the records of the file its entry names.
        case llamaFactory(name: String, datasetDir: String)
    }

    /// One piece of advice and the trials it concerns. Trials whose settings give the same text share one warning.
    public struct Warning: Sendable, Equatable {
        public var rule: Rule
        /// What the trials set against what the rule suggests, with the values: `epochs 60 for 95 training records …`.
        public var message: String
        /// The values the message is about, in the order it names them (`records`: the training records counted), each
        /// under the name it has where it was set (`num_train_epochs` when it comes from a LLaMA-Factory config).
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

    /// The advice for a plan's trials, less the rules its experiment ignores; `records` by the path each trial's
    /// `dataset` writes.
    public static func advise(_ plan: Plan, records: [String: Int]) -> [Warning] {
        advise(plan, config: [:], records: fileRecords(records))
    }

    /// The advice for a plan's trials with its trainer profile's base config (the arguments of the file
    /// `trainer.config` names; empty without one) and the records of its `dataSources`.
    public static func advise(_ plan: Plan, config: [String: ParamValue], records: [DataSource: Int]) -> [Warning] {
        let context = Context(profile: plan.experiment.trainer.profile, config: config, records: records)
        return advise(plan.trials, context: context, ignoring: plan.experiment.adviceIgnore)
    }

    /// The advice for these trials, grouped by text, ordered by rule and then by the first trial each concerns.
    public static func advise(_ trials: [Trial], records: [String: Int], ignoring: Set<Rule> = []) -> [Warning] {
        advise(trials, context: Context(profile: nil, config: [:], records: fileRecords(records)), ignoring: ignoring)
    }

    static func fileRecords(_ records: [String: Int]) -> [DataSource: Int] {
        Dictionary(uniqueKeysWithValues: records.map { (DataSource.file($0.key), $0.value) })
    }

    static func advise(_ trials: [Trial], context: Context, ignoring: Set<Rule>) -> [Warning] {
        var warnings: [Warning] = [], group: [String: Int] = [:]
        for (i, trial) in trials.enumerated() {
            for finding in findings(Settings(trial: trial, context: context)) where !ignoring.contains(finding.rule) {
                let id = finding.rule.rawValue + "\n" + finding.message
                if let g = group[id] {
                    warnings[g].trials.append(trial.key)
                    warnings[g].indices.append(i + 1)
                } else {
                    group[id] = warnings.count
                    warnings.append(
                        Warning(
                            rule: finding.rule, message: finding.message, values: finding.values,
                            trials: [trial.key], indices: [i + 1]))
                }
            }
        }
        let order = Dictionary(uniqueKeysWithValues: Rule.allCases.enumerated().map { ($1, $0) })
        return warnings.sorted { (order[$0.rule]!, $0.indices[0]) < (order[$1.rule]!, $1.indices[0]) }
    }

    /// The data the plan's trials train on, each source once, in plan order: what `advise(_:config:records:)` needs
    /// counted.
    public static func dataSources(_ plan: Plan, config: [String: ParamValue]) -> [DataSource] {
        let context = Context(profile: plan.experiment.trainer.profile, config: config, records: [:])
        var out: [DataSource] = [], seen = Set<DataSource>()
        for trial in plan.trials {
            for source in Settings(trial: trial, context: context).dataSources() where seen.insert(source).inserted { out.append(source) }
        }
        return out
    }

    /// A trainer config's arguments by the tool's own names; nil unless the text is a YAML mapping.
    public static func configArguments(yaml: String) -> [String: ParamValue]? {
        guard let loaded = try? Yams.load(yaml: yaml), let mapping = loaded as? [String: Any] else { return nil }
        return mapping.mapValues(ParamValue.init(jsonObject:))
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
    static let warmupFactor = (low: 0.25, high: Warmup.longFactor)
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

    // Not optimised: Swift 6.3.1's -O pipeline crashes on it (CopyPropagation, "Found outside of lifetime use" on the
    // `.number` of a borrowed `Setting?`). It runs once per trial at plan time, so nothing is lost.
    @_optimize(none)
    static func findings(_ s: Settings) -> [Finding] {
        var out: [Finding] = []
        // Under a profile the trainer is transformers', whose `max_steps` replaces the epochs: the rules written in
        // epochs then say nothing. (harrow-train's max_steps only caps a run's steps.)
        let stepsDecide = s.context.profile != nil && (s["max_steps"]?.number ?? 0) > 0
        let epochs: (setting: Setting, value: Double)? =
            stepsDecide
            ? nil
            : s["epochs"].flatMap { e in
                e.number.flatMap { $0 > 0 && $0.isFinite ? (e, $0) : nil }
            }
        // The epoch and learning-rate rules are SFT's; LLaMA-Factory's other stages (pt, dpo, kto, rm, ppo) train in
        // other regimes (its DPO and KTO examples use lr 5e-6).
        let sft = s["stage"].map { $0.value == .string("sft") } ?? true
        let lora = s.trial["full_finetune"] != .bool(true) && (s["finetuning_type"].map { $0.value == .string("lora") } ?? true)

        // Epochs against the size of the training set.
        if sft, let epochs, let n = s.trainingRecords() {
            let suggested = suggestedEpochs(records: n.count)
            let ratio = epochs.value / suggested
            let values = [Value(name: epochs.setting.name, value: epochs.setting.value), Value(name: "records", value: .int(n.count))]
            let head =
                "\(epochs.setting.text) for \(n.count) training records\(n.detail) is \(short(ratio))× "
                + "the ~\(short(suggested)) the rule gives"
            if ratio > epochsFactor.high * (1 + slack) {
                out.append(
                    Finding(
                        rule: .epochs, message: head + ": expect over-fitting (keep the best checkpoint, or train fewer epochs)",
                        values: values))
            } else if ratio < epochsFactor.low * (1 - slack) {
                out.append(Finding(rule: .epochs, message: head + ": expect it to end under-trained", values: values))
            }
        }

        // Warmup against epochs. Only a share: under a tool's name mapped from warmup_ratio (`warmup_steps`, which
        // transformers reads as a share below 1), 1 or more is a number of steps.
        if let epochs, let warmup = s["warmup_ratio"], let w = warmup.number, w >= 0, warmup.name == "warmup_ratio" || w < 1 {
            let expected = Warmup.usualShare(epochs: epochs.value)
            let ratio = w / expected
            let values = [Value(name: warmup.name, value: warmup.value), Value(name: epochs.setting.name, value: epochs.setting.value)]
            let head = "\(warmup.text) with \(shown(epochs.setting.value)) epochs"
            if w == 0 {
                out.append(Finding(rule: .warmup, message: "\(head): no warmup, where the rule gives ~\(short(expected))", values: values))
            } else if ratio < warmupFactor.low * (1 - slack) {
                out.append(
                    Finding(rule: .warmup, message: "\(head) is \(short(ratio))× the ~\(short(expected)) the rule gives", values: values))
            } else if ratio > warmupFactor.high * (1 + slack) {
                out.append(
                    Finding(
                        rule: .warmup,
                        message: "\(head) is \(short(ratio))× the ~\(short(expected)) the rule gives: "
                            + "much of the run passes at a reduced learning rate", values: values))
            }
        }

        // The general share of the training set: Harrow's own parameter, which a profile mixes in itself.
        if let mix = s.trial["mix_ratio"], let m = mix.number {
            let values = [Value(name: "mix_ratio", value: mix)]
            let head = "mix_ratio \(shown(mix))"
            if m > mixRange.high * (1 + slack) {
                out.append(
                    Finding(
                        rule: .mixRatio,
                        message: "\(head): \(short(m * 100, digits: 3))% of the training set is general data, "
                            + "above 15–30%: the domain gets fewer of the steps", values: values))
            } else if m > 0, m < mixRange.low * (1 - slack) {
                out.append(
                    Finding(
                        rule: .mixRatio,
                        message: "\(head): \(short(m * 100, digits: 3))% of the training set is general data, "
                            + "below 15–30%: little guard against forgetting", values: values))
            } else if m == 0, case .string(let general)? = s.trial["general_dataset"], !general.isEmpty {
                out.append(
                    Finding(
                        rule: .mixRatio,
                        message: "\(head) with a general_dataset named: no general data is mixed in, "
                            + "so the model risks catastrophic forgetting of general knowledge", values: values))
            }
        }

        // The LoRA update's scale. With no lora_alpha set, LLaMA-Factory takes 2 × lora_rank: within the range.
        if lora, let alpha = s["lora_alpha"], let a = alpha.number, let rank = s["lora_r"], let r = rank.number, r > 0 {
            let scale = a / r
            let values = [Value(name: alpha.name, value: alpha.value), Value(name: rank.name, value: rank.value)]
            let head = "\(alpha.text) / \(rank.text) scales the update by \(short(scale))"
            if scale > scaleRange.high * (1 + slack) {
                out.append(
                    Finding(
                        rule: .loraScale, message: "\(head), above 4: large steps can destabilise training (lower lora_alpha)",
                        values: values))
            } else if scale < scaleRange.low * (1 - slack) {
                out.append(
                    Finding(rule: .loraScale, message: "\(head), below 0.5: the adapter learns slowly (raise lora_alpha)", values: values))
            }
        }

        // The learning rate.
        if lora, sft, let rate = s["lr"], let lr = rate.number, lr > 0 {
            let values = [Value(name: rate.name, value: rate.value)]
            if lr > lrBounds.high {
                out.append(
                    Finding(
                        rule: .lr,
                        message: "\(rate.text) is far above LoRA's usual 1e-5 … 1e-3: "
                            + "expect unstable or diverging loss (lower it about 10×)", values: values))
            } else if lr < lrBounds.low {
                out.append(
                    Finding(
                        rule: .lr,
                        message: "\(rate.text) is far below LoRA's usual 1e-5 … 1e-3: "
                            + "expect loss to barely move", values: values))
            }
        }
        return out
    }

    /// What the rules read beyond the trial: its trainer profile, the profile's base config, the records counted.
    struct Context {
        var profile: TrainerProfile?
        var config: [String: ParamValue]
        var records: [DataSource: Int]
    }

    /// A setting a rule reads, under the name it has where it was set.
    struct Setting {
        /// The Harrow parameter, or the tool's name for it (`num_train_epochs`) where the trial or config uses that.
        var name: String
        var value: ParamValue
        /// Nil for a trial's parameter; else the config file, or the tool's default.
        var origin: String? = nil
        var number: Double? { value.number }
        /// `epochs 60`; `num_train_epochs 3.0 (examples/train_lora/qwen3_lora_sft.yaml)`.
        var text: String { "\(name) \(shown(value))" + (origin.map { " (\($0))" } ?? "") }
    }

    /// LLaMA-Factory's defaults for what the rules read (hiyouga/LLaMA-Factory@ff6d4d12, src/llamafactory/hparams):
    /// `stage` sft, `finetuning_type` lora and `lora_rank` 8 (finetuning_args.py, which also makes a missing
    /// `lora_alpha` 2 × lora_rank), `dataset_dir` data (data_args.py).
    static let llamaFactoryDefaults: [String: ParamValue] = [
        "stage": .string("sft"), "finetuning_type": .string("lora"), "lora_rank": .int(8), "dataset_dir": .string("data")
    ]

    /// One trial's settings as its trainer will see them.
    struct Settings {
        var trial: Trial
        var context: Context

        /// The trial's parameter `name`; under a profile, else the trial's parameter under the tool's name, else the
        /// config's value under that name, else LLaMA-Factory's default.
        subscript(name: String) -> Setting? {
            if let v = trial[name], v != .null { return Setting(name: name, value: v) }
            guard let profile = context.profile else { return nil }
            let tool = profile.name(of: name)
            if tool != name, let v = trial[tool], v != .null { return Setting(name: tool, value: v) }
            if let v = context.config[tool], v != .null { return Setting(name: tool, value: v, origin: profile.config ?? "config") }
            if profile.kind == .llamafactory, let v = llamaFactoryDefaults[tool] {
                return Setting(name: tool, value: v, origin: "LLaMA-Factory's default")
            }
            return nil
        }

        /// LLaMA-Factory's dataset names, split as it splits them (`split_arg`: at commas, each name stripped); nil
        /// under another trainer.
        var llamaFactoryDatasets: [String]? {
            guard context.profile?.kind == .llamafactory else { return nil }
            let names: [String] =
                switch self["dataset"]?.value {
                case .string(let text)?: text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                case .list(let items)?: items.map(\.plain)
                default: []
                }
            return names.filter { !$0.isEmpty }
        }

        var datasetDir: String { self["dataset_dir"]?.value.plain ?? "data" }

        func dataSources() -> [DataSource] {
            if let names = llamaFactoryDatasets { return names.map { .llamaFactory(name: $0, datasetDir: datasetDir) } }
            if case .string(let path)? = trial["dataset"] { return [.file(path)] }
            return []
        }

        /// The records the trial trains on, and how they add up (`" (identity 91 + alpaca_en_demo 999)"`); nil when
        /// any of its data was not counted. Harrow's trainer: its `dataset`, cut to `max_samples`. LLaMA-Factory: each
        /// dataset cut to `max_samples` (it truncates each one: `_load_single_dataset`, src/llamafactory/data/loader.py),
        /// less what `val_size` holds out (datasets' `train_test_split`: ⌈val_size × n⌉ for a share, else that many).
        // Not optimised: Swift 6.3.1's -O pipeline crashes on it (CopyPropagation, "Found outside of lifetime use" on the
        // `.number` of a borrowed `Setting?`). It runs once per trial at plan time, so nothing is lost.
        @_optimize(none)
        func trainingRecords() -> (count: Int, detail: String)? {
            let cap: Int? = self["max_samples"]?.number.flatMap { $0 >= 1 && $0 < 1e15 && $0 == $0.rounded() ? Int($0) : nil }
            guard let names = llamaFactoryDatasets else {
                guard case .string(let path)? = trial["dataset"], let counted = context.records[.file(path)], counted > 0 else {
                    return nil
                }
                if let cap, cap < counted { return (cap, " (max_samples \(cap))") }
                return (counted, "")
            }
            guard !names.isEmpty else { return nil }
            var total = 0, parts: [String] = [], capped = false
            for name in names {
                guard let counted = context.records[.llamaFactory(name: name, datasetDir: datasetDir)] else { return nil }
                let used = min(cap ?? counted, counted)
                total += used
                capped = capped || used < counted
                parts.append("\(name) \(used)" + (used < counted ? " of \(counted)" : ""))
            }
            var detail = parts.joined(separator: " + ")
            if capped, let cap { detail += " by max_samples \(cap)" }
            if let val = self["val_size"], let v = val.number, v > 1e-6 {
                let held = v > 1 ? Int(v) : Int((v * Double(total)).rounded(.up))
                total -= held
                detail += ", less \(held) held out by val_size \(shown(val.value))"
            }
            guard total > 0 else { return nil }
            return (total, " (\(detail))")
        }
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
