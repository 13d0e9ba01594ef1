import Foundation

/// What the trainer learns from: chat/instruction records with a response-only loss, or raw text.
public enum TrainingMode: String, Sendable { case pretrain, sft }

/// The parameters of docs/DESIGN.md's trainer contract, read from a flat trial.json and checked before training.
public struct TrainOptions: Sendable {
    public var base_model: String? = nil
    public var dataset: String? = nil
    public var general_dataset: String? = nil
    public var val_dataset: String? = nil
    /// Keep only the first N domain records (LLaMA-Factory's `max_samples`: `dataset.select(range(max_samples))`
    /// in hiyouga/LLaMA-Factory src/llamafactory/data/loader.py at 00031b1a), before any split or mixing.
    public var max_samples: Int? = nil
    public var mix_ratio = 0.0
    public var epochs = 3.0
    public var lr: Double
    public var warmup_ratio = 0.03
    public var schedule = LRSchedule.Kind.cosine
    public var min_lr_ratio = 0.0
    public var weight_decay = 0.0
    public var batch_size = 8
    public var grad_accum = 1
    public var max_seq_len = 128
    public var lora_r = 8
    public var lora_alpha = 16.0
    public var lora_dropout = 0.05
    public var lora_targets: [Projection] = [.q_proj, .v_proj]
    public var full_finetune: Bool
    /// Evaluate every eval_steps optimiser steps (and after the last); default: about ten times per run.
    public var eval_steps: Int? = nil
    public var seed: UInt64 = 42
    // Beyond the contract, with transformers' names and defaults.
    public var max_grad_norm = 1.0
    public var adam_beta1 = 0.9
    public var adam_beta2 = 0.999
    public var adam_epsilon = 1e-8
    public var max_steps: Int? = nil
    /// Share of the domain records held out for validation when no val_dataset is given.
    public var validation_fraction = 0.1
    /// Shape of a model trained from scratch (pretraining).
    public var model = LlamaConfig()

    public let mode: TrainingMode

    public init(mode: TrainingMode) {
        self.mode = mode
        lr = mode == .pretrain ? 3e-3 : 2e-4
        full_finetune = mode == .pretrain
    }

    /// Reads and range-checks every known parameter; unknown names are returned so the caller can mention them.
    public init(mode: TrainingMode, parameters p: [String: Any]) throws {
        self.init(mode: mode)
        var problems: [String] = []
        var reader = ParameterReader(values: p)

        base_model = reader.string("base_model")
        dataset = reader.string("dataset")
        general_dataset = reader.string("general_dataset")
        val_dataset = reader.string("val_dataset")
        max_samples = reader.int("max_samples")
        mix_ratio = reader.double("mix_ratio") ?? mix_ratio
        epochs = reader.double("epochs") ?? epochs
        lr = reader.double("lr") ?? lr
        warmup_ratio = reader.double("warmup_ratio") ?? warmup_ratio
        if let s = reader.string("schedule") {
            if let k = LRSchedule.Kind(rawValue: s) { schedule = k } else { problems.append("schedule must be cosine or linear (got \(s))") }
        }
        min_lr_ratio = reader.double("min_lr_ratio") ?? min_lr_ratio
        weight_decay = reader.double("weight_decay") ?? weight_decay
        batch_size = reader.int("batch_size") ?? batch_size
        grad_accum = reader.int("grad_accum") ?? grad_accum
        max_seq_len = reader.int("max_seq_len") ?? max_seq_len
        lora_r = reader.int("lora_r") ?? lora_r
        lora_alpha = reader.double("lora_alpha") ?? lora_alpha
        lora_dropout = reader.double("lora_dropout") ?? lora_dropout
        if let names = reader.stringList("lora_targets") {
            lora_targets = []
            for n in names {
                if let proj = Projection(name: n) { if !lora_targets.contains(proj) { lora_targets.append(proj) } } else {
                    problems.append("lora_targets: unknown module \(n) (choose from \(Projection.allCases.map(\.name).joined(separator: " ")))")
                }
            }
            if lora_targets.isEmpty && problems.isEmpty { problems.append("lora_targets must name at least one module") }
        }
        full_finetune = reader.bool("full_finetune") ?? full_finetune
        eval_steps = reader.int("eval_steps") ?? eval_steps
        if let s = reader.int("seed") { if s >= 0 { seed = UInt64(s) } else { problems.append("seed must be ≥ 0 (got \(s))") } }
        max_grad_norm = reader.double("max_grad_norm") ?? max_grad_norm
        adam_beta1 = reader.double("adam_beta1") ?? adam_beta1
        adam_beta2 = reader.double("adam_beta2") ?? adam_beta2
        adam_epsilon = reader.double("adam_epsilon") ?? adam_epsilon
        max_steps = reader.int("max_steps") ?? max_steps
        validation_fraction = reader.double("validation_fraction") ?? validation_fraction
        if mode == .pretrain {
            model.hidden_size = reader.int("hidden_size") ?? model.hidden_size
            model.intermediate_size = reader.int("intermediate_size") ?? model.intermediate_size
            model.num_hidden_layers = reader.int("num_hidden_layers") ?? model.num_hidden_layers
            model.num_attention_heads = reader.int("num_attention_heads") ?? model.num_attention_heads
            model.num_key_value_heads = reader.int("num_key_value_heads") ?? model.num_attention_heads
            model.max_position_embeddings = reader.int("max_position_embeddings") ?? max(model.max_position_embeddings, max_seq_len)
            model.rms_norm_eps = reader.double("rms_norm_eps") ?? model.rms_norm_eps
            model.rope_theta = reader.double("rope_theta") ?? model.rope_theta
            model.tie_word_embeddings = reader.bool("tie_word_embeddings") ?? model.tie_word_embeddings
            problems += model.problems
        }
        problems = reader.problems + problems + rangeProblems
        unknownParameters = Set(p.keys).subtracting(reader.read).sorted()
        if !problems.isEmpty { throw TrainingError.config(problems) }
    }

    public private(set) var unknownParameters: [String] = []

    var rangeProblems: [String] {
        var p: [String] = []
        func check(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { p.append(message()) } }
        check(dataset != nil, "dataset is required")
        if mode == .sft { check(base_model != nil, "base_model is required for sft (base, chat, or a model folder)") }
        check((max_samples ?? 1) >= 1, "max_samples must be ≥ 1 (got \(max_samples ?? 0))")
        check(mix_ratio >= 0 && mix_ratio < 1, "mix_ratio must be in [0, 1) (got \(mix_ratio))")
        check(mix_ratio == 0 || general_dataset != nil, "mix_ratio > 0 needs general_dataset")
        check(epochs > 0 && epochs.isFinite, "epochs must be > 0 (got \(epochs))")
        check(lr > 0 && lr <= 1, "lr must be in (0, 1] (got \(lr))")
        check(warmup_ratio >= 0 && warmup_ratio < 1, "warmup_ratio must be in [0, 1) (got \(warmup_ratio))")
        check(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1] (got \(min_lr_ratio))")
        check(weight_decay >= 0 && weight_decay < 1, "weight_decay must be in [0, 1) (got \(weight_decay))")
        check(batch_size >= 1 && batch_size <= 4096, "batch_size must be in [1, 4096] (got \(batch_size))")
        check(grad_accum >= 1 && grad_accum <= 4096, "grad_accum must be in [1, 4096] (got \(grad_accum))")
        check(max_seq_len >= 2 && max_seq_len <= 8192, "max_seq_len must be in [2, 8192] (got \(max_seq_len))")
        check(lora_r >= 1 && lora_r <= 1024, "lora_r must be in [1, 1024] (got \(lora_r))")
        check(lora_alpha > 0 && lora_alpha.isFinite, "lora_alpha must be > 0 (got \(lora_alpha))")
        check(lora_dropout >= 0 && lora_dropout < 1, "lora_dropout must be in [0, 1) (got \(lora_dropout))")
        check((eval_steps ?? 1) >= 1, "eval_steps must be ≥ 1 (got \(eval_steps ?? 0))")
        check(max_grad_norm >= 0 && max_grad_norm.isFinite, "max_grad_norm must be ≥ 0 (0 turns clipping off; got \(max_grad_norm))")
        check(adam_beta1 >= 0 && adam_beta1 < 1, "adam_beta1 must be in [0, 1) (got \(adam_beta1))")
        check(adam_beta2 >= 0 && adam_beta2 < 1, "adam_beta2 must be in [0, 1) (got \(adam_beta2))")
        check(adam_epsilon > 0, "adam_epsilon must be > 0 (got \(adam_epsilon))")
        check((max_steps ?? 1) >= 1, "max_steps must be ≥ 1 (got \(max_steps ?? 0))")
        check(validation_fraction >= 0 && validation_fraction < 1, "validation_fraction must be in [0, 1) (got \(validation_fraction))")
        return p
    }

    public var loraConfig: LoRAConfig {
        LoRAConfig(r: lora_r, lora_alpha: lora_alpha, lora_dropout: lora_dropout, target_modules: lora_targets)
    }
}

/// Typed reads from a JSON object, collecting type errors instead of stopping at the first.
struct ParameterReader {
    let values: [String: Any]
    var read: Set<String> = []
    var problems: [String] = []

    init(values: [String: Any]) { self.values = values }

    private mutating func value(_ key: String) -> Any? {
        read.insert(key)
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    /// JSONSerialization gives booleans as NSNumbers of Objective-C type "c"; numbers never are.
    private static func isBool(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return v is Bool }
        return String(cString: n.objCType) == "c"
    }

    mutating func double(_ key: String) -> Double? {
        guard let v = value(key) else { return nil }
        if !Self.isBool(v), let n = v as? NSNumber { return n.doubleValue }
        if let s = v as? String, let d = Double(s) { return d }
        problems.append("\(key) must be a number (got \(v))")
        return nil
    }

    mutating func int(_ key: String) -> Int? {
        guard let v = value(key) else { return nil }
        if !Self.isBool(v), let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 1e15 { return n.intValue }
        if let s = v as? String, let i = Int(s) { return i }
        problems.append("\(key) must be an integer (got \(v))")
        return nil
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let v = value(key) else { return nil }
        if Self.isBool(v), let b = v as? Bool { return b }
        if let s = v as? String, let b = Bool(s) { return b }
        problems.append("\(key) must be true or false (got \(v))")
        return nil
    }

    mutating func string(_ key: String) -> String? {
        guard let v = value(key) else { return nil }
        if let s = v as? String { return s }
        problems.append("\(key) must be a string (got \(v))")
        return nil
    }

    /// A JSON list of strings, or one string of names separated by commas or spaces.
    mutating func stringList(_ key: String) -> [String]? {
        guard let v = value(key) else { return nil }
        if let list = v as? [String] { return list }
        if let s = v as? String { return s.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init) }
        problems.append("\(key) must be a list of names (got \(v))")
        return nil
    }
}
