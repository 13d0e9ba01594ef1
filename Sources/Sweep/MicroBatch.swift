import HarrowCore

/// An out-of-memory retry: half the micro-batch and twice the gradient accumulation, so each optimiser step still
/// sees the same number of examples and the trial is the same training. Pure.
public enum MicroBatch {
    public struct Shrink: Sendable {
        /// The trial as the next attempt runs it (the run keeps its planned parameters and identity).
        public var trial: Trial
        public var batch: (name: String, from: Int, to: Int)
        public var accumulation: (name: String, from: Int, to: Int)
        /// `batch_size 16 → 8 and grad_accum 1 → 2 (the same 16 examples a step)`.
        public var change: String {
            "\(batch.name) \(batch.from) → \(batch.to) and \(accumulation.name) \(accumulation.from) → \(accumulation.to) "
                + "(the same \(batch.from * accumulation.from) examples a step)"
        }
    }

    /// The trial at half its micro-batch, or nil when it cannot be halved exactly (a micro-batch of 1, or odd).
    /// The names are Harrow's (`batch_size`, `grad_accum`), TrainingArguments' (`per_device_train_batch_size`,
    /// `gradient_accumulation_steps`) or, under a profile, the tool's; a value the trial does not set is read from
    /// `config` (a profile's base config, by the tool's names), else the trainer's default accumulation of 1
    /// (harrow-train's `grad_accum`, TrainingArguments' `gradient_accumulation_steps`).
    /// A plain command trainer on transformers' TrainingArguments takes these names without a profile.
    static let trainingArgumentsNames = ["batch_size": "per_device_train_batch_size", "grad_accum": "gradient_accumulation_steps"]

    public static func halved(_ trial: Trial, profile: TrainerProfile?, config: [String: ParamValue] = [:]) -> Shrink? {
        func names(_ harrow: String) -> [String] {
            [harrow] + (profile.map { [$0.name(of: harrow)] } ?? []) + [trainingArgumentsNames[harrow]!]
        }
        func integer(_ v: ParamValue?) -> Int? {
            guard let d = v?.number, d == d.rounded(), d >= 1, d < 1e9 else { return nil }
            return Int(d)
        }
        func setting(_ harrow: String, unset: String) -> (name: String, value: Int?) {
            for n in names(harrow) { if let v = trial[n] { return (n, integer(v)) } }
            let tool = profile?.name(of: harrow) ?? unset
            return (tool, integer(config[tool]))
        }
        let batch = setting("batch_size", unset: "batch_size")
        guard let b = batch.value, b >= 2, b % 2 == 0 else { return nil }
        // An accumulation the trial does not set goes under the names its micro-batch came by.
        let accumulation = setting(
            "grad_accum", unset: batch.name == trainingArgumentsNames["batch_size"] ? trainingArgumentsNames["grad_accum"]! : "grad_accum")
        let a = accumulation.value ?? 1
        var names = trial.names, values = trial.values
        func set(_ name: String, _ value: Int) {
            if let i = names.firstIndex(of: name) { values[i] = .int(value) } else { names.append(name); values.append(.int(value)) }
        }
        set(batch.name, b / 2)
        set(accumulation.name, a * 2)
        return Shrink(
            trial: Trial(names: names, values: values, command: []), batch: (batch.name, b, b / 2),
            accumulation: (accumulation.name, a, a * 2))
    }
}
