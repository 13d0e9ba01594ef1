import Testing
@testable import Sweep

/// Bad experiment files: every problem at once, each with file:line:column and a hint, never a crash.
@Suite struct ExperimentErrorTests {
    @Test func reportsEveryProblemWithItsPosition() {
        let yaml = """
            name: bad
            methd: grid
            parameters:
              lr: {values: []}
              epochs: {valeus: [1, 2]}
              warmup_ratio: {distribution: unifrom, min: 0, max: 0.1}
              lora_r: {values: [8, 16]}
              lora_alpha: {expr: "2 * lora_rr"}
              batch_size: {min: 10, max: 2}
            exclude:
              - {lora_rank: 8}
            where: "lora_r >= = 3"
            trainer:
              command: [harrow-train, sft, --config, "{config}", "--x={param.nope}"]
              timeout: soon
            """
        let errors = diagnostics(yaml, file: "bad.yaml").filter { $0.severity == .error }
        let found = errors.map { "\($0.location.line):\($0.location.column) \($0.message)" }
        #expect(errors.count == 10, "\(found)")
        func at(_ line: Int, _ column: Int, _ text: String, hint: String? = nil) {
            let match = errors.first { $0.location.line == line && $0.location.column == column && $0.message.contains(text) }
            #expect(match != nil, "no error at \(line):\(column) containing '\(text)' in \(found)")
            if let hint { #expect(match?.hint?.contains(hint) == true, "hint of \(line):\(column) is \(match?.hint ?? "nil")") }
        }
        at(2, 1, "unknown key 'methd'", hint: "did you mean 'method'?")
        at(4, 16, "empty value list")
        at(5, 12, "unknown key 'valeus'", hint: "did you mean 'values'?")
        at(6, 32, "unknown distribution 'unifrom'", hint: "did you mean 'uniform'?")
        at(8, 27, "unknown parameter 'lora_rr'", hint: "did you mean 'lora_r'?")
        at(9, 30, "must be greater than `min`")
        at(11, 6, "unknown parameter 'lora_rank'", hint: "did you mean 'lora_r'?")
        at(12, 19, "'=' is not an operator", hint: "'=='")
        at(14, 54, "{param.nope} names no parameter")
        at(15, 12, "timeout must be a positive duration")
        #expect(errors.allSatisfy { $0.location.file == "bad.yaml" })
        #expect(errors.map(\.description).allSatisfy { $0.hasPrefix("bad.yaml:") && $0.contains(": error: ") })
    }

    @Test func syntaxErrorNamesWhereItWasNoticedAndWhereItStarted() {
        let d = diagnostics("parameters:\n  a: {values: [1]}\n  tags: [a, b\n  x: 1\n")
        #expect(d.count == 1)
        #expect(d[0].location.line == 4 && d[0].location.column == 4)
        #expect(d[0].message.contains("did not find expected ',' or ']'"))
        #expect(d[0].hint?.contains("exp.yaml:3:9") == true)
    }

    @Test func tabsAndDuplicateKeysAreExplained() {
        let tabs = diagnostics("parameters:\n\tlr: {values: [1]}\n")
        #expect(tabs.first?.hint?.contains("spaces, not tabs") == true)
        let dup = diagnostics("parameters:\n  lr: {values: [1]}\n  lr: {values: [2]}\n")
        #expect(dup.first?.message.contains("duplicate key 'lr'") == true)
        #expect(dup.first?.location.line == 2)
    }

    @Test func wrongTypesAndBadDistributions() {
        let yaml = """
            method: random
            count: three
            parameters:
              a: {distribution: log_uniform_values, min: 0, max: 1}
              b: {distribution: categorical_w_probabilities, values: [x, y], probabilities: [0.5, 0.6]}
              c: {distribution: normal, sigma: -1}
              d: {distribution: log_uniform, min: -9, max: -2}
              e: {values: [{k: 1}]}
              f: {distribution: int_uniform, min: 0.5, max: 3}
            """
        let errors = diagnostics(yaml).filter { $0.severity == .error }
        let text = errors.map(\.description).joined(separator: "\n")
        #expect(text.contains("exp.yaml:2:8: error: `count` must be a whole number, found string 'three'"))
        #expect(text.contains("exp.yaml:4:46: error: 'log_uniform_values' needs `min` > 0"))
        #expect(text.contains("probabilities sum to 1.1"))
        #expect(text.contains("`sigma` must not be negative"))
        #expect(text.contains("values are scalars, lists or `{expr:"))
        #expect(text.contains("'int_uniform' needs whole-number"))
        // W&B's deprecated log_uniform is read as W&B samples it, with a warning; a random sweep needs no bound.
        #expect(!text.contains("deprecated") && !text.contains("needs `count`"))
        #expect(diagnostics(yaml).contains { $0.severity == .warning && $0.message.contains("deprecated") && $0.location.line == 7 })
    }

    @Test func gridRefusesContinuousDistributions() {
        let d = diagnostics("parameters:\n  lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}\n")
        #expect(d.count == 1)
        #expect(d[0].location.line == 2 && d[0].location.column == 3)
        #expect(d[0].message.contains("grid cannot enumerate"))
        #expect(d[0].hint?.contains("method: random") == true)
    }

    @Test func cyclesBetweenDerivedParametersAreRejected() {
        let d = diagnostics("parameters:\n  a: {expr: \"b + 1\"}\n  b: {expr: \"a * 2\"}\n")
        #expect(d.first?.message.contains("cycle: a → b → a") == true)
    }

    @Test func runtimeExpressionErrorsNameTheTrial() {
        let d = diagnostics("parameters:\n  r: {values: [0, 8]}\n  scale: {expr: \"16 / r\"}\n")
        #expect(d.first?.message.contains("division by zero") == true)
        #expect(d.first?.hint?.contains("r=0") == true)
        let w = diagnostics("parameters:\n  r: {values: [8]}\nwhere: \"r + 1\"\n")
        #expect(w.first?.message.contains("must be true or false") == true)
        #expect(w.first?.location.line == 3)
    }

    @Test func emptyAndNonMappingFiles() {
        #expect(diagnostics("").first?.message == "the file is empty")
        #expect(diagnostics("- a\n- b\n").first?.message.contains("mapping of keys") == true)
        #expect(diagnostics("name: x\n").first?.message.contains("no `parameters:`") == true)
    }

    @Test func unknownParameterForTheBuiltInTrainerWarns() throws {
        let p = try plan("parameters:\n  learning_rate: {values: [1, 2]}\n")
        let w = p.experiment.warnings
        #expect(w.count == 1)
        #expect(w[0].message.contains("harrow-train does not read 'learning_rate'"))
    }

    @Test func diagnosisAndEarlyStopSettings() throws {
        let p = try plan("parameters: {x: 1}\nearly_stop: {patience: 3, min_delta: 0.01}\ndiagnosis: {overfit_rise_percent: 5}\n")
        #expect(p.experiment.earlyStop == .init(patience: 3, minDelta: 0.01))
        #expect(p.experiment.diagnosis == ["overfit_rise_percent": 5])
        let bad = diagnostics("parameters: {x: 1}\nearly_stop: {patience: 0}\ndiagnosis: {overfit_rise: 5}\n")
        #expect(bad.contains { $0.message.contains("`early_stop.patience` must be at least 1") })
        #expect(
            bad.contains {
                $0.message.contains("unknown diagnosis threshold 'overfit_rise'") && $0.hint == "did you mean 'overfit_rise_percent'?"
            })
    }

    @Test func commandErrors() {
        let both = diagnostics("method: grid\nprogram: t.py\ncommand: [a]\ntrainer: {command: [b]}\nparameters: {x: 1}\n")
        #expect(both.first?.message.contains("both `command` and `trainer.command`") == true)
        let shell = diagnostics("trainer: {command: \"python train.py --lr 1\"}\nparameters: {lr: 1}\n")
        #expect(shell.first?.hint?.contains("never pass through a shell") == true)
        let flow = diagnostics("method: grid\nprogram: t.py\ncommand: [${env}, ${program}]\nparameters: {x: 1}\n")
        #expect(flow.first?.hint?.contains("quote macros") == true)
        let noProgram = diagnostics("method: grid\ncommand:\n  - ${program}\nparameters: {x: 1}\n")
        #expect(noProgram.first?.message.contains("no `program:`") == true)
    }
}
