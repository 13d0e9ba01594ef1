import Foundation
import HarrowCore
import Testing
@testable import HarrowTrain
@testable import TrainingCore

@Suite struct CommandLineTests {
    /// Several values follow one flag, as --help shows them.
    @Test func benchTakesSeveralConfigurationsAndThreadCounts() throws {
        let bench = try #require(
            try HarrowTrain.parseAsRoot(["bench", "--configs", "tiny", "small", "--threads", "1", "2", "--json"]) as? Bench)
        #expect(bench.configs == ["tiny", "small"])
        #expect(bench.threads == [1, 2])
        #expect(bench.json)
        #expect(throws: (any Error).self) { try HarrowTrain.parseAsRoot(["bench", "--configs", "huge"]) }
    }

    /// max_samples keeps the first N domain records (LLaMA-Factory's meaning) and must be positive.
    @Test func maxSamplesIsReadAndChecked() throws {
        let o = try TrainOptions(mode: .sft, parameters: ["base_model": "chat", "dataset": "d.jsonl", "max_samples": 100])
        #expect(o.max_samples == 100 && o.unknownParameters.isEmpty)
        #expect(throws: (any Error).self) {
            try TrainOptions(mode: .sft, parameters: ["base_model": "chat", "dataset": "d.jsonl", "max_samples": 0])
        }
    }

    /// The contract's parameter list is exactly what the trainer reads: none of its names is warned as
    /// unknown, and a name outside it is.
    @Test func theTrainerReadsTheContractsParameters() throws {
        let values: [String: Any] = [
            "base_model": "chat", "dataset": "d.jsonl", "general_dataset": "g.jsonl", "val_dataset": "v.jsonl", "max_samples": 10,
            "mix_ratio": 0.2, "epochs": 2, "lr": 1e-3, "warmup_ratio": 0.03, "schedule": "linear", "min_lr_ratio": 0.1,
            "weight_decay": 0.01, "batch_size": 4, "grad_accum": 2, "max_seq_len": 64, "lora_r": 4, "lora_alpha": 8,
            "lora_dropout": 0.0, "lora_targets": ["q_proj"], "full_finetune": false, "eval_steps": 5, "seed": 1,
            "max_grad_norm": 1.0, "adam_beta1": 0.9, "adam_beta2": 0.99, "adam_epsilon": 1e-8, "max_steps": 20, "validation_fraction": 0.2
        ]
        #expect(Set(values.keys) == TrainerContract.parameters)
        let o = try TrainOptions(mode: .sft, parameters: values)
        #expect(o.unknownParameters.isEmpty, "\(o.unknownParameters)")
        let extra = try TrainOptions(mode: .sft, parameters: values.merging(["hidden_size": 8, "lerning_rate": 1]) { a, _ in a })
        #expect(extra.unknownParameters == ["hidden_size", "lerning_rate"])
    }

    /// A trial's refusals keep their words and order: values of the wrong type (quoted as JSONSerialization's values
    /// print), then what TrainingCore's types refuse, then missing values, then values out of bounds.
    @Test func refusalsKeepTheirWordsAndOrder() {
        let trial = ParamValue.object(
            fromJSON: #"""
                {"lr": true, "batch_size": 2.5, "lora_targets": ["qkv", 1], "seed": -1, "schedule": "step", "epochs": 0,
                 "max_grad_norm": "inf", "mix_ratio": 0.5}
                """#)
        #expect(
            throws: TrainingError.config([
                "lr must be a number (got 1)", "batch_size must be an integer (got 2.5)",
                #"lora_targets must be a list of names (got ["qkv", 1])"#, "schedule must be cosine or linear (got step)",
                "seed must be ≥ 0 (got -1)", "dataset is required", "base_model is required for sft (base, chat, or a model folder)",
                "mix_ratio > 0 needs general_dataset", "epochs must be > 0 (got 0.0)",
                "max_grad_norm must be ≥ 0 (0 turns clipping off; got inf)"
            ])
        ) { try TrainOptions(mode: .sft, parameters: trial) }
    }

    /// Defaults and flag help come from the parameters' declarations.
    @Test func defaultsAndHelpComeFromTheDeclarations() throws {
        let o = try TrainOptions(mode: .pretrain, parameters: ["dataset": "d.txt"])
        #expect(o.lr == 3e-3 && o.full_finetune && o.batch_size == 8 && o.max_seq_len == 128 && o.schedule == .cosine)
        #expect(o.lora_targets == [.q_proj, .v_proj] && o.seed == 42 && o.eval_steps == nil)
        #expect(TrainArguments.helpMessage().contains("Peak learning rate (overrides `lr`)."))
    }

    /// harrow-train reads trial.json through ParamValue: a 17-digit float as the sweep wrote it; then `--set` values
    /// (JSON when they parse), then the flags.
    @Test func trialJSONIsReadThroughParamValue() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("trial.json").path
        try #"{"lr": 0.00048544120805620847, "epochs": 2, "lora_targets": ["q_proj"]}"#.write(
            toFile: file, atomically: true, encoding: .utf8)
        let arguments = try TrainArguments.parse(["--config", file, "--set", "schedule=linear", "--set", "epochs=3", "--seed", "7"])
        #expect(
            try arguments.parameters() == [
                "lr": .double(0.00048544120805620847), "epochs": .int(3), "lora_targets": .list([.string("q_proj")]),
                "schedule": .string("linear"), "seed": .int(7)
            ])
    }
}
