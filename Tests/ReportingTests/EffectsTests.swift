import Foundation
import HarrowCore
import Sweep
import Testing
@testable import Reporting

/// Which parameter mattered, against values worked out by hand.
@Suite struct EffectsTests {
    typealias Row = (params: [String: ParamValue], value: Double)

    /// A 2×2 factorial of lr and lora_r with two seeds. Cell means 1, 3, 5, 7; seed 1 adds 0.5, seed 2 takes it off.
    /// Grand mean 4, total sum of squares 42; lr: 4·(2−4)² + 4·(6−4)² = 32; lora_r: 4·1 + 4·1 = 8; seed: 8·0.25 = 2;
    /// no interaction (the cells are additive).
    @Test func aFactorialSplitsItsVarianceByHand() throws {
        var rows: [Row] = []
        for (lr, a) in [(1e-4, 0.0), (1e-3, 4.0)] {
            for (r, b) in [(8, 0.0), (16, 2.0)] {
                for (seed, noise) in [(1, 0.5), (2, -0.5)] {
                    rows.append((["lr": .double(lr), "lora_r": .int(r), "seed": .int(seed)], 1 + a + b + noise))
                }
            }
        }
        let a = Effects.analyze(rows, parameters: ["lr", "lora_r", "seed"], metric: "val/loss", grid: true)
        #expect(a.effects.map(\.parameter) == ["lr", "lora_r", "seed"])
        #expect(
            abs(a.effects[0].share - 32.0 / 42) < 1e-12 && abs(a.effects[1].share - 8.0 / 42) < 1e-12
                && abs(a.effects[2].share - 2.0 / 42) < 1e-12)
        let low = try #require(a.effects[0].levels.first)
        #expect(low.value == .double(1e-4) && low.n == 4 && low.mean == 2)
        #expect(abs(low.stderr! - (5.0 / 3).squareRoot() / 2) < 1e-12)  // values 1.5, 0.5, 3.5, 2.5
        #expect(abs(a.interaction!.share) < 1e-12 && a.interaction!.parameters == ("lr", "lora_r"))
        #expect(a.balanced && a.runs == 8)
        let text = try #require(Effects.sentence(a, lowerIsBetter: true))
        #expect(text.hasPrefix("lr explains 76% of the variance of val/loss; lora_r 19%; seed 5%; the best lr is "), "\(text)")
        #expect(text.contains("(−4.00 vs "), "\(text)")
    }

    /// Only lr 1e-3 with lora_r 16 is worse (5 against 1 elsewhere), twice each: grand 2, total 24, each main effect
    /// 8 and the interaction 8 (each cell off by ±1 from the additive fit, n = 2).
    @Test func anInteractionIsCountedWhenEveryCellRepeats() {
        var rows: [Row] = []
        for lr in [1e-4, 1e-3] {
            for r in [8, 16] {
                for _ in 0..<2 { rows.append((["lr": .double(lr), "lora_r": .int(r)], lr == 1e-3 && r == 16 ? 5 : 1)) }
            }
        }
        let a = Effects.analyze(rows, parameters: ["lr", "lora_r"], metric: "val/loss", grid: true)
        #expect(a.effects.allSatisfy { abs($0.share - 1.0 / 3) < 1e-12 })
        #expect(abs(a.interaction!.share - 1.0 / 3) < 1e-12)
        // Without repeats the interaction cannot be told from noise.
        let single = Effects.analyze(
            Array(rows.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)),
            parameters: ["lr", "lora_r"], metric: "val/loss", grid: true)
        #expect(single.interaction == nil)
    }

    /// Random and bayes sweeps: the squared rank correlation, ties at their average rank.
    @Test func unbalancedSweepsUseRankCorrelation() {
        #expect(Effects.ranks([3, 1, 1, 2]) == [4, 1.5, 1.5, 3])
        #expect(Effects.spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]) == 1)
        #expect(Effects.spearman([1, 2, 3, 4, 5], [9, 7, 5, 3, 1]) == -1)
        #expect(Effects.spearman([1, 1, 1], [1, 2, 3]) == nil)
        // lr drives the metric monotonically (not linearly), warmup does not.
        let lrs = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
        let rows: [Row] = lrs.enumerated().map { i, lr in
            (["lr": .double(lr), "warmup": .double(i % 2 == 0 ? 0.01 : 0.05)], 3 - log10(lr * 1e5))
        }
        let a = Effects.analyze(rows, parameters: ["lr", "warmup"], metric: "val/loss", grid: false)
        #expect(a.effects.first?.parameter == "lr" && a.effects.first?.rho == -1 && a.effects.first?.share == 1)
        #expect(a.interaction == nil)
    }

    /// The front of (forgetting, total): (1, 0.5) beats (1, 0), (0.5, 0.5) and (0.2, 0.2); (0, 1) is beaten by none.
    @Test func theParetoFrontKeepsTheUnbeaten() {
        let x = [0, 1, 0.5, 0.2, 1, .nan], y = [1, 0, 0.5, 0.2, 0.5, 2]
        #expect(Pareto.front(x: x, y: y) == [0, 4])
        #expect(Pareto.front(x: [0.3], y: [0.3]) == [0])
        #expect(Pareto.front(x: [], y: []).isEmpty)
    }

    /// In a one-change-at-a-time design the sentence names the change that moved the metric most, with its sign.
    @Test func theLargestChangeIsNamed() throws {
        let trials = [
            ["lr": "0.003", "epochs": "15"], ["lr": "0.1", "epochs": "15"], ["lr": "0.003", "epochs": "60"], ["lr": "3e-05", "epochs": "15"]
        ]
        let reading = try #require(Ablation.oneAtATime(trials))
        let text = try #require(Effects.largestChange(reading, values: [0.41, 3.05, 0.38, 2.5], metric: "val/loss", lowerIsBetter: true))
        #expect(text == "one change at a time from the baseline: lr 0.003 → 0.1 moved val/loss most (+2.64, worse)", "\(text)")
        #expect(
            Effects.largestChange(reading, values: [nil, 1, 2, 3], metric: "val/loss", lowerIsBetter: true) == nil,
            "no baseline value, no sentence")
    }
}
