import HarrowCore
import Foundation
import Yams

/// A trainer users already have, run unchanged: the trial's parameters under the tool's own argument names.
///
/// - `llamafactory`: Harrow writes `llamafactory.yaml` in the run folder, the user's config with the trial's
///   parameters mapped onto LLaMA-Factory's names, and runs `llamafactory-cli train` on it. Its curves come from
///   `trainer_log.jsonl`.
/// - `hf`: Harrow runs `python3 PROGRAM` with TrainingArguments-style flags and `--output_dir` the run folder. Its
///   curves come from each `checkpoint-N/trainer_state.json`.
///
/// Pure: the runner reads the user's config and writes the files named in the expansion.
public struct TrainerProfile: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable { case llamafactory, hf }

    public var kind: Kind
    /// `llamafactory`: the user's training config (YAML), relative to where harrow runs.
    public var config: String?
    /// `hf`: the training script.
    public var program: String?
    /// Harrow parameter → the tool's argument name, over the defaults (`map: {lr: learning_rate}`).
    public var map: [String: String]

    public init(kind: Kind, config: String? = nil, program: String? = nil, map: [String: String] = [:]) {
        self.kind = kind
        self.config = config
        self.program = program
        self.map = map
    }

    /// LLaMA-Factory's names for Harrow's parameters, from its argument dataclasses (hiyouga/LLaMA-Factory at
    /// ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30): `lora_rank`, `lora_alpha`, `lora_dropout`, `lora_target` in
    /// src/llamafactory/hparams/finetuning_args.py; `cutoff_len`, `max_samples`, `dataset`, `mix_strategy`,
    /// `interleave_probs` in data_args.py; `model_name_or_path` in model_args.py; the rest are transformers'
    /// TrainingArguments, which LLaMA-Factory's parser takes as well.
    public static let llamaFactoryNames: [String: String] = [
        "lr": "learning_rate", "epochs": "num_train_epochs", "warmup_ratio": "warmup_ratio", "lora_r": "lora_rank",
        "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "lora_targets": "lora_target", "base_model": "model_name_or_path",
        "batch_size": "per_device_train_batch_size", "grad_accum": "gradient_accumulation_steps", "max_seq_len": "cutoff_len",
        "max_samples": "max_samples", "seed": "seed", "eval_steps": "eval_steps", "weight_decay": "weight_decay",
        "max_grad_norm": "max_grad_norm"
    ]

    /// transformers' TrainingArguments flags for Harrow's parameters (the `hf` profile; a script's own arguments
    /// pass under their own names).
    public static let trainingArgumentNames: [String: String] = [
        "lr": "learning_rate", "epochs": "num_train_epochs", "warmup_ratio": "warmup_ratio", "batch_size": "per_device_train_batch_size",
        "grad_accum": "gradient_accumulation_steps", "seed": "seed", "eval_steps": "eval_steps", "weight_decay": "weight_decay",
        "max_grad_norm": "max_grad_norm"
    ]

    /// Harrow parameters a profile consumes itself rather than passing on: the data mix.
    static let consumed: Set<String> = ["mix_ratio", "general_dataset"]

    /// The tool's name for a Harrow parameter: the experiment's `map`, else the profile's default, else its own.
    public func name(of parameter: String) -> String {
        map[parameter] ?? (kind == .llamafactory ? Self.llamaFactoryNames : Self.trainingArgumentNames)[parameter] ?? parameter
    }

    /// The file a `llamafactory` trial's config is written to, in its run folder.
    public static let llamaFactoryConfigName = "llamafactory.yaml"

    /// The command template, as the trial's identity records it.
    public var commandTemplate: [String] {
        switch kind {
        case .llamafactory: ["llamafactory-cli", "train", "{run_dir}/" + Self.llamaFactoryConfigName]
        case .hf: ["python3", program ?? "", "{profile.args}", "--output_dir", "{run_dir}"]
        }
    }

    /// Where the curves come from.
    public var metrics: Experiment.MetricsLog {
        switch kind {
        case .llamafactory: .init(format: .llamafactory, path: Experiment.MetricsLog.defaultPath(.llamafactory)!, keys: [:])
        case .hf: .init(format: .hf, path: ".", keys: [:])
        }
    }

    /// The argv of one trial and the files to write before it starts. `baseConfig` is the text of the user's
    /// LLaMA-Factory config.
    public func expand(trial: Trial, runDir: String, baseConfig: String?) throws -> CommandTemplate.Expansion {
        let dir = runDir.hasSuffix("/") ? String(runDir.dropLast()) : runDir
        switch kind {
        case .llamafactory:
            let path = dir + "/" + Self.llamaFactoryConfigName
            let text = try llamaFactoryConfig(base: baseConfig ?? "", trial: trial, runDir: dir)
            return .init(argv: ["llamafactory-cli", "train", path], files: [path: text])
        case .hf:
            var argv = ["python3", program ?? ""]
            for (name, value) in passed(trial) {
                switch value {
                case .list(let items): argv += ["--" + self.name(of: name)] + items.map(\.plain)
                default: argv += ["--" + self.name(of: name), value.plain]
                }
            }
            return .init(argv: argv + ["--output_dir", dir], files: [:])
        }
    }

    /// The parameters the tool receives: all but the data mix, with `base_model: chat` naming the shipped model
    /// folder, as it does for harrow-train and for the run's recorded inputs.
    func passed(_ trial: Trial) -> [(name: String, value: ParamValue)] {
        trial.parameters.compactMap { name, value in
            if Self.consumed.contains(name) { return nil }
            if name == "base_model", case .string(let model) = value { return (name, .string(TrainerContract.modelPath(model))) }
            return (name, value)
        }
    }

    public struct ConfigError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The user's LLaMA-Factory config with the trial's parameters under LLaMA-Factory's names, `output_dir` the run
    /// folder, and, with `mix_ratio` > 0 and a `general_dataset` (a name in LLaMA-Factory's dataset_info.json), the
    /// general data interleaved into the user's datasets at that share (`mix_strategy: interleave_under`,
    /// `interleave_probs`). Written as YAML whose values are JSON with floats YAML 1.1 reads as floats.
    public func llamaFactoryConfig(base: String, trial: Trial, runDir: String) throws -> String {
        var config: [String: ParamValue] = [:]
        if !base.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard let loaded = try? Yams.load(yaml: base), let mapping = loaded as? [String: Any] else {
                throw ConfigError(description: "\(self.config ?? "the LLaMA-Factory config") is not a YAML mapping of arguments")
            }
            for (key, value) in mapping { config[key] = ParamValue(jsonObject: value) }
        }
        for (name, value) in passed(trial) {
            let key = self.name(of: name)
            // LLaMA-Factory takes its lists as comma-separated text (`lora_target: q_proj,v_proj`).
            if case .list(let items) = value, key == "lora_target" || key == "dataset" {
                config[key] = .string(items.map(\.plain).joined(separator: ","))
            } else {
                config[key] = value
            }
        }
        if let mix = trial["mix_ratio"]?.number, mix > 0 {
            guard let general = trial["general_dataset"]?.plain, let domain = config["dataset"]?.plain else {
                throw ConfigError(
                    description:
                        "mix_ratio \(mix) needs `dataset` in the config and a `general_dataset` parameter (a dataset name LLaMA-Factory knows)"
                )
            }
            // LLaMA-Factory strips the names it splits (`split_arg`, src/llamafactory/hparams/data_args.py).
            var names = domain.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            // A general dataset the config already lists gets the ratio where it stands rather than a second entry,
            // which would give it its share twice.
            if !names.contains(general) { names.append(general) }
            let generalEntries = names.filter { $0 == general }.count
            guard generalEntries < names.count else {
                throw ConfigError(
                    description: "mix_ratio \(mix) mixes `general_dataset` \(general) into the domain data, but the config's "
                        + "`dataset` lists only \(general); name the domain datasets there")
            }
            // LLaMA-Factory mixes eval datasets with the same probabilities and refuses lists of another length
            // (DataArguments.__post_init__, src/llamafactory/hparams/data_args.py, hiyouga/LLaMA-Factory@ff6d4d12).
            if let eval = config["eval_dataset"]?.plain, eval.split(separator: ",").count != names.count {
                throw ConfigError(
                    description: "mix_ratio \(mix) interleaves \(names.count) datasets, and LLaMA-Factory then needs "
                        + "as many in `eval_dataset` (it has \(eval)); list a general eval set where the general data stands, or use `val_size` instead"
                )
            }
            config["dataset"] = .string(names.joined(separator: ","))
            config["mix_strategy"] = .string("interleave_under")
            // The general data gets exactly mix_ratio; the other datasets share the rest equally, in the config's order.
            let generalShare = mix / Double(generalEntries), share = (1 - mix) / Double(names.count - generalEntries)
            config["interleave_probs"] = .string(names.map { Self.format($0 == general ? generalShare : share) }.joined(separator: ","))
        }
        config["output_dir"] = .string(runDir)
        return "# Written by harrow for one trial: the user's config with the trial's parameters.\n"
            + config.keys.sorted().map { "\($0): \(config[$0]!.yaml)" }.joined(separator: "\n") + "\n"
    }

    static func format(_ x: Double) -> String {
        let rounded = (x * 1e6).rounded() / 1e6
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
