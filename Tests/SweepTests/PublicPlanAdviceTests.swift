import HarrowCore
import Testing
@testable import Sweep

/// Plan-time advice on LLaMA-Factory's own example configs, unchanged (Fixtures/llamafactory-examples/README.md names
/// their repository, paths and commit), each named as `trainer.config` by a small Harrow experiment beside it. The
/// rules read what the config fixes (num_train_epochs, learning_rate, warmup_ratio, lora_rank, lora_alpha, max_samples,
/// dataset, stage, finetuning_type) wherever the trial leaves it. Records are those of LLaMA-Factory's data files at
/// the same commit, counted with Python's `json` module: identity.json 91, alpaca_en_demo.json 999, mllm_demo.json 6,
/// c4_demo.jsonl 300, dpo_en_demo.json 300.
@Suite struct PublicPlanAdviceTests {
    static let records: [PlanAdvice.DataSource: Int] = [
        .llamaFactory(name: "identity", datasetDir: "data"): 91, .llamaFactory(name: "alpaca_en_demo", datasetDir: "data"): 999,
        .llamaFactory(name: "mllm_demo", datasetDir: "data"): 6, .llamaFactory(name: "c4_demo", datasetDir: "data"): 300,
        .llamaFactory(name: "dpo_en_demo", datasetDir: "data"): 300
    ]

    /// The experiment's plan, with `extra` parameters, and its config's arguments, as `harrow plan` reads them.
    static func load(_ experiment: String, extra: String = "") throws -> (plan: Plan, config: [String: ParamValue]) {
        let (text, path) = try fixture("llamafactory-examples/" + experiment)
        let yaml = text.replacingOccurrences(of: "parameters:\n", with: "parameters:\n" + extra)
        let plan = try Planner.plan(Experiment.parse(yaml: yaml, file: path))
        let configPath = try #require(plan.experiment.trainer.profile?.config)
        let config = try #require(PlanAdvice.configArguments(yaml: try fixture("llamafactory-examples/" + configPath).text))
        return (plan, config)
    }

    static func advice(_ experiment: String, extra: String = "", records: [PlanAdvice.DataSource: Int] = records) throws -> [PlanAdvice
        .Warning]
    {
        let (plan, config) = try load(experiment, extra: extra)
        return PlanAdvice.advise(plan, config: config, records: records)
    }

    static func lf(_ names: String...) -> [PlanAdvice.DataSource] { names.map { .llamaFactory(name: $0, datasetDir: "data") } }

    /// The datasets a config names, split at commas and stripped as LLaMA-Factory splits them, in its dataset_dir.
    @Test func theConfigsDatasetsAreWhatIsCounted() throws {
        for (experiment, sources) in [
            ("qwen3-lora-sft.yaml", Self.lf("identity", "alpaca_en_demo")), ("qwen3-lora-pretrain.yaml", Self.lf("c4_demo")),
            ("qwen3vl-lora-sft.yaml", Self.lf("mllm_demo", "identity", "alpaca_en_demo")),
            // `dataset: identity, alpaca_en_demo`, with a space.
            ("deepseek-v3-kt.yaml", Self.lf("identity", "alpaca_en_demo"))
        ] {
            let (plan, config) = try Self.load(experiment)
            #expect(PlanAdvice.dataSources(plan, config: config) == sources, "\(experiment)")
        }
        // A trial's own `dataset` and `dataset_dir` stand in for the config's.
        let (plan, config) = try Self.load("qwen3-lora-sft.yaml", extra: "  dataset: {value: c4_demo}\n  dataset_dir: {value: /srv/lf}\n")
        #expect(PlanAdvice.dataSources(plan, config: config) == [.llamaFactory(name: "c4_demo", datasetDir: "/srv/lf")])
    }

    /// 3 epochs fixed in the config for 91 + 999 records: the rule gives ~9.7 (log-linear between 10 at 1k and 3 at
    /// 10k: 10 − 7 × log10(1.09)), and 3 is 0.31× that. The swept lr 0.01 is the trial's own.
    @Test func loraSFT() throws {
        let w = try Self.advice("qwen3-lora-sft.yaml")
        #expect(
            w.map(\.message) == [
                "num_train_epochs 3.0 (examples/train_lora/qwen3_lora_sft.yaml) for 1090 training records (identity 91 + alpaca_en_demo 999) "
                    + "is 0.31× the ~9.7 the rule gives: expect it to end under-trained",
                "lr 0.01 is far above LoRA's usual 1e-5 … 1e-3: expect unstable or diverging loss (lower it about 10×)"
            ])
        #expect(w.map(\.indices) == [[1, 2], [2]])
        #expect(w[0].values == [.init(name: "num_train_epochs", value: .double(3)), .init(name: "records", value: .int(1090))])
        #expect(w[1].values == [.init(name: "lr", value: .double(0.01))])
        // Without a count for one of its datasets the data-size rule says nothing.
        var partial = Self.records
        partial[.llamaFactory(name: "alpaca_en_demo", datasetDir: "data")] = nil
        #expect(try Self.advice("qwen3-lora-sft.yaml", records: partial).map(\.rule) == [.lr])
    }

    /// Full fine-tuning: the swept epochs (1: 0.1×; 3: 0.31× of ~9.7) and the config's warmup_ratio 0.1, 10× the ~0.01
    /// one epoch wants; no LoRA rule, so learning_rate 1e-5 and the absent lora_alpha say nothing.
    @Test func fullSFT() throws {
        let w = try Self.advice("qwen3-full-sft.yaml")
        #expect(
            w.map(\.message) == [
                "epochs 1 for 1090 training records (identity 91 + alpaca_en_demo 999) is 0.1× the ~9.7 the rule gives: expect it to end under-trained",
                "epochs 3 for 1090 training records (identity 91 + alpaca_en_demo 999) is 0.31× the ~9.7 the rule gives: expect it to end under-trained",
                "warmup_ratio 0.1 (examples/train_full/qwen3_full_sft.yaml) with 1 epochs is 10× the ~0.01 the rule gives: "
                    + "much of the run passes at a reduced learning rate"
            ])
        #expect(w.map(\.indices) == [[1], [2], [1]])
        #expect(w[2].values == [.init(name: "warmup_ratio", value: .double(0.1)), .init(name: "epochs", value: .int(1))])
    }

    /// DPO and continued pretraining are not SFT: the epoch and learning-rate rules, written for SFT, say nothing (the
    /// DPO example's lr 5e-6 is usual for DPO). Their warmup 0.1 over 3 epochs is 3.3× the ~0.03, within 4×.
    @Test func otherStagesGetNoSFTAdvice() throws {
        #expect(try Self.advice("qwen3-lora-dpo.yaml").isEmpty)
        #expect(try Self.advice("qwen3-lora-pretrain.yaml").isEmpty)
        // The same trials read as SFT would hear that 3 epochs are 0.24× the ~13 for 300 records (15 − 5 × log10(3)) and
        // that lr 5e-6 is too low.
        let sft = try Self.advice("qwen3-lora-dpo.yaml", extra: "  stage: {value: sft}\n")
        #expect(
            sft.map(\.message) == [
                "num_train_epochs 3.0 (examples/train_lora/qwen3_lora_dpo.yaml) for 300 training records (dpo_en_demo 300) is 0.24× "
                    + "the ~13 the rule gives: expect it to end under-trained",
                "lr 5e-06 is far below LoRA's usual 1e-5 … 1e-3: expect loss to barely move"
            ])
    }

    /// Three datasets (6 + 91 + 999 = 1096, ~9.7 epochs): the config's 3 epochs are 0.31×; 10 are within the rule.
    @Test func multimodalLoraSFT() throws {
        let w = try Self.advice("qwen3vl-lora-sft.yaml")
        #expect(
            w.map(\.message) == [
                "epochs 3 for 1096 training records (mllm_demo 6 + identity 91 + alpaca_en_demo 999) is 0.31× the ~9.7 the rule gives: "
                    + "expect it to end under-trained"
            ])
        #expect(w.map(\.indices) == [[1]])
    }

    /// The config fixes lora_alpha 16: rank 8 scales by 2, rank 64 by 0.25, under 0.5.
    @Test func aFixedAlphaAgainstASweptRank() throws {
        let w = try Self.advice("deepseek-v3-kt.yaml")
        let config = "examples/ktransformers/train_lora/deepseek_v3_int8_lora_sft_kt.yaml"
        #expect(
            w.map(\.message) == [
                "num_train_epochs 3.0 (\(config)) for 1090 training records (identity 91 + alpaca_en_demo 999) is 0.31× the ~9.7 the rule "
                    + "gives: expect it to end under-trained",
                "lora_alpha 16 (\(config)) / lora_r 64 scales the update by 0.25, below 0.5: the adapter learns slowly (raise lora_alpha)"
            ])
        #expect(w.map(\.indices) == [[1, 2], [2]])
        #expect(w[1].values == [.init(name: "lora_alpha", value: .int(16)), .init(name: "lora_r", value: .int(64))])
    }

    /// `max_steps: 1000` replaces the config's num_train_epochs 3, so no epochs advice; its LoRA learning_rate 5e-6 is
    /// below the rule's range. warmup_steps 10 is not a share: no warmup advice.
    @Test func maxStepsOverridesEpochs() throws {
        let w = try Self.advice("llama3-megatron-bridge.yaml")
        #expect(
            w.map(\.message) == [
                "learning_rate 5e-06 (examples/megatron_bridge/llama3_sft.yaml) is far below LoRA's usual 1e-5 … 1e-3: expect loss to barely move"
            ])
        #expect(w.map(\.indices) == [[1, 2]])
        #expect(w[0].values == [.init(name: "learning_rate", value: .double(5e-6))])
    }

    /// max_samples cuts each dataset (LLaMA-Factory truncates them one by one), and val_size holds out ⌈share × n⌉:
    /// 50 + 50 = 100, less 10, leaves 90, for which the rule gives 15 epochs.
    @Test func maxSamplesPerDatasetAndValSize() throws {
        let w = try Self.advice("qwen3-lora-sft.yaml", extra: "  max_samples: {value: 50}\n  val_size: {value: 0.1}\n")
        #expect(
            w.first?.message == "num_train_epochs 3.0 (examples/train_lora/qwen3_lora_sft.yaml) for 90 training records (identity 50 "
                + "of 91 + alpaca_en_demo 50 of 999 by max_samples 50, less 10 held out by val_size 0.1) is 0.2× the ~15 the rule gives: "
                + "expect it to end under-trained")
    }

    /// A trial may set a parameter under LLaMA-Factory's own name. With no lora_alpha anywhere LLaMA-Factory takes
    /// 2 × lora_rank, within the range; a lora_alpha without a lora_rank is read against its default rank 8.
    @Test func toolNamesAndDefaults() throws {
        func scale(_ w: [PlanAdvice.Warning]) -> [String] { w.filter { $0.rule == .loraScale || $0.rule == .lr }.map(\.message) }
        #expect(
            scale(try Self.advice("qwen3vl-lora-sft.yaml", extra: "  learning_rate: {value: 1.0e-6}\n"))
                == ["learning_rate 1e-06 is far below LoRA's usual 1e-5 … 1e-3: expect loss to barely move"])
        #expect(scale(try Self.advice("qwen3vl-lora-sft.yaml", extra: "  lora_r: {value: 128}\n")).isEmpty)
        let (plan, config) = try Self.load("qwen3vl-lora-sft.yaml", extra: "  lora_alpha: {value: 64}\n")
        var noRank = config
        noRank["lora_rank"] = nil
        #expect(
            scale(PlanAdvice.advise(plan, config: noRank, records: Self.records)) == [
                "lora_alpha 64 / lora_rank 8 (LLaMA-Factory's default) scales the update by 8, above 4: large steps can destabilise training (lower lora_alpha)"
            ])
    }

    /// Mapped onto `warmup_steps` (transformers 5.2 reads a value below 1 as a share), the config's value is a share
    /// only below 1.
    @Test func warmupStepsIsAShareOnlyBelowOne() throws {
        let yaml =
            "parameters:\n  epochs: {value: 3}\ntrainer: {profile: llamafactory, config: lf.yaml, map: {warmup_ratio: warmup_steps}}\n"
        let p = try plan(yaml)
        #expect(PlanAdvice.advise(p, config: ["warmup_steps": .int(100)], records: [:]).isEmpty)
        #expect(
            PlanAdvice.advise(p, config: ["warmup_steps": .double(0.3)], records: [:]).map(\.message) == [
                "warmup_steps 0.3 (lf.yaml) with 3 epochs is 10× the ~0.03 the rule gives: much of the run passes at a reduced learning rate"
            ])
    }

    /// Under `profile: hf` a trial's TrainingArguments name is read like Harrow's.
    @Test func hfTrainingArgumentNames() throws {
        let p = try plan("parameters:\n  learning_rate: {value: 0.1}\ntrainer: {profile: hf, program: train.py}\n")
        #expect(
            PlanAdvice.advise(p, config: [:], records: [:]).map(\.message)
                == ["learning_rate 0.1 is far above LoRA's usual 1e-5 … 1e-3: expect unstable or diverging loss (lower it about 10×)"])
    }
}
