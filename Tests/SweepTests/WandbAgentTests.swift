import HarrowCore
import Testing
@testable import Sweep

/// What W&B's agent gives a run: its config file, environment and arguments, nested as W&B nests them.
@Suite struct WandbAgentTests {
    /// wandb/sweeps@b1dfc5f `examples/nested-params/sweep-nested-cli.yaml`, as published.
    static let nestedExample = """
        description: sweep examples with nested parameters using cli
        program: train-nested-cli.py
        project: sweeps-examples
        method: grid
        metric:
          name: loss
          goal: minimize
        parameters:
          batch_size:
            values: [32, 64]
          optimizer:
            parameters:
              lr:
                values: [0.001, 0.0001]
              nadam:
                parameters:
                  beta:
                    values: [0.9, 0.95]
        """

    @Test func nestedExampleGetsDictsAsWandbPassesThem() throws {
        let p = try plan(Self.nestedExample)
        #expect(p.experiment.isWandb && p.experiment.trainerLog?.format == .wandb)
        #expect(p.trials.count == 8)
        let t = p.trials[0]
        let paths = p.experiment.parameterPaths
        #expect(paths["optimizer.nadam.beta"] == ["optimizer", "nadam", "beta"])
        let x = CommandTemplate.expand(
            p.experiment.trainer.command, trial: t, program: p.experiment.program, configPath: "", runDir: "/r",
            paths: paths)
        // W&B's agent: `--optimizer={'lr': 0.001, 'nadam': {'beta': 0.9}}` (str() of the dict), which the example's
        // argparse takes as a string and `wandb.config` replaces with the dict from the config file.
        #expect(
            x.argv == [
                "/usr/bin/env", "python", "train-nested-cli.py", "--batch_size=32", "--optimizer={'lr': 0.001, 'nadam': {'beta': 0.9}}"
            ])
        let json = CommandTemplate.expand(["${args_json}"], trial: t, program: nil, configPath: "", runDir: "", paths: paths).argv
        #expect(json == [#"{"batch_size": 32, "optimizer": {"lr": 0.001, "nadam": {"beta": 0.9}}}"#])
        #expect(
            WandbAgent.configYAML(WandbAgent.config(t, paths: paths)) == """
                wandb_version: 1

                batch_size:
                  value: 32
                optimizer:
                  value:
                    lr: 0.001
                    nadam:
                      beta: 0.9

                """)
    }

    @Test func configFileValuesReadBackWithTheirTypesUnderYaml11() {
        // PyYAML (what wandb.init reads the file with) takes `1e-05` for a string; `1.0e-05` is a float in both.
        #expect(ParamValue.double(1e-5).yaml == "1.0e-05")
        #expect(ParamValue.double(3e20).yaml == "3.0e+20")
        #expect(ParamValue.double(0.0002).yaml == "0.0002")
        #expect(ParamValue.double(2).yaml == "2.0")
        #expect(ParamValue.double(-.infinity).yaml == "-.inf" && ParamValue.double(.nan).yaml == ".nan")
        #expect(ParamValue.int(8).yaml == "8" && ParamValue.bool(true).yaml == "true")
        // A string that looks like a number or a boolean stays a string.
        #expect(ParamValue.string("yes").yaml == #""yes""# && ParamValue.string("1e-5").yaml == #""1e-5""#)
        #expect(ParamValue.list([.string("q_proj"), .double(1e-5)]).yaml == #"["q_proj", 1.0e-05]"#)
    }

    @Test func environmentIsTheAgentsAndOfflineUnlessTheUserChose() {
        let env = WandbAgent.environment(sweep: "lora sweep", run: "ab12cd34", runDir: "/runs/ab12cd34", inherited: [:])
        #expect(env["WANDB_SWEEP_ID"] == "lora_sweep" && env["WANDB_RUN_ID"] == "ab12cd34" && env["WANDB_DIR"] == "/runs/ab12cd34")
        #expect(env["WANDB_SWEEP_PARAM_PATH"] == "/runs/ab12cd34/wandb/sweep-lora_sweep/config-ab12cd34.yaml")
        #expect(env["WANDB_MODE"] == "offline" && env["WANDB__TRANSACTION_LOG_FLUSH_INTERVAL"] == "1")
        #expect(WandbAgent.environment(sweep: "s", run: "r", runDir: "/d", inherited: ["WANDB_MODE": "online"])["WANDB_MODE"] == nil)
    }

    @Test func harrowFilesAreNotWandbOnes() throws {
        let p = try plan(
            """
            parameters:
              lr: {values: [0.0001]}
            trainer:
              command: [python3, train.py, "--config={config}"]
            """)
        #expect(!p.experiment.isWandb && p.experiment.trainerLog == nil)
    }

    @Test func keysThatRenameTheMetricRenameItForTheSearch() throws {
        let p = try plan(
            """
            program: train.py
            method: bayes
            metric: {name: val_loss, goal: minimize}
            parameters:
              lr: {min: 0.0001, max: 0.01}
            trainer:
              metrics: {format: wandb, keys: {loss: train/loss, val_loss: val/loss}}
            """)
        #expect(p.experiment.metric?.name == "val/loss")
        #expect(p.experiment.trainerLog?.keys == ["loss": "train/loss", "val_loss": "val/loss"])
    }
}
