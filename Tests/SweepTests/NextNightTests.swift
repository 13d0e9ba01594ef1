import Foundation
import HarrowCore
import Testing
@testable import Sweep

/// `harrow next`'s rules on a night whose outcomes are set by hand, so each change has one cause.
@Suite struct NextNightTests {
    static let yaml = """
        # The night.
        name: night
        method: grid
        metric: {name: val/loss, goal: minimize}
        parameters:
          lr: {values: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]}   # LoRA rates
          lora_r: {values: [4, 8, 16, 32]}
          lora_dropout:
            values: [0.0, 0.15]
          epochs: {value: 8}
          dataset: {value: datasets/domain/train.jsonl}
        exclude:
          - {lr: 3.0e-3, lora_r: 32}
        trainer: {timeout: 30m}
        """

    func experiment(_ text: String = yaml) throws -> Experiment { try Experiment.parse(yaml: text, file: "night.yaml") }

    /// Every grid point; val loss lowest at lr 1e-3 and rank 8, every run at 3e-3 diverged, lora_dropout irrelevant.
    func outcomes() -> [NextNight.Outcome] {
        var out: [NextNight.Outcome] = []
        for lr in [1e-4, 3e-4, 1e-3, 3e-3] {
            for r in [4, 8, 16, 32] where !(lr == 3e-3 && r == 32) {
                for dropout in [0.0, 0.15] {
                    let params: [String: ParamValue] = [
                        "lr": .double(lr), "lora_r": .int(r), "lora_dropout": .double(dropout), "epochs": .int(8)
                    ]
                    if lr == 3e-3 { out.append(.init(params: params, value: 2.5, verdict: "unstable")); continue }
                    let loss = 1 + abs(log10(lr / 1e-3)) * 0.3 + abs(log2(Double(r) / 8)) * 0.05
                    let best = lr == 1e-3 && r == 8 && dropout == 0
                    out.append(
                        .init(
                            params: params, value: best ? loss - 0.01 : loss, verdict: best ? "overfitting" : "good_fit",
                            bestEpoch: best ? 2.4 : nil))
                }
            }
        }
        return out
    }

    @Test func dropsDivergedValuesFixesMinorOnesNarrowsAndFollowsTheBestRunsVerdict() throws {
        let e = try experiment()
        let effects = [
            NextNight.Effect(parameter: "lr", share: 0.8), .init(parameter: "lora_r", share: 0.1),
            .init(parameter: "lora_dropout", share: 0.001)
        ]
        let p = NextNight.propose(e, outcomes: outcomes(), effects: effects, sweep: "night")
        let byName = Dictionary(uniqueKeysWithValues: p.changes.map { ($0.parameter, $0) })
        // 3e-3 diverged every time; 1e-3 is then the top of what is left but not of what was tried: no step beyond.
        #expect(byName["lr"]?.spec == "{values: [0.0003, 0.001]}")
        #expect(byName["lr"]?.reasons.first == "0.003 dropped: all 6 of its runs went wrong (6 unstable)")
        #expect(byName["lr"]?.reasons.count == 2)
        #expect(byName["lora_r"]?.spec == "{values: [4, 8, 16]}")
        #expect(byName["lora_dropout"]?.spec == "{value: 0.0}")
        #expect(byName["lora_dropout"]?.reasons == ["explained 0% of val/loss's variance (under 5%): fixed at the best run's 0.0"])
        // Over-fitted with its best step at epoch 2.4 of 8: two and three epochs.
        #expect(byName["epochs"]?.spec == "{values: [2, 3]}")
        #expect(
            p.summary == [
                "The night after sweep 'night': 30 runs, 30 with val/loss.",
                "Its best run: val/loss 0.99 at lora_dropout 0.0, lora_r 8, lr 0.001 (overfitting)."
            ])
    }

    @Test func theWrittenFileKeepsEverythingElseAndPlansSmaller() throws {
        let e = try experiment()
        let effects = [
            NextNight.Effect(parameter: "lr", share: 0.8), .init(parameter: "lora_r", share: 0.1),
            .init(parameter: "lora_dropout", share: 0.001)
        ]
        let p = NextNight.propose(e, outcomes: outcomes(), effects: effects, sweep: "night")
        let text = NextNight.render(original: Self.yaml, experiment: e, proposal: p, name: "night-2")
        let next = try Experiment.parse(yaml: text, file: "next.yaml")
        #expect(next.name == "night-2")
        let plan = try Planner.plan(next)
        // lr 2 × rank 3 × dropout 1 × epochs 2.
        #expect(plan.trials.count == 12)
        #expect(try Planner.plan(e).trials.count == 30)
        // Untouched lines and comments are kept; each change is explained above its line.
        #expect(text.contains("# The night."))
        #expect(text.contains("  dataset: {value: datasets/domain/train.jsonl}"))
        #expect(text.contains("  - {lr: 3.0e-3, lora_r: 32}"))
        #expect(text.contains("trainer: {timeout: 30m}"))
        #expect(text.contains("  # next: 0.003 dropped: all 6 of its runs went wrong (6 unstable)\n"))
        #expect(!text.contains("values: [0.0, 0.15]"), "the old multi-line lora_dropout entry is replaced whole")
        #expect(
            text.contains(
                "  # next: the best run over-fitted: its val loss was lowest at epoch 2.4 of 8, so 2 and 3 epochs are tried\n  epochs: {values: [2, 3]}"
            ))
    }

    @Test func aBestValueAtTheEdgeOfWhatWasTriedIsExtendedOneStep() throws {
        let e = try experiment()
        // Lowest at lr 3e-3 (the top edge) and rank 16 (inside), every run fine.
        let outcomes = outcomes().map { o -> NextNight.Outcome in
            var o = o
            o.value = 2 - log10(o.params["lr"]!.number! / 1e-4) * 0.5 + abs(log2(o.params["lora_r"]!.number! / 16)) * 0.05
            o.verdict = "good_fit"
            return o
        }
        let p = NextNight.propose(e, outcomes: outcomes, effects: [], sweep: "night")
        let byName = Dictionary(uniqueKeysWithValues: p.changes.map { ($0.parameter, $0) })
        // Geometric past the top of the rates (1e-3 → 3e-3 → 9e-3); the rank is narrowed around its best, 16.
        #expect(byName["lr"]?.spec == "{values: [0.001, 0.003, 0.009]}")
        #expect(byName["lr"]?.reasons.first == "the best run's 0.003 is at the high edge of the values tried: 0.009 added beyond it")
        #expect(byName["lora_r"]?.spec == "{values: [8, 16, 32]}")
        #expect(byName["epochs"] == nil)
    }

    /// A stalled start under a warmup far longer than about 1% per epoch was waiting for its learning rate: a shorter
    /// warmup is tried. Under a usual warmup, a larger one is.
    @Test func aStalledStartShortensALongWarmupAndLengthensAUsualOne() throws {
        let e = try experiment()
        func proposal(warmup: Double) -> [String: NextNight.Change] {
            let outcomes = outcomes().map { o -> NextNight.Outcome in
                var o = o
                o.params["warmup_ratio"] = .double(warmup)
                if o.verdict == "overfitting" { o.verdict = "stalled_start" }
                return o
            }
            let p = NextNight.propose(e, outcomes: outcomes, effects: [], sweep: "night")
            return Dictionary(uniqueKeysWithValues: p.changes.map { ($0.parameter, $0) })
        }
        // 8 epochs: about 8% is usual; 40% is five times that.
        let long = proposal(warmup: 0.4)
        #expect(long["warmup_ratio"]?.spec == "{values: [0.08, 0.4]}", "\(long)")
        #expect(long["warmup_ratio"]?.reasons.first?.contains("over 4× the ~0.08 usual for 8 epochs") == true, "\(long)")
        let usual = proposal(warmup: 0.08)
        #expect(usual["warmup_ratio"]?.spec == "{values: [0.08, 0.16]}", "\(usual)")
    }

    @Test func theMixingRatioIsKeptWhenTheMetricCannotSeeForgetting() throws {
        let text = Self.yaml.replacingOccurrences(of: "lora_dropout", with: "mix_ratio")
        let e = try experiment(text)
        let outcomes = outcomes().map { o -> NextNight.Outcome in
            var o = o
            o.params["mix_ratio"] = o.params.removeValue(forKey: "lora_dropout")
            return o
        }
        let p = NextNight.propose(e, outcomes: outcomes, effects: [.init(parameter: "mix_ratio", share: 0.001)], sweep: "night")
        let mix = try #require(p.changes.first { $0.parameter == "mix_ratio" })
        #expect(mix.spec == nil)
        #expect(
            mix.reasons == [
                "kept as searched: mix_ratio trades val/loss against forgetting, which val/loss does not measure "
                    + "(sweep on `forgetting`, or compare its values with `harrow compare`)"
            ])
        let written = NextNight.render(original: text, experiment: e, proposal: p, name: "night-2")
        #expect(
            written.contains(
                "  # next: kept as searched: mix_ratio trades val/loss against forgetting, which val/loss does not measure "
                    + "(sweep on `forgetting`, or compare its values with `harrow compare`)\n  mix_ratio:\n    values: [0.0, 0.15]\n"))
    }

    @Test func noMeasuredRunKeepsTheSearch() throws {
        let e = try experiment()
        let failed = outcomes().map { NextNight.Outcome(params: $0.params, value: nil, verdict: nil) }
        let p = NextNight.propose(e, outcomes: failed, effects: [], sweep: "night")
        #expect(p.changes.isEmpty)
        #expect(p.summary.last == "No run reported val/loss: nothing to narrow, the search is kept as it was.")
        let text = NextNight.render(original: Self.yaml, experiment: e, proposal: p, name: "night-2")
        #expect(try Planner.plan(try Experiment.parse(yaml: text, file: "next.yaml")).trials.count == 30)
    }

    /// The shipped scaling experiment: the data axis is kept (noted), seeds are repeats and stay untouched.
    @Test func aScalingAxisAndSeedRepeatsAreKept() throws {
        let text = try String(
            contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/experiments/scaling.yaml", encoding: .utf8)
        let e = try experiment(text)
        var outcomes: [NextNight.Outcome] = []
        for n in [12, 24, 48, 95] {
            for seed in [1, 2, 3] {
                outcomes.append(
                    .init(
                        params: ["max_samples": .int(n), "seed": .int(seed)], value: 3 / pow(Double(n), 0.5) + Double(seed) / 100,
                        verdict: "good_fit"))
            }
        }
        let p = NextNight.propose(e, outcomes: outcomes, effects: [.init(parameter: "seed", share: 0.001)], sweep: "scaling")
        #expect(
            p.changes == [
                NextNight.Change(
                    parameter: "max_samples", spec: nil,
                    reasons: [
                        "kept as searched: a data-scaling axis (the report's scaling panel says what more records buy)"
                    ])
            ])
        let written = NextNight.render(original: text, experiment: e, proposal: p, name: "scaling-next")
        #expect(try Planner.plan(try Experiment.parse(yaml: written, file: "next.yaml")).trials.count == 12)
    }
}
