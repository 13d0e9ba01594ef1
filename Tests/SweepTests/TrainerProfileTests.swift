import Foundation
import Testing
import Yams
@testable import Sweep

/// Trainer profiles: LLaMA-Factory configs and Hugging Face flags written from a trial, under the tools' own names.
@Suite struct TrainerProfileTests {
    static let experiment = """
        name: lf
        parameters:
          lr: {values: [1.0e-4, 3.0e-4]}
          epochs: {value: 3}
          warmup_ratio: {value: 0.03}
          lora_r: {value: 16}
          lora_alpha: {value: 32}
          lora_targets: {value: [q_proj, v_proj]}
          base_model: {value: Qwen/Qwen2.5-7B-Instruct}
          mix_ratio: {value: 0.2}
          general_dataset: {value: alpaca_en_demo}
          lora_dropout: {value: 0.05}
        trainer: {profile: llamafactory, config: configs/train_lora.yaml}
        """

    /// A LLaMA-Factory LoRA SFT config as its examples write them (examples/train_lora/llama3_lora_sft.yaml).
    static let userConfig = """
        model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
        stage: sft
        do_train: true
        finetuning_type: lora
        lora_rank: 8
        lora_target: all
        dataset: identity,medical_qa
        template: llama3
        cutoff_len: 2048
        output_dir: saves/llama3-8b/lora/sft
        learning_rate: 1.0e-4
        num_train_epochs: 3.0
        """

    @Test func aLlamaFactoryTrialIsTheUsersConfigWithItsParameters() throws {
        let e = try Experiment.parse(yaml: Self.experiment, file: "exp.yaml")
        let profile = try #require(e.trainer.profile)
        #expect(e.trainer.command == ["llamafactory-cli", "train", "{run_dir}/llamafactory.yaml"])
        #expect(e.trainer.metrics?.format == .llamafactory && e.trainer.metrics?.path == "trainer_log.jsonl")
        let trial = try Planner.plan(e).trials[1]
        let expansion = try profile.expand(trial: trial, runDir: "/runs/abc", baseConfig: Self.userConfig)
        #expect(expansion.argv == ["llamafactory-cli", "train", "/runs/abc/llamafactory.yaml"])
        let text = try #require(expansion.files["/runs/abc/llamafactory.yaml"])
        let config = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(config["learning_rate"] as? Double == 3.0e-4)
        #expect(config["num_train_epochs"] as? Int == 3 && config["warmup_ratio"] as? Double == 0.03)
        #expect(config["lora_rank"] as? Int == 16 && config["lora_alpha"] as? Int == 32 && config["lora_dropout"] as? Double == 0.05)
        #expect(config["lora_target"] as? String == "q_proj,v_proj")
        #expect(config["model_name_or_path"] as? String == "Qwen/Qwen2.5-7B-Instruct")
        // The general data joins the user's datasets at the mixing ratio.
        #expect(config["dataset"] as? String == "identity,medical_qa,alpaca_en_demo")
        #expect(config["mix_strategy"] as? String == "interleave_under" && config["interleave_probs"] as? String == "0.4,0.4,0.2")
        #expect(config["output_dir"] as? String == "/runs/abc")
        // The rest of the user's config is kept.
        #expect(config["stage"] as? String == "sft" && config["template"] as? String == "llama3" && config["cutoff_len"] as? Int == 2048)
        #expect(config["do_train"] as? Bool == true)
        // Every name written is one LLaMA-Factory defines.
        let known = Set(
            try fixture("llamafactory-arguments.txt").text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init))
        for key in config.keys { #expect(known.contains(key), "LLaMA-Factory has no argument \(key)") }
        #expect(config["mix_ratio"] == nil && config["general_dataset"] == nil && config["lr"] == nil)
    }

    /// `base_model: chat` reaches the tool as the shipped model's folder, the one recorded as the run's input.
    @Test func aShippedModelNameBecomesItsFolder() throws {
        let e = try Experiment.parse(
            yaml: "name: x\nparameters: {base_model: {value: chat}, lr: {value: 0.001}}\ntrainer: {profile: hf, program: t.py}\n",
            file: "exp.yaml")
        let hf = try #require(e.trainer.profile).expand(trial: try Planner.plan(e).trials[0], runDir: "/r", baseConfig: nil)
        #expect(hf.argv.contains("models/chat") && !hf.argv.contains("chat"), "\(hf.argv)")
        let lf = try Experiment.parse(
            yaml: Self.experiment.replacingOccurrences(of: "Qwen/Qwen2.5-7B-Instruct", with: "base"), file: "exp.yaml")
        let text = try #require(
            try lf.trainer.profile!.expand(trial: Planner.plan(lf).trials[0], runDir: "/r", baseConfig: Self.userConfig).files[
                "/r/llamafactory.yaml"])
        #expect((try Yams.load(yaml: text) as? [String: Any])?["model_name_or_path"] as? String == "models/base")
    }

    /// LLaMA-Factory mixes `eval_dataset` with the training mix's probabilities and refuses a list of another length
    /// (data_args.py): harrow says so before the trial starts, instead of the tool failing after loading the model.
    @Test func aMixWithAnEvalDatasetOfAnotherLengthIsRefused() throws {
        let e = try Experiment.parse(yaml: Self.experiment, file: "exp.yaml")
        let trial = try Planner.plan(e).trials[0]
        #expect(throws: TrainerProfile.ConfigError.self) {
            try e.trainer.profile!.expand(trial: trial, runDir: "/r", baseConfig: Self.userConfig + "\neval_dataset: medical_val\n")
        }
        let matching = try e.trainer.profile!.expand(
            trial: trial, runDir: "/r", baseConfig: Self.userConfig + "\neval_dataset: a_val,b_val,general_val\n")
        #expect(matching.files["/r/llamafactory.yaml"]?.contains("interleave_probs") == true)
    }

    /// A general dataset the config already lists keeps its one entry and gets exactly the ratio; the others share
    /// the rest in the config's order (a second entry would give it its share twice: 0.4 + 0.2).
    @Test func aGeneralDatasetTheConfigListsGetsTheRatioOnce() throws {
        let e = try Experiment.parse(yaml: Self.experiment, file: "exp.yaml")
        let trial = try Planner.plan(e).trials[0]
        func mixed(_ datasets: String, eval: String? = nil) throws -> [String: Any] {
            let base =
                Self.userConfig.replacingOccurrences(of: "dataset: identity,medical_qa", with: "dataset: \(datasets)")
                + (eval.map { "\neval_dataset: \($0)\n" } ?? "")
            let text = try #require(
                try e.trainer.profile!.expand(trial: trial, runDir: "/r", baseConfig: base).files["/r/llamafactory.yaml"])
            return try #require(try Yams.load(yaml: text) as? [String: Any])
        }
        let two = try mixed("identity,alpaca_en_demo")
        #expect(two["dataset"] as? String == "identity,alpaca_en_demo" && two["interleave_probs"] as? String == "0.8,0.2")
        let three = try mixed("alpaca_en_demo, identity, medical_qa")
        #expect(
            three["dataset"] as? String == "alpaca_en_demo,identity,medical_qa" && three["interleave_probs"] as? String == "0.2,0.4,0.4")
        // The eval list then matches the datasets as listed, with no extra general entry.
        #expect(try mixed("identity,alpaca_en_demo", eval: "identity_val,general_val")["interleave_probs"] as? String == "0.8,0.2")
        #expect(throws: TrainerProfile.ConfigError.self) { try mixed("identity,alpaca_en_demo", eval: "a,b,c") }
        // Only general data: there is nothing to mix it into.
        #expect(throws: TrainerProfile.ConfigError.self) { try mixed("alpaca_en_demo") }
    }

    /// PyYAML, which LLaMA-Factory reads its config with, follows YAML 1.1: `5e-05` is a string there
    /// (hiyouga/LLaMA-Factory#4014). Every float written has a `.` in its mantissa and a signed exponent.
    @Test func floatsAreWrittenSoYaml11ReadsThemAsFloats() throws {
        let yaml = Self.experiment.replacingOccurrences(of: "lr: {values: [1.0e-4, 3.0e-4]}", with: "lr: {value: 5.0e-5}")
            .replacingOccurrences(
                of: "epochs: {value: 3}", with: "epochs: {value: 3}\n  betas: {value: [1.0e-8, 0.9, 2.0]}\n  big: {value: 1.0e+20}")
        let e = try Experiment.parse(yaml: yaml, file: "exp.yaml")
        let trial = try Planner.plan(e).trials[0]
        let text = try #require(
            try e.trainer.profile!.expand(trial: trial, runDir: "/r", baseConfig: Self.userConfig + "\nweight_decay: 1e-5\n")
                .files["/r/llamafactory.yaml"])
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains("learning_rate: 5.0e-05"), "\(text)")
        #expect(lines.contains("betas: [1.0e-08, 0.9, 2.0]") && lines.contains("big: 1.0e+20"), "\(text)")
        #expect(lines.contains("weight_decay: 1.0e-05"), "\(text)")  // the user's own floats too
        #expect(lines.contains("num_train_epochs: 3") && lines.contains("lora_rank: 16"), "\(text)")  // integers stay integers
        // YAML 1.1's float pattern (yaml.org/type/float.html) matches every number written with a dot or exponent.
        let float11 = try Regex(#"^[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?$"#)
        for line in lines where !line.hasPrefix("#") {
            let value = String(line.split(separator: ": ", maxSplits: 1).last ?? "")
            for item in value.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).components(separatedBy: ", ")
            where Double(item) != nil && Int(item) == nil {
                #expect(item.wholeMatch(of: float11) != nil, "\(line) is not a YAML 1.1 float")
            }
        }
    }

    @Test func mappingsCanBeOverridden() throws {
        var yaml = Self.experiment.replacingOccurrences(
            of: "trainer: {profile: llamafactory, config: configs/train_lora.yaml}",
            with: "trainer: {profile: llamafactory, config: c.yaml, map: {warmup_ratio: warmup_steps}}")
        yaml = yaml.replacingOccurrences(of: "mix_ratio: {value: 0.2}", with: "mix_ratio: {value: 0.0}")
        let e = try Experiment.parse(yaml: yaml, file: "exp.yaml")
        let trial = try Planner.plan(e).trials[0]
        let text = try #require(
            try e.trainer.profile!.expand(trial: trial, runDir: "/r", baseConfig: Self.userConfig).files["/r/llamafactory.yaml"])
        let config = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(config["warmup_steps"] as? Double == 0.03 && config["warmup_ratio"] == nil)
        #expect(config["dataset"] as? String == "identity,medical_qa" && config["mix_strategy"] == nil)  // no general data at mix 0
    }

    @Test func aHuggingFaceScriptGetsTrainingArgumentsFlags() throws {
        let e = try Experiment.parse(
            yaml: """
                name: hf
                parameters:
                  lr: {value: 2.0e-4}
                  epochs: {value: 2}
                  batch_size: {value: 8}
                  lora_r: {value: 16}
                  lora_targets: {value: [q_proj, v_proj]}
                trainer: {profile: hf, program: sft.py}
                """, file: "exp.yaml")
        #expect(e.trainer.metrics?.format == .hf)
        let trial = try Planner.plan(e).trials[0]
        let argv = try e.trainer.profile!.expand(trial: trial, runDir: "/runs/x", baseConfig: nil).argv
        // In the experiment's (sorted) parameter order; a script's own arguments keep their names, lists as nargs.
        #expect(
            argv == [
                "python3", "sft.py", "--per_device_train_batch_size", "8", "--num_train_epochs", "2", "--lora_r", "16",
                "--lora_targets", "q_proj", "v_proj", "--learning_rate", "0.0002", "--output_dir", "/runs/x"
            ], "\(argv)")
    }

    /// `executor:` for a cluster: read into settings, and every mistake named with its line.
    @Test func aSlurmExecutorIsReadAndItsMistakesSayWhere() throws {
        let e = try Experiment.parse(
            yaml: """
                name: x
                parameters: {lr: {value: 0.1}}
                trainer: {command: [t]}
                executor: {type: slurm, partition: gpu, time: "4:00:00", cpus_per_task: 4, mem: 32G, gres: "gpu:1", array_parallelism: 8,
                           extra_args: [--account=ml, --qos=high], poll: 20}
                """, file: "exp.yaml")
        let x = try #require(e.executor)
        #expect(x.type == .slurm && x.partition == "gpu" && x.time == "4:00:00" && x.cpusPerTask == 4 && x.mem == "32G")
        #expect(x.gres == "gpu:1" && x.arrayParallelism == 8 && x.extraArgs == ["--account=ml", "--qos=high"] && x.poll == 20)

        let bad = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\nexecutor: {type: slrum, time: 4h, array_paralellism: 2}\n")
        #expect(bad.contains { $0.message.contains("unknown executor type 'slrum'") && $0.location.line == 3 }, "\(bad)")
        #expect(bad.contains { $0.message.contains("executor") && ($0.hint ?? "").contains("array_parallelism") }, "\(bad)")
        let time = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\nexecutor: {type: slurm, time: 4h}\n")
        #expect(
            time.contains { $0.message.contains("Slurm time limit") && ($0.hint ?? "").contains("4:00:00") && $0.location.line == 3 },
            "\(time)")
    }

    @Test func profileMistakesSayWhere() {
        let unknown = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\ntrainer: {profile: llamafactroy, config: a.yaml}\n")
        #expect(
            unknown.contains {
                $0.message.contains("unknown trainer profile 'llamafactroy'") && $0.location.line == 3
                    && ($0.hint ?? "").contains("llamafactory")
            },
            "\(unknown)")
        let noConfig = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\ntrainer: {profile: llamafactory}\n")
        #expect(noConfig.contains { $0.message.contains("needs `config:`") }, "\(noConfig)")
        let both = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\ntrainer: {profile: hf, program: t.py, command: [python3, t.py]}\n")
        #expect(both.contains { $0.message.contains("both say how to start") }, "\(both)")
        let stray = diagnostics("name: x\nparameters: {lr: {value: 0.1}}\ntrainer: {command: [python3, t.py], config: a.yaml}\n")
        #expect(stray.contains { $0.message.contains("belongs to a `trainer.profile`") }, "\(stray)")
    }
}
