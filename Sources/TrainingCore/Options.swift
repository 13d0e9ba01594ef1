import Foundation
import HarrowCore

/// A trial's parameters (TrainerParameters, docs/DESIGN.md's trainer contract) read and checked before training:
/// `options.lr` is the trial's lr, else its default. Schedule, LoRA targets, seed and model shape are read on into
/// TrainingCore's types.
@dynamicMemberLookup
public struct TrainOptions: Sendable {
    public let mode: TrainingMode
    private let values: TrainerParameters.Values
    public let schedule: LRSchedule.Kind
    public let lora_targets: [Projection]
    public let seed: UInt64
    /// Shape of a model trained from scratch (pretraining).
    public let model: LlamaConfig

    /// Reads and checks every parameter `mode` reads; unknown names are kept so the caller can mention them.
    public init(mode: TrainingMode, parameters: [String: ParamValue]) throws {
        let values = TrainerParameters.Values(parameters, mode: mode)
        let p = TrainerParameters.declared
        var problems: [String] = []

        let scheduleName = values[p.schedule]
        let schedule = LRSchedule.Kind(rawValue: scheduleName)
        if schedule == nil { problems.append("schedule must be cosine or linear (got \(scheduleName))") }
        var targets: [Projection] = []
        for n in values[p.lora_targets] {
            if let proj = Projection(name: n) {
                if !targets.contains(proj) { targets.append(proj) }
            } else {
                problems.append("lora_targets: unknown module \(n) (choose from \(Projection.allCases.map(\.name).joined(separator: " ")))")
            }
        }
        if targets.isEmpty && problems.isEmpty { problems.append("lora_targets must name at least one module") }
        let seed = values[p.seed]
        if seed < 0 { problems.append("seed must be ≥ 0 (got \(seed))") }
        var model = LlamaConfig()
        if mode == .pretrain {
            model.hidden_size = values[p.hidden_size] ?? model.hidden_size
            model.intermediate_size = values[p.intermediate_size] ?? model.intermediate_size
            model.num_hidden_layers = values[p.num_hidden_layers] ?? model.num_hidden_layers
            model.num_attention_heads = values[p.num_attention_heads] ?? model.num_attention_heads
            model.num_key_value_heads = values[p.num_key_value_heads] ?? model.num_attention_heads
            model.max_position_embeddings = values[p.max_position_embeddings] ?? max(model.max_position_embeddings, values[p.max_seq_len])
            model.rms_norm_eps = values[p.rms_norm_eps] ?? model.rms_norm_eps
            model.rope_theta = values[p.rope_theta] ?? model.rope_theta
            model.tie_word_embeddings = values[p.tie_word_embeddings] ?? model.tie_word_embeddings
            problems += model.problems
        }
        problems = values.typeProblems + problems + values.problems
        if !problems.isEmpty { throw TrainingError.config(problems) }

        self.mode = mode
        self.values = values
        self.schedule = schedule ?? .cosine
        lora_targets = targets
        self.seed = UInt64(seed)
        self.model = model
    }

    /// Values as Foundation's JSONSerialization gives them, read as trial.json's are (through ParamValue).
    public init(mode: TrainingMode, parameters: [String: Any]) throws {
        try self.init(mode: mode, parameters: parameters.mapValues(ParamValue.init(jsonObject:)))
    }

    /// A parameter's value: the trial's, else its default.
    public subscript<Value>(dynamicMember parameter: KeyPath<TrainerParameters, TrainerParameter<Value>>) -> Value {
        values[TrainerParameters.declared[keyPath: parameter]]
    }

    /// Names given that this mode does not read, sorted.
    public var unknownParameters: [String] { values.unknown }

    public var loraConfig: LoRAConfig {
        LoRAConfig(r: self.lora_r, lora_alpha: self.lora_alpha, lora_dropout: self.lora_dropout, target_modules: lora_targets)
    }
}
