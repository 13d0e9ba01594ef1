import Foundation
import HarrowCore
import Testing
@testable import Sweep

/// W&B sweep files mean in Harrow what they mean in W&B (wandb/sweeps@b1dfc5f): deprecated log distributions,
/// the required `method`, mappings under `value:`, and random sweeps with no bound.
@Suite struct WandbSemanticsTests {
    func values(_ p: Plan, _ name: String) -> [ParamValue] { p.trials.map { $0[name]! } }

    func randomSweep(_ spec: String, count: Int = 30) -> String {
        "method: random\ncount: \(count)\nseed: 5\nparameters:\n  x: \(spec)\n"
    }

    @Test func logUniformDrawsWhatLogUniformValuesDrawsBetweenItsExponents() throws {
        let deprecated = try plan(randomSweep("{distribution: log_uniform, min: -10, max: -3}"))
        let current = try plan(randomSweep("{distribution: log_uniform_values, min: \(exp(-10.0)), max: \(exp(-3.0))}"))
        #expect(deprecated.trials.count == 30)
        #expect(values(deprecated, "x") == values(current, "x"))
        for v in values(deprecated, "x") { #expect((exp(-10.0)...exp(-3.0)).contains(v.number!)) }
        // Spread over the exponents, as W&B's exp(uniform(min, max)): draws below and above e^-6.5.
        #expect(values(deprecated, "x").contains { $0.number! < exp(-6.5) } && values(deprecated, "x").contains { $0.number! > exp(-6.5) })

        let w = try #require(deprecated.experiment.warnings.first { $0.message.contains("'log_uniform'") })
        #expect(w.severity == .warning)
        #expect(w.location.line == 5 && w.location.column == 21)  // the `distribution:` value
        #expect(
            w.message
                == "distribution 'log_uniform' is deprecated in W&B (its bounds are natural logs); sampled as log_uniform_values from 4.54e-05 to 0.0498"
        )
        // The hint's spec, written out, plans the same trials.
        let spec = try #require(w.hint?.split(separator: "`").dropFirst().first)
        let rewritten = try plan(randomSweep("{\(spec)}"))
        #expect(rewritten.trials.map(\.key) == deprecated.trials.map(\.key))
        #expect(!rewritten.experiment.warnings.contains { $0.message.contains("deprecated") })
    }

    @Test func qLogUniformKeepsItsStep() throws {
        let deprecated = try plan(randomSweep("{distribution: q_log_uniform, min: 0, max: 6, q: 4}"))
        let current = try plan(randomSweep("{distribution: q_log_uniform_values, min: \(exp(0.0)), max: \(exp(6.0)), q: 4}"))
        #expect(values(deprecated, "x") == values(current, "x"))
        for v in values(deprecated, "x") {
            guard case .int(let i) = v else { Issue.record("integer q gives integers, got \(v)"); continue }
            #expect(i % 4 == 0 && (0...404).contains(i))
        }
        let w = try #require(deprecated.experiment.warnings.first { $0.message.contains("'q_log_uniform'") })
        #expect(w.message.hasSuffix("sampled as q_log_uniform_values from 1 to 403"))
        #expect(w.hint?.contains("q: 4") == true)
    }

    @Test func invLogUniformIsInvLogUniformValuesOfTheNegatedExponents() throws {
        // W&B: exp(-uniform(min, max)), so values from e^-max to e^-min.
        let deprecated = try plan(randomSweep("{distribution: inv_log_uniform, min: 1, max: 5}"))
        let current = try plan(randomSweep("{distribution: inv_log_uniform_values, min: \(exp(-5.0)), max: \(exp(-1.0))}"))
        #expect(values(deprecated, "x") == values(current, "x"))
        for v in values(deprecated, "x") { #expect((exp(-5.0)...exp(-1.0)).contains(v.number!)) }
        let w = try #require(deprecated.experiment.warnings.first { $0.message.contains("'inv_log_uniform'") })
        #expect(w.message.hasSuffix("sampled as inv_log_uniform_values from 0.00674 to 0.368"))
    }

    @Test func logBoundsBeyondADoubleAreRefused() {
        let d = diagnostics(randomSweep("{distribution: log_uniform, min: -800, max: -700}")).filter { $0.severity == .error }
        #expect(d.count == 1 && d.first?.message.contains("e^min to e^max") == true, "\(d)")
    }

    @Test func aWandbFileMustNameItsMethod() {
        for yaml in [
            "program: train.py\nparameters: {lr: [0.1, 0.2]}\n",
            "command: [python3, train.py, \"${args}\"]\nparameters: {lr: [0.1, 0.2]}\n"
        ] {
            let d = diagnostics(yaml).filter { $0.severity == .error }
            #expect(d.count == 1, "\(d)")
            #expect(d.first?.message == "'method' is a required property")
            #expect(d.first?.location.line == 1 && d.first?.location.column == 1)
            let hint = d.first?.hint ?? ""
            #expect(["grid", "random", "bayes", "tpe"].allSatisfy { hint.contains($0) }, "\(hint)")
        }
        // Harrow's own files keep grid as their default.
        let native = diagnostics("parameters: {lr: [0.1, 0.2]}\ntrainer: {command: [./train.sh]}\n")
        #expect(!native.contains { $0.severity == .error }, "\(native)")
        #expect((try? plan("parameters: {lr: [0.1, 0.2]}\n"))?.experiment.method == .grid)
        #expect((try? plan("program: train.py\nmethod: grid\nparameters: {lr: [0.1, 0.2]}\n"))?.trials.count == 2)
    }

    @Test func aMappingUnderValueIsConstantsUnderItsName() throws {
        let p = try plan(
            """
            method: grid
            program: train.py
            parameters:
              lr: {values: [0.1, 0.2]}
              optimizer: {value: {name: adamw, betas: [0.9, 0.99], schedule: {warmup: 10}}}
            """)
        let nested = try plan(
            """
            method: grid
            program: train.py
            parameters:
              lr: {values: [0.1, 0.2]}
              optimizer:
                parameters:
                  name: {value: adamw}
                  betas: {value: [0.9, 0.99]}
                  schedule: {parameters: {warmup: {value: 10}}}
            """)
        #expect(p.trials.count == 2)
        #expect(p.trials[0].names == ["lr", "optimizer.betas", "optimizer.name", "optimizer.schedule.warmup"])
        #expect(p.trials.map(\.key) == nested.trials.map(\.key))
        #expect(p.trials[0]["optimizer.betas"] == .list([.double(0.9), .double(0.99)]))
        #expect(p.trials[0]["optimizer.schedule.warmup"] == .int(10))
        #expect(p.varying == ["lr"])
        // The trainer gets what a nested block gives it, under the same names.
        func argv(_ plan: Plan) -> [String] {
            CommandTemplate.expand(
                plan.experiment.trainer.command, trial: plan.trials[0], program: "train.py", configPath: "", runDir: "",
                paths: plan.experiment.parameterPaths
            ).argv
        }
        #expect(argv(p) == argv(nested))
        #expect(argv(p).contains { $0.contains("optimizer") && $0.contains("adamw") && $0.contains("warmup") }, "\(argv(p))")

        let bad = diagnostics("parameters:\n  opt: {distribution: uniform, value: {lr: 1}}\n  empty: {value: {}}\n").filter {
            $0.severity == .error
        }
        #expect(bad.contains { $0.message.contains("can only be 'constant'") && $0.location.line == 2 }, "\(bad)")
        #expect(bad.contains { $0.message.contains("empty mapping") && $0.location.line == 3 }, "\(bad)")
    }

    @Test func aRandomSweepWithNoBoundIsValidAndDrawsAsItRuns() throws {
        let yaml = """
            method: random
            metric: {name: val/loss}
            seed: 3
            parameters:
              lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}
              r: {values: [8, 16]}
              alpha: {expr: "2 * r"}
            """
        let p = try plan(yaml)
        #expect(p.trials.isEmpty)
        #expect(Planner.limit(p.experiment) == nil && Planner.proposesAsItRuns(p.experiment))
        #expect(p.notes.contains { $0.contains("until the deadline") })
        // A bound plans up front, as before.
        let bounded = try plan(yaml + "\nrun_cap: 4\n")
        #expect(bounded.trials.count == 4 && !Planner.proposesAsItRuns(bounded.experiment))

        let e = p.experiment
        var observations: [Observation] = []
        for n in 1...12 {
            let proposal = try #require(try Search.propose(e, number: n, observations: observations))
            let again = try #require(try Search.propose(e, number: n, observations: observations))
            #expect(proposal.trial.key == again.trial.key)  // deterministic per proposal number
            #expect(!observations.contains { $0.trial.key == proposal.trial.key })  // never a trial the sweep has
            #expect(proposal.explanation.method == "random" && proposal.explanation.number == n)
            #expect((1e-5...1e-3).contains(proposal.trial.double("lr")!))
            #expect(proposal.trial.int("alpha") == 2 * proposal.trial.int("r")!)
            observations.append(Observation(trial: proposal.trial, state: n % 3 == 0 ? .pending : .finished))
        }
        #expect(Set(observations.map { $0.trial.int("r")! }) == [8, 16])
        let twelfth = try #require(try Search.propose(e, number: 13, observations: observations)).explanation
        #expect(twelfth.finished == 8 && twelfth.running == 4)
        // Another seed, other draws.
        var reseeded = e
        reseeded.seed = 4
        #expect(
            try Search.propose(reseeded, number: 1, observations: [])?.trial.key
                != Search.propose(e, number: 1, observations: [])?.trial.key)
    }

    @Test func anUnboundedRandomSweepEndsWhenItsSpaceIsSpent() throws {
        let e = try plan("method: random\nparameters: {r: [8, 16], opt: [adamw, sgd]}\n").experiment
        var observations: [Observation] = []
        while let p = try Search.propose(e, number: observations.count + 1, observations: observations) {
            observations.append(Observation(trial: p.trial, state: .finished))
            if observations.count > 4 { break }
        }
        #expect(observations.count == 4)
    }

    @Test func methodLocationIsFoundForCommandErrors() {
        let at = Experiment.location(ofKey: "method", yaml: "name: x\n\nmethod:   random\nparameters: {x: 1}\n", file: "e.yaml")
        #expect(at.description == "e.yaml:3:11")
        #expect(Experiment.location(ofKey: "method", yaml: "parameters: {x: 1}\n", file: "e.yaml").description == "e.yaml:1:1")
    }
}
