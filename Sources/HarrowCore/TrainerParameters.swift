import Foundation

/// What harrow-train trains: a model from scratch on raw text (`pretrain`), or a starting model on chat and
/// instruction records with the loss on the responses (`sft`).
public enum TrainingMode: String, Sendable { case pretrain, sft }

/// The parameters harrow-train reads from trial.json (docs/DESIGN.md's trainer contract), each declared once: its
/// name, type, default, the values it accepts and what it means. The contract's name lists, harrow-train's reading,
/// defaults, checks and flag help, and the defaults a plan's estimates assume all come from these declarations.
public struct TrainerParameters: Sendable {
    /// The one instance; a parameter is `TrainerParameters.declared.lr`.
    public static let declared = TrainerParameters()

    // docs/DESIGN.md's contract.
    public let base_model = TrainerParameter<String?>(
        "base_model", required: .sft(hint: "base, chat, or a model folder"),
        "The starting model: base or chat (in models/), or a model folder")
    public let dataset = TrainerParameter<String?>("dataset", required: .always, "Training data")
    public let general_dataset = TrainerParameter<String?>("general_dataset", "General records mixed into training (mix_ratio)")
    public let val_dataset = TrainerParameter<String?>("val_dataset", "Validation records; without it a share of dataset is held out")
    /// LLaMA-Factory's `max_samples`: `dataset.select(range(max_samples))` in hiyouga/LLaMA-Factory
    /// src/llamafactory/data/loader.py at 00031b1a.
    public let max_samples = TrainerParameter<Int?>(
        "max_samples", in: .atLeast(1),
        "Keep only the first N domain records, before any split or mixing")
    public let mix_ratio = TrainerParameter(
        "mix_ratio", 0.0, in: .closedOpen(0, 1), needs: "general_dataset",
        "Share of general records in the final training set")
    public let epochs = TrainerParameter("epochs", 3.0, in: .above(0), "Epochs")
    public let lr = TrainerParameter("lr", 2e-4, pretrain: 3e-3, in: .openClosed(0, 1), "Peak learning rate")
    public let warmup_ratio = TrainerParameter(
        "warmup_ratio", 0.03, in: .closedOpen(0, 1),
        "Share of the steps over which the learning rate rises from 0 to lr")
    /// Its values are TrainingCore's schedules (`cosine`, `linear`), checked as it reads them.
    public let schedule = TrainerParameter("schedule", "cosine", "Decay after warmup: cosine or linear")
    public let min_lr_ratio = TrainerParameter("min_lr_ratio", 0.0, in: .closed(0, 1), "Where the decay ends, as a share of lr")
    public let weight_decay = TrainerParameter("weight_decay", 0.0, in: .closedOpen(0, 1), "AdamW's decoupled weight decay")
    public let batch_size = TrainerParameter("batch_size", 8, in: .closed(1, 4096), "Sequences per micro-batch")
    public let grad_accum = TrainerParameter("grad_accum", 1, in: .closed(1, 4096), "Micro-batches per optimiser step")
    public let max_seq_len = TrainerParameter("max_seq_len", 128, in: .closed(2, 8192), "Tokens per sequence; longer records are cut")
    public let lora_r = TrainerParameter("lora_r", 8, in: .closed(1, 1024), "LoRA rank")
    public let lora_alpha = TrainerParameter("lora_alpha", 16.0, in: .above(0), "LoRA's scale: updates are scaled by lora_alpha / lora_r")
    public let lora_dropout = TrainerParameter("lora_dropout", 0.05, in: .closedOpen(0, 1), "Dropout on the input of the LoRA update")
    /// Its values are TrainingCore's projections, checked as it reads them.
    public let lora_targets = TrainerParameter(
        "lora_targets", ["q_proj", "v_proj"],
        "Projections LoRA adapts: a list, or names separated by commas or spaces")
    public let full_finetune = TrainerParameter("full_finetune", false, pretrain: true, "Train every weight instead of LoRA adapters")
    public let eval_steps = TrainerParameter<Int?>(
        "eval_steps", in: .atLeast(1),
        "Evaluate every eval_steps optimiser steps and after the last; unset, about ten times a run")
    /// Must be ≥ 0: checked as TrainingCore reads it into its generator's unsigned seed.
    public let seed = TrainerParameter("seed", 42, "Seed")
    // Beyond the contract, with transformers' names and defaults.
    public let max_grad_norm = TrainerParameter(
        "max_grad_norm", 1.0, in: .atLeast(0, note: "0 turns clipping off"),
        "Gradients are clipped to this global norm")
    public let adam_beta1 = TrainerParameter("adam_beta1", 0.9, in: .closedOpen(0, 1), "AdamW's first-moment decay")
    public let adam_beta2 = TrainerParameter("adam_beta2", 0.999, in: .closedOpen(0, 1), "AdamW's second-moment decay")
    public let adam_epsilon = TrainerParameter("adam_epsilon", 1e-8, in: .above(0, finite: false), "AdamW's epsilon")
    public let max_steps = TrainerParameter<Int?>("max_steps", in: .atLeast(1), "Stop after this many optimiser steps")
    public let validation_fraction = TrainerParameter(
        "validation_fraction", 0.1, in: .closedOpen(0, 1),
        "Share of the domain records held out for validation when no val_dataset is given")
    // The shape of the model `pretrain` builds, with Hugging Face LlamaConfig's names; unset, TrainingCore's LlamaConfig
    // defaults (num_key_value_heads: num_attention_heads; max_position_embeddings: at least max_seq_len). Its checks
    // are LlamaConfig's.
    public let hidden_size = TrainerParameter<Int?>("hidden_size", pretrainOnly: "Width of the residual stream")
    public let intermediate_size = TrainerParameter<Int?>("intermediate_size", pretrainOnly: "Width of the MLP")
    public let num_hidden_layers = TrainerParameter<Int?>("num_hidden_layers", pretrainOnly: "Decoder layers")
    public let num_attention_heads = TrainerParameter<Int?>("num_attention_heads", pretrainOnly: "Attention heads")
    public let num_key_value_heads = TrainerParameter<Int?>("num_key_value_heads", pretrainOnly: "Key/value heads (grouped-query)")
    public let max_position_embeddings = TrainerParameter<Int?>("max_position_embeddings", pretrainOnly: "Longest sequence the model takes")
    public let rms_norm_eps = TrainerParameter<Double?>("rms_norm_eps", pretrainOnly: "RMSNorm's epsilon")
    public let rope_theta = TrainerParameter<Double?>("rope_theta", pretrainOnly: "RoPE's base")
    public let tie_word_embeddings = TrainerParameter<Bool?>("tie_word_embeddings", pretrainOnly: "Share the input and output embeddings")

    private init() {}

    /// Every parameter in declaration order (the order Mirror lists stored properties), which is the order
    /// harrow-train reads and checks them in.
    public static let all: [any AnyTrainerParameter] = Mirror(reflecting: declared).children.compactMap {
        $0.value as? any AnyTrainerParameter
    }

    /// The defaults of `parameters` as trial.json would write them (unset ones left out).
    public static func defaults(of parameters: [any AnyTrainerParameter], mode: TrainingMode = .sft) -> [String: ParamValue] {
        parameters.reduce(into: [:]) { out, p in out[p.name] = p.defaultParamValue(mode) }
    }
}

/// One parameter of the trainer contract; `Value` is its type in Swift (optional when it may be unset).
public struct TrainerParameter<Value: TrainerValue>: AnyTrainerParameter {
    public typealias Bounds = TrainerParameters.Bounds
    public typealias Requirement = TrainerParameters.Requirement

    public let name: String
    public let defaultValue: Value
    /// The default when pretraining, where it differs.
    public let pretrainDefault: Value?
    public let bounds: Bounds?
    public let requirement: Requirement?
    /// A parameter this one needs whenever it is not zero (mix_ratio needs general_dataset).
    public let needs: String?
    public let pretrainOnly: Bool
    public let summary: String

    public init(
        _ name: String, _ defaultValue: Value, pretrain: Value? = nil, in bounds: Bounds? = nil, needs: String? = nil,
        _ summary: String
    ) {
        self.name = name; self.defaultValue = defaultValue; pretrainDefault = pretrain; self.bounds = bounds
        requirement = nil; self.needs = needs; pretrainOnly = false; self.summary = summary
    }

    public func defaultValue(_ mode: TrainingMode) -> Value { mode == .pretrain ? pretrainDefault ?? defaultValue : defaultValue }

    public func defaultParamValue(_ mode: TrainingMode) -> ParamValue? { defaultValue(mode).paramValue }

    public func typeProblem(_ value: ParamValue) -> String? {
        Value(trialValue: value) == nil ? "\(name) \(Value.expected) (got \(value.refusalText))" : nil
    }

    public func isMissing(_ values: TrainerParameters.Values) -> Bool { values[self].paramValue == nil }

    public func boundsProblems(_ values: TrainerParameters.Values) -> [String] {
        guard let (number, text) = values[self].bounded else { return [] }
        var out: [String] = []
        if let bounds, !bounds.contains(number) { out.append(bounds.problem(name, got: text)) }
        if let needs, number != 0, values.given[needs] == nil { out.append("\(name) > 0 needs \(needs)") }
        return out
    }
}

extension TrainerParameter where Value: ExpressibleByNilLiteral {
    /// A parameter unset by default.
    public init(_ name: String, in bounds: Bounds? = nil, required: Requirement? = nil, _ summary: String) {
        self.name = name; defaultValue = nil; pretrainDefault = nil; self.bounds = bounds
        requirement = required; needs = nil; pretrainOnly = false; self.summary = summary
    }

    /// Part of the model shape `pretrain` builds.
    public init(_ name: String, pretrainOnly summary: String) {
        self.name = name; defaultValue = nil; pretrainDefault = nil; bounds = nil
        requirement = nil; needs = nil; pretrainOnly = true; self.summary = summary
    }
}

/// A trainer parameter whatever its type: what reading, checking and the name lists need.
public protocol AnyTrainerParameter: Sendable {
    var name: String { get }
    var summary: String { get }
    var requirement: TrainerParameters.Requirement? { get }
    var pretrainOnly: Bool { get }
    /// The default as trial.json would write it; nil when unset.
    func defaultParamValue(_ mode: TrainingMode) -> ParamValue?
    /// The refusal of a value of the wrong type; nil when `value` reads as this parameter's type.
    func typeProblem(_ value: ParamValue) -> String?
    /// Whether it is unset in `values`.
    func isMissing(_ values: TrainerParameters.Values) -> Bool
    /// A value out of bounds; a parameter it needs, missing.
    func boundsProblems(_ values: TrainerParameters.Values) -> [String]
}

extension TrainerParameters {
    /// The values a numeric parameter accepts, and the words of its refusal: "lr must be in (0, 1] (got 2.0)".
    public struct Bounds: Sendable {
        let low: Double, lowIncluded: Bool, high: Double?, highIncluded: Bool
        /// Whether an infinite value is refused as well.
        let finite: Bool
        /// Said before the value in the refusal.
        let note: String?

        public static func closed(_ low: Double, _ high: Double) -> Bounds { Bounds(low, true, high, true) }
        public static func closedOpen(_ low: Double, _ high: Double) -> Bounds { Bounds(low, true, high, false) }
        public static func openClosed(_ low: Double, _ high: Double) -> Bounds { Bounds(low, false, high, true) }
        public static func above(_ low: Double, finite: Bool = true) -> Bounds { Bounds(low, false, nil, false, finite: finite) }
        public static func atLeast(_ low: Double, note: String? = nil) -> Bounds { Bounds(low, true, nil, false, note: note) }

        private init(_ low: Double, _ lowIncluded: Bool, _ high: Double?, _ highIncluded: Bool, finite: Bool = true, note: String? = nil) {
            self.low = low; self.lowIncluded = lowIncluded; self.high = high; self.highIncluded = highIncluded
            self.finite = finite; self.note = note
        }

        public func contains(_ x: Double) -> Bool {
            guard lowIncluded ? x >= low : x > low else { return false }
            if let high, !(highIncluded ? x <= high : x < high) { return false }
            return !finite || x.isFinite
        }

        func problem(_ name: String, got text: String) -> String {
            let range =
                if let high {
                    "in " + (lowIncluded ? "[" : "(") + Self.text(low) + ", " + Self.text(high) + (highIncluded ? "]" : ")")
                } else {
                    (lowIncluded ? "≥ " : "> ") + Self.text(low)
                }
            return "\(name) must be \(range) (\(note.map { $0 + "; " } ?? "")got \(text))"
        }

        private static func text(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
    }

    /// A parameter without which harrow-train does not start.
    public enum Requirement: Sendable, Equatable {
        case always
        /// Required by `sft`; the hint says what it may be.
        case sft(hint: String)

        func applies(to mode: TrainingMode) -> Bool { if case .sft = self { mode == .sft } else { true } }

        func problem(_ name: String) -> String {
            switch self {
            case .always: "\(name) is required"
            case .sft(let hint): "\(name) is required for sft (\(hint))"
            }
        }
    }

    /// A trial's parameters as harrow-train reads them in one mode: the given values of each parameter's type, else
    /// its default; what is given but not read; the refusals.
    public struct Values: Sendable {
        public let mode: TrainingMode
        /// The values given of the right type, by name.
        let given: [String: ParamValue]
        /// Names given that this mode does not read, sorted.
        public let unknown: [String]
        /// Values of the wrong type, in declaration order: "batch_size must be an integer (got 2.5)".
        public let typeProblems: [String]

        public init(_ values: [String: ParamValue], mode: TrainingMode) {
            self.mode = mode
            var given: [String: ParamValue] = [:], problems: [String] = []
            for p in TrainerParameters.read(by: mode) {
                // A null is an unset value.
                guard let v = values[p.name], v != .null else { continue }
                if let problem = p.typeProblem(v) { problems.append(problem) } else { given[p.name] = v }
            }
            self.given = given
            typeProblems = problems
            unknown = Set(values.keys).subtracting(TrainerParameters.read(by: mode).map(\.name)).sorted()
        }

        public subscript<V>(_ parameter: TrainerParameter<V>) -> V {
            given[parameter.name].flatMap(V.init(trialValue:)) ?? parameter.defaultValue(mode)
        }

        /// Missing required values (those always required before those sft requires), then values out of bounds
        /// in declaration order.
        public var problems: [String] {
            let read = TrainerParameters.read(by: mode)
            let missing = read.filter { $0.requirement?.applies(to: mode) == true && $0.isMissing(self) }
            let required = missing.filter { $0.requirement == .always } + missing.filter { $0.requirement != .always }
            return required.compactMap { p in p.requirement?.problem(p.name) } + read.flatMap { $0.boundsProblems(self) }
        }
    }

    /// What `mode` reads: `pretrain` reads the model shape besides.
    public static func read(by mode: TrainingMode) -> [any AnyTrainerParameter] { mode == .pretrain ? all : readBySFT }
    private static let readBySFT = all.filter { !$0.pretrainOnly }
}

/// The Swift type of a trainer parameter, read from a trial's value with harrow-train's leniency: a number may be
/// given as text ("2e-4"), an integer as an integral float (8.0), a list of names as one string.
public protocol TrainerValue: Sendable {
    /// The refusal of a value of another type: "must be a number".
    static var expected: String { get }
    init?(trialValue: ParamValue)
    /// As trial.json writes it; nil when unset.
    var paramValue: ParamValue? { get }
    /// The value for a bounds check and as its refusal quotes it; nil when not a number or unset.
    var bounded: (Double, String)? { get }
}

extension TrainerValue {
    public var bounded: (Double, String)? { nil }
}

extension Double: TrainerValue {
    public static var expected: String { "must be a number" }
    public init?(trialValue v: ParamValue) {
        switch v {
        case .int(let i): self = Double(i)
        case .double(let d): self = d
        case .string(let s): guard let d = Double(s) else { return nil }; self = d
        default: return nil
        }
    }
    public var paramValue: ParamValue? { .double(self) }
    public var bounded: (Double, String)? { (self, String(self)) }
}

extension Int: TrainerValue {
    public static var expected: String { "must be an integer" }
    public init?(trialValue v: ParamValue) {
        switch v {
        case .int(let i) where abs(Double(i)) < 1e15: self = i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: self = Int(d)
        case .string(let s): guard let i = Int(s) else { return nil }; self = i
        default: return nil
        }
    }
    public var paramValue: ParamValue? { .int(self) }
    public var bounded: (Double, String)? { (Double(self), String(self)) }
}

extension Bool: TrainerValue {
    public static var expected: String { "must be true or false" }
    public init?(trialValue v: ParamValue) {
        switch v {
        case .bool(let b): self = b
        case .string(let s): guard let b = Bool(s) else { return nil }; self = b
        default: return nil
        }
    }
    public var paramValue: ParamValue? { .bool(self) }
}

extension String: TrainerValue {
    public static var expected: String { "must be a string" }
    public init?(trialValue v: ParamValue) {
        guard case .string(let s) = v else { return nil }
        self = s
    }
    public var paramValue: ParamValue? { .string(self) }
}

extension Array: TrainerValue where Element == String {
    public static var expected: String { "must be a list of names" }
    /// A list of strings, or one string of names separated by commas or spaces.
    public init?(trialValue v: ParamValue) {
        switch v {
        case .list(let items):
            var names: [String] = []
            for case .string(let s) in items { names.append(s) }
            guard names.count == items.count else { return nil }
            self = names
        case .string(let s): self = s.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        default: return nil
        }
    }
    public var paramValue: ParamValue? { .list(map(ParamValue.string)) }
}

extension Optional: TrainerValue where Wrapped: TrainerValue {
    public static var expected: String { Wrapped.expected }
    public init?(trialValue v: ParamValue) {
        guard let w = Wrapped(trialValue: v) else { return nil }
        self = w
    }
    public var paramValue: ParamValue? { flatMap(\.paramValue) }
    public var bounded: (Double, String)? { flatMap(\.bounded) }
}

extension ParamValue {
    /// How a refusal quotes a value: as Foundation prints what JSONSerialization returns, which is how harrow-train
    /// has always quoted it (`true` as 1, strings in a list quoted).
    var refusalText: String {
        switch self {
        case .string(let s): s
        case .list(let items):
            "["
                + items.map { if case .string(let s) = $0 { String(reflecting: s) } else { $0.refusalText } }
                .joined(separator: ", ") + "]"
        case .bool(let b): b ? "1" : "0"
        case .null: "<null>"
        case .int(let i): String(i)
        case .double(let d): String(d)
        }
    }
}
