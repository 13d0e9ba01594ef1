import HarrowCore
import Testing
@testable import Sweep

/// `PlanAdvice`'s rules of thumb on hand-made trials; every expectation worked out by hand from the rule.
@Suite struct PlanAdviceTests {
    /// The advice for the trials of `parameters` (YAML lines under `parameters:`), with `data.jsonl` holding `records`.
    func advice(_ parameters: String, records: Int? = nil, extra: String = "") throws -> [PlanAdvice.Warning] {
        let yaml = "parameters:\n" + parameters.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n" + extra
        return PlanAdvice.advise(try plan(yaml), records: records.map { ["data.jsonl": $0] } ?? [:])
    }

    func rules(_ warnings: [PlanAdvice.Warning]) -> [String] { warnings.map(\.rule.rawValue) }

    @Test func theEpochRuleInterpolatesOnLogRecords() {
        #expect(PlanAdvice.suggestedEpochs(records: 100) == 15)
        #expect(PlanAdvice.suggestedEpochs(records: 1_000) == 10)
        #expect(PlanAdvice.suggestedEpochs(records: 10_000) == 3)
        #expect(PlanAdvice.suggestedEpochs(records: 100_000) == 2)
        // Half way between 100 and 1k on a log scale (316 records): half way between 15 and 10.
        #expect(abs(PlanAdvice.suggestedEpochs(records: 316) - 12.5) < 0.01)
        // Flat beyond the ends.
        #expect(PlanAdvice.suggestedEpochs(records: 20) == 15)
        #expect(PlanAdvice.suggestedEpochs(records: 1_000_000) == 2)
    }

    @Test func epochsAgainstDataSize() throws {
        // 100 records → 15 epochs; 60 is 4× that (over 2×).
        let sixty = try advice("dataset: data.jsonl\nepochs: 60", records: 100)
        #expect(
            sixty.map(\.message) == [
                "epochs 60 for 100 training records is 4× the ~15 the rule gives: expect over-fitting (keep the best checkpoint, or train fewer epochs)"
            ])
        #expect(sixty.first?.values == [.init(name: "epochs", value: .int(60)), .init(name: "records", value: .int(100))])
        #expect(try advice("dataset: data.jsonl\nepochs: 15", records: 100).isEmpty)
        // 100 records, 5 epochs: a third of 15, under 0.5×.
        #expect(
            try advice("dataset: data.jsonl\nepochs: 5", records: 100).map(\.message)
                == ["epochs 5 for 100 training records is 0.33× the ~15 the rule gives: expect it to end under-trained"])
        // 50k records → 3 − log10(5) ≈ 2.3 epochs; 3 is 1.3× that.
        #expect(try advice("dataset: data.jsonl\nepochs: 3", records: 50_000).isEmpty)
        // 1k records → 10 epochs: 20 is exactly 2×, on the bound, so fine; 21 is not.
        #expect(try advice("dataset: data.jsonl\nepochs: 20", records: 1_000).isEmpty)
        #expect(rules(try advice("dataset: data.jsonl\nepochs: 21", records: 1_000)) == ["epochs"])
    }

    @Test func maxSamplesCutsTheRecordsAndAnUncountedDatasetSaysNothing() throws {
        // 10k records → 3 epochs, fine; cut to 100 by max_samples → 15, and 3 is 0.2× that.
        #expect(try advice("dataset: data.jsonl\nepochs: 3", records: 10_000).isEmpty)
        let cut = try advice("dataset: data.jsonl\nepochs: 3\nmax_samples: 100", records: 10_000)
        #expect(
            cut.map(\.message) == [
                "epochs 3 for 100 training records (max_samples 100) is 0.2× the ~15 the rule gives: expect it to end under-trained"
            ])
        // A dataset the caller could not count (missing; a profile's dataset name): no data-size rule.
        #expect(try advice("dataset: alpaca_en_demo\nepochs: 60").isEmpty)
        #expect(try advice("epochs: 60", records: 100).isEmpty)
    }

    @Test func warmupAgainstEpochs() throws {
        // 15 epochs → 0.15 expected: 0.15 is right on it.
        #expect(try advice("epochs: 15\nwarmup_ratio: 0.15").isEmpty)
        // 3 epochs → 0.03 expected: 0.15 is 5×, over 4×.
        let long = try advice("epochs: 3\nwarmup_ratio: 0.15")
        #expect(
            long.map(\.message) == [
                "warmup_ratio 0.15 with 3 epochs is 5× the ~0.03 the rule gives: much of the run passes at a reduced learning rate"
            ])
        #expect(long.first?.rule.statement.contains("raise it if loss will not start falling") == true)
        // 60 epochs → 0.6 by the rate, capped at 0.1: 0.15 is 1.5× of it; 0.02 is 0.2×, under 0.25×.
        #expect(try advice("epochs: 60\nwarmup_ratio: 0.15").isEmpty)
        #expect(
            try advice("epochs: 60\nwarmup_ratio: 0.02").map(\.message) == [
                "warmup_ratio 0.02 with 60 epochs is 0.2× the ~0.1 the rule gives"
            ])
        // 10 epochs → 0.1 expected: 0.02 is 0.2×, under 0.25×; no warmup at all is named as such.
        #expect(
            try advice("epochs: 10\nwarmup_ratio: 0.02").map(\.message) == [
                "warmup_ratio 0.02 with 10 epochs is 0.2× the ~0.1 the rule gives"
            ])
        #expect(
            try advice("epochs: 15\nwarmup_ratio: 0.0").map(\.message) == [
                "warmup_ratio 0.0 with 15 epochs: no warmup, where the rule gives ~0.1"
            ])
        // Without epochs there is nothing to compare with.
        #expect(try advice("warmup_ratio: 0.5").isEmpty)
    }

    @Test func mixRatio() throws {
        #expect(
            try advice("mix_ratio: 0.6").map(\.message)
                == ["mix_ratio 0.6: 60% of the training set is general data, above 15–30%: the domain gets fewer of the steps"])
        #expect(try advice("mix_ratio: 0.3").isEmpty)
        #expect(try advice("mix_ratio: 0.15").isEmpty)
        #expect(rules(try advice("mix_ratio: 0.05")) == ["mix_ratio"])
        // 0 is allowed; forgetting is noted only when the experiment names general data it could have mixed in.
        #expect(try advice("mix_ratio: 0").isEmpty)
        let none = try advice("mix_ratio: 0\ngeneral_dataset: general.jsonl")
        #expect(none.count == 1 && none[0].message.contains("catastrophic forgetting"))
    }

    @Test func loraScale() throws {
        #expect(try advice("lora_alpha: 16\nlora_r: 8").isEmpty)  // 2
        #expect(try advice("lora_alpha: 32\nlora_r: 8").isEmpty)  // 4, on the bound
        #expect(
            try advice("lora_alpha: 64\nlora_r: 8").map(\.message)
                == ["lora_alpha 64 / lora_r 8 scales the update by 8, above 4: large steps can destabilise training (lower lora_alpha)"])
        #expect(rules(try advice("lora_alpha: 2\nlora_r: 8")) == ["lora_alpha"])  // 0.25
        #expect(try advice("lora_alpha: 64\nlora_r: 8\nfull_finetune: true").isEmpty)  // no adapter, no scale
    }

    @Test func learningRate() throws {
        #expect(
            try advice("lr: 0.1").map(\.message)
                == ["lr 0.1 is far above LoRA's usual 1e-5 … 1e-3: expect unstable or diverging loss (lower it about 10×)"])
        #expect(try advice("lr: 3.0e-5").isEmpty)
        #expect(try advice("lr: 3.0e-3").isEmpty)  // above the usual range, but not far: the warning starts past 5e-3
        #expect(rules(try advice("lr: 1.0e-6")) == ["lr"])
        #expect(try advice("lr: 0.1\nfull_finetune: true").isEmpty)
    }

    @Test func trialsWithTheSameAdviceShareOneWarning() throws {
        // lr 0.1 on three seeds: one warning naming the three trials; epochs 3 and 60: two warnings.
        let w = try advice("dataset: data.jsonl\nlr: 0.1\nseed: [1, 2, 3]\nepochs: [3, 60]", records: 100)
        #expect(rules(w) == ["epochs", "epochs", "lr"])  // by rule, then by first trial
        #expect(w[2].indices == [1, 2, 3, 4, 5, 6] && w[2].trials.count == 6)
        // Parameters sort by name (epochs, lr, seed) and the last varies fastest: epochs 3 is trials 1–3.
        #expect(w[0].message.hasPrefix("epochs 3 ") && w[0].indices == [1, 2, 3])
        #expect(w[1].message.hasPrefix("epochs 60 ") && w[1].indices == [4, 5, 6])
        let p = try plan("parameters:\n  dataset: data.jsonl\n  lr: 0.1\n  seed: [1, 2, 3]\n  epochs: [3, 60]\n")
        #expect(w[2].trials == p.trials.map(\.key))
    }

    @Test func anExperimentSilencesRulesByName() throws {
        let settings = "dataset: data.jsonl\nepochs: 60\nwarmup_ratio: 0.0\nlr: 0.1\nmix_ratio: 0.6"
        #expect(rules(try advice(settings, records: 100)) == ["epochs", "warmup", "mix_ratio", "lr"])
        #expect(rules(try advice(settings, records: 100, extra: "advice: {ignore: [epochs, warmup]}\n")) == ["mix_ratio", "lr"])
        #expect(rules(try advice(settings, records: 100, extra: "advice:\n  ignore: lr\n")) == ["epochs", "warmup", "mix_ratio"])
        #expect(try advice(settings, records: 100, extra: "advice: {ignore: [epochs, warmup, mix_ratio, lora_alpha, lr]}\n").isEmpty)
    }

    @Test func aMisspeltRuleIsAnErrorWithItsPosition() {
        let errors = diagnostics("parameters:\n  lr: 0.1\nadvice: {ignore: [epochs, warmpu]}\n").filter { $0.severity == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.message == "unknown advice rule 'warmpu'")
        #expect(errors.first?.hint == "did you mean 'warmup'?")
        #expect(errors.first?.location.line == 3 && errors.first?.location.column == 27)
        let key = diagnostics("parameters:\n  lr: 0.1\nadvice: {ignroe: [lr]}\n").filter { $0.severity == .error }
        #expect(key.map(\.message) == ["unknown key 'ignroe' in advice"])
        let top = diagnostics("parameters:\n  lr: 0.1\nadvise: {ignore: [lr]}\n").filter { $0.severity == .error }
        #expect(top.first?.hint == "did you mean 'advice'?")
    }
}
