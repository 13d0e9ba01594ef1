import Testing
@testable import Sweep

/// W&B sweep files load unchanged and expand as W&B's grid_search and agent do.
@Suite struct WandbCompatibilityTests {
    @Test func nestedGridFollowsWandbOrderAndArgs() throws {
        let (text, path) = try fixture("wandb-grid-nested.yaml")
        let p = try plan(text, file: path)
        #expect(p.experiment.name == "lora-sft-grid")
        #expect(p.experiment.metric == .init(name: "eval_loss", goal: .minimize))
        #expect(p.experiment.runCap == 32)
        #expect(p.experiment.earlyTerminate?.minIter == 3)
        #expect(p.trials.count == 16)
        // Sorted names, the last varying fastest: epochs, learning_rate, lora.alpha, lora.r.
        #expect(p.trials[0].names == ["epochs", "learning_rate", "lora.alpha", "lora.r", "warmup_ratio"])
        let firstFour = p.trials.prefix(4).map { [$0.int("lora.alpha")!, $0.int("lora.r")!] }
        #expect(firstFour == [[16, 8], [16, 16], [32, 8], [32, 16]])
        #expect(p.trials[4].double("learning_rate") == 2e-4)
        #expect(p.trials[8].int("epochs") == 3)
        #expect(p.varying == ["epochs", "learning_rate", "lora.alpha", "lora.r"])

        // W&B passes a nested block as one dict argument, after the top-level names (wandb/sweeps `to_config`).
        let argv = CommandTemplate.expand(
            p.experiment.trainer.command, trial: p.trials[0], program: p.experiment.program,
            configPath: "/r/trial.json", runDir: "/r", paths: p.experiment.parameterPaths
        ).argv
        #expect(
            argv == [
                "/usr/bin/env", "python", "train.py", "--epochs=2", "--learning_rate=0.0001",
                "--warmup_ratio=0.03", "--lora={'alpha': 16, 'r': 8}"
            ])
        // W&B's hyperband is acted on now: read, with its defaults, and no warning.
        #expect(!p.experiment.warnings.contains { $0.message.contains("early_terminate") })
        #expect(p.experiment.earlyTerminate.flatMap(Hyperband.init) != nil)
    }

    @Test func randomSweepDrawsEveryDistributionWithinItsSupport() throws {
        let (text, path) = try fixture("wandb-random.yaml")
        let p = try plan(text, file: path)
        #expect(p.trials.count == 20)  // run_cap bounds a random sweep without count
        #expect(p.experiment.metric?.goal == .maximize)
        // entity and project are W&B-only: warned about, not errors.
        #expect(p.experiment.warnings.filter { $0.message.contains("W&B setting") }.count == 2)
        for t in p.trials {
            #expect((1e-5...1e-3).contains(t.double("learning_rate")!))
            #expect((0.001...0.1).contains(t.double("weight_decay")!))
            let bs = try #require(t.int("batch_size"))  // integer q gives integers
            #expect(bs % 8 == 0 && (8...128).contains(bs))
            #expect((0.0..<0.3).contains(t.double("dropout")!))
            #expect((0...100).contains(t.int("warmup_steps")!))  // int min/max infer int_uniform
            let clip = t.double("grad_clip")!
            #expect((clip / 0.25).rounded() * 0.25 == clip && (0.5...2.0).contains(clip))
            #expect(t.int("max_grad_steps")! % 10 == 0)
            #expect(t.double("noise_scale")! > 0)
            #expect((0...1).contains(t.double("mix")!))
            #expect(["adamw", "sgd", "lion"].contains(t.string("optimizer")!))
            #expect(["cosine", "linear"].contains(t.string("scheduler")!))
            #expect(t["fp16"] == .bool(true))
        }
        // A continuous space has no repeats; the sample spreads over the range.
        let lrs = Set(p.trials.map { t in t.double("learning_rate")! })
        #expect(lrs.count == 20)
        #expect(lrs.contains { $0 < 1e-4 } && lrs.contains { $0 > 1e-4 })
    }

    @Test func randomSweepIsReproducibleBySeed() throws {
        let (text, path) = try fixture("wandb-random.yaml")
        let a = try plan(text, file: path), b = try plan(text, file: path)
        #expect(a.trials.map(\.key) == b.trials.map(\.key))
        let c = try plan(text + "\nseed: 7\n", file: path)
        #expect(a.trials.map(\.key) != c.trials.map(\.key))
    }

    @Test func gridRangesExpandLikeWandb() throws {
        let (text, path) = try fixture("wandb-grid-ranges.yaml")
        let p = try plan(text, file: path)
        // int_uniform 1...3 is inclusive; q_uniform is numpy.arange(0, 0.2, 0.1), which excludes max.
        #expect(p.trials.count == 3 * 2 * 2)
        #expect(Set(p.trials.map { $0.int("epochs")! }) == [1, 2, 3])
        #expect(Set(p.trials.map { $0.double("dropout")! }) == [0.0, 0.1])
        #expect(p.experiment.warnings.contains { $0.message.contains("'controller'") })
        let argv = CommandTemplate.expand(
            p.experiment.trainer.command, trial: p.trials[0], program: "sft.py",
            configPath: "c", runDir: "d"
        ).argv
        #expect(argv == ["/usr/bin/env", "python", "sft.py", "--fixed-flag", "dropout=0.0", "epochs=1", "model=gpt2", "optimizer=adamw"])
    }

    @Test func hydraJsonFileAndEnvMacros() throws {
        let (text, path) = try fixture("wandb-hydra.yaml")
        let p = try plan(text, file: path)
        #expect(p.trials.count == 4)
        let t = p.trials[0]
        let x = CommandTemplate.expand(
            p.experiment.trainer.command, trial: t, program: p.experiment.program,
            configPath: "/runs/a/trial.json", runDir: "/runs/a", environment: ["OUT_DIR": "/out"])
        #expect(
            x.argv == [
                "/usr/bin/env", "python3", "train.py", "++optimizer.lr=0.001", "++optimizer.name=adam", "++use_amp=True",
                "--optimizer.lr=0.001", "--optimizer.name=adam", "--use_amp", "/runs/a/args.json", "--out=/out/run"
            ])
        #expect(x.files == ["/runs/a/args.json": #"{"optimizer.lr": 0.001, "optimizer.name": "adam", "use_amp": true}"#])
        // False drops the flag under ${args_no_boolean_flags}.
        let off = try #require(p.trials.first { $0["use_amp"] == .bool(false) })
        let y = CommandTemplate.expand(["${args_no_boolean_flags}"], trial: off, program: nil, configPath: "", runDir: "")
        #expect(!y.argv.contains { $0.contains("use_amp") })
    }

    @Test func bayesLoadsAndNeedsAMetric() throws {
        #expect(diagnostics("method: bayes\nmetric: {name: loss}\ncount: 5\nparameters:\n  lr: {min: 0.0001, max: 0.1}\n").isEmpty)
        let d = diagnostics("method: bayes\nparameters:\n  lr: {min: 0.0001, max: 0.1}\n")
        #expect(d.count == 1)
        #expect(d[0].message.contains("needs `metric`"))
        let p = try plan("method: bayes\nmetric: {name: loss}\ncount: 5\nparameters:\n  lr: {min: 0.0001, max: 0.1}\n")
        #expect(p.trials.isEmpty)
        #expect(p.notes.contains { $0.contains("up to 5 trials") })
    }
}
