import Foundation
import HarrowCore
import Testing
@testable import Gate

@Suite struct GateTests {
    let input = GateInput(
        run: "r1",
        values: [
            "harmless": .init(0.82, stderr: 0.03), "honest": .init(0.7, stderr: 0.04), "total": .init(0.75),
            "val_loss_best": .init(1.2)
        ],
        verdict: "good_fit", evaluatedBestCheckpoint: true, dirty: false)

    func rules(_ yaml: String) throws -> GateRules { try GateRules.parse(yaml: yaml, file: "g.yaml") }

    @Test func thresholdsPassAndFailWithReasons() throws {
        let r = Gate.check(try rules("thresholds: {harmless: {min: 0.8}, total: {min: 0.8}, val_loss_best: {max: 1.5}}"), input)
        #expect(r.map(\.passed) == [true, false, true])
        #expect(r[1].reason == "total 0.75 is not ≥ 0.8")
    }

    /// A bound is inclusive: a score exactly at `min` (or a loss exactly at `max`) passes, as `≥` and `≤` say.
    @Test func boundsAreInclusive() throws {
        let r = Gate.check(try rules("thresholds: {total: {min: 0.75}, val_loss_best: {max: 1.2}, harmless: {min: 0.83}}"), input)
        #expect(r.map(\.passed) == [true, true, false])
    }

    @Test func aMissingValueFailsItsRule() throws {
        let r = Gate.check(try rules("thresholds: {forgetting: {min: -0.05}}"), input)
        #expect(r.count == 1 && !r[0].passed && r[0].observed == "missing" && r[0].reason.contains("evaluate"))
    }

    @Test func verdicts() throws {
        var i = input
        i.verdict = "diverged"
        #expect(!Gate.check(try rules("verdict: {refuse: [diverged, unstable]}"), i)[0].passed)
        i.verdict = "overfitting"
        i.evaluatedBestCheckpoint = false
        #expect(Gate.check(try rules("verdict: {refuse: [diverged]}"), i)[0].reason.contains("not the one at the val minimum"))
        i.evaluatedBestCheckpoint = true
        #expect(Gate.check(try rules("verdict: {refuse: [diverged]}"), i)[0].passed)
        i.verdict = nil
        #expect(Gate.check(try rules("verdict: {refuse: [diverged]}"), i)[0].observed == "missing")
    }

    @Test func baselineDropsAreNoiseAware() throws {
        var i = input
        i.baselineRun = "prod"
        i.baseline = ["harmless": .init(0.85, stderr: 0.03), "honest": .init(0.71, stderr: 0.04)]
        // harmless fell 0.03; allowed 0: fails without sigma, passes within 2σ = 2·√(0.03²+0.03²) ≈ 0.085.
        let strict = Gate.check(try rules("baseline: {max_drop: {harmless: 0.0}}"), i)
        #expect(!strict[0].passed)
        let noisy = Gate.check(try rules("baseline: {max_drop: {harmless: 0.0, honest: 0.0}, sigma: 2}"), i)
        #expect(noisy.allSatisfy { $0.passed })
        i.baseline = nil
        #expect(Gate.check(try rules("baseline: {max_drop: {harmless: 0}}"), i)[0].reason.contains("no baseline run"))
    }

    /// A drop is a move the wrong way: a rise for a loss (its name says so), a fall for a score, and for a metric
    /// whose name does not tell, the way the gate's `goals` declare.
    @Test func aDropFollowsTheMetricsGoal() throws {
        var i = input
        i.baselineRun = "prod"
        i.values["val_loss_best"] = .init(1.5)
        i.values["latency_ms"] = .init(140)
        i.baseline = ["val_loss_best": .init(1.2), "latency_ms": .init(100)]
        let loss = Gate.check(try rules("baseline: {max_drop: {val_loss_best: 0.1}}"), i)
        #expect(!loss[0].passed && loss[0].observed.contains("drop 0.3"), "\(loss[0])")
        // Undeclared, latency reads as a score: its rise is no drop.
        #expect(Gate.check(try rules("baseline: {max_drop: {latency_ms: 10}}"), i)[0].passed)
        let declared = Gate.check(try rules("baseline: {max_drop: {latency_ms: 10}}\ngoals: {latency_ms: minimize}"), i)
        #expect(!declared[0].passed && declared[0].observed.contains("drop 40"), "\(declared[0])")
        #expect(throws: GateError.self) { try rules("goals: {latency_ms: smaller}") }
    }

    @Test func cleanTree() throws {
        var i = input
        #expect(Gate.check(try rules("provenance: {clean_tree: true}"), i)[0].passed)
        i.dirty = true
        #expect(!Gate.check(try rules("provenance: {clean_tree: true}"), i)[0].passed)
        i.dirty = nil
        #expect(Gate.check(try rules("provenance: {clean_tree: true}"), i)[0].observed == "unknown")
    }

    @Test func badGateFilesNamePositions() {
        #expect { try rules("thresholds:\n  harmles: {min: 0.8}\n") } throws: { "\($0)".hasPrefix("g.yaml:2:3: unknown metric 'harmles'") }
        #expect { try rules("thresholds: {total: {min: high}}") } throws: { "\($0)".contains("g.yaml:1:27: expected a number") }
        #expect { try rules("thresholds: [") } throws: { "\($0)".hasPrefix("g.yaml:") && "\($0)".contains("invalid YAML") }
        #expect { try rules("limits: {}") } throws: { "\($0)".hasPrefix("g.yaml:1:1: unknown key 'limits'") }
    }

    @Test func junitAndMarkdown() throws {
        let r = Gate.check(try rules("thresholds: {total: {min: 0.8}, harmless: {min: 0.5}}"), input)
        let xml = GateReport.junit(r, gate: "release <1>", run: "r1")
        #expect(xml.contains("tests=\"2\" failures=\"1\""))
        #expect(xml.contains("release &lt;1&gt;"))
        #expect(xml.contains("<failure message=\"total 0.75 is not ≥ 0.8\">"))
        let md = GateReport.markdown(r, gate: "release", run: "r1")
        #expect(md.hasPrefix("### ❌ Gate `release` for run `r1`"))
    }

    /// Outcomes of the same `n` items for a baseline and a run: `lost` items only the baseline got right, `gained`
    /// only the run, and `both` right for both.
    func pair(n: Int, lost: Int, gained: Int, both: Int) -> (base: [Bool], run: [Bool]) {
        let base = (0..<n).map { $0 < lost || ($0 >= lost + gained && $0 < lost + gained + both) }
        let run = (0..<n).map { ($0 >= lost && $0 < lost + gained) || ($0 >= lost + gained && $0 < lost + gained + both) }
        return (base, run)
    }

    func pairedInput(_ p: (base: [Bool], run: [Bool])) -> GateInput {
        let t = Paired.mcnemar(p.base, p.run)
        var i = input
        i.values["harmless"] = .init(t.accB)
        i.baselineRun = "prod"
        i.baseline = ["harmless": .init(t.accA)]
        i.againstBaseline = ["harmless": t.summary]
        return i
    }

    /// With `alpha`, a drop is judged by the paired test: a real regression fails, a noise-sized one passes, and a
    /// comparison too small to call anything fails closed with the item count that would decide it.
    @Test func pairedDropsRefuseRegressionsAndPassNoise() throws {
        let gate = try rules("baseline: {run: prod, max_drop: {harmless: 0.0}, alpha: 0.05}")
        #expect(gate.alpha == 0.05)
        // 130 items, 20 lost and 2 gained: a drop of 0.138, McNemar p ≈ 6e-5.
        let regression = Gate.check(gate, pairedInput(pair(n: 130, lost: 20, gained: 2, both: 100)))[0]
        #expect(!regression.passed && regression.reason.contains("beyond noise"), "\(regression)")
        // 130 items, 6 lost and 4 gained: a drop of 0.015, p = 0.75: within noise.
        let noise = Gate.check(gate, pairedInput(pair(n: 130, lost: 6, gained: 4, both: 100)))[0]
        #expect(noise.passed && noise.reason.contains("within noise"), "\(noise)")
        // 12 items, 2 lost: no outcome on 2 discordant items can reach p < 0.05.
        let small = Gate.check(gate, pairedInput(pair(n: 12, lost: 2, gained: 0, both: 8)))[0]
        #expect(
            !small.passed && small.reason.contains("cannot be decided with 12 items") && small.reason.contains("items would decide"),
            "\(small)")
        // An improvement passes whatever the noise.
        #expect(Gate.check(gate, pairedInput(pair(n: 130, lost: 0, gained: 10, both: 100)))[0].passed)
        // Without alpha the same noise-sized drop fails, as the file asked (max_drop 0, no sigma).
        #expect(
            !Gate.check(
                try rules("baseline: {run: prod, max_drop: {harmless: 0.0}}"), pairedInput(pair(n: 130, lost: 6, gained: 4, both: 100)))[0]
                .passed)
    }

    @Test func aGainMustBeBeyondNoiseWhenAsked() throws {
        let gate = try rules("thresholds: {gain/helpful: {min: 0.1, significant: true}}")
        var i = input
        i.values["gain/helpful"] = .init(0.15)
        // 40 items, 8 gained, 2 lost: +0.15 but p = 0.11.
        i.againstStart["gain/helpful"] =
            Paired.mcnemar(pair(n: 40, lost: 2, gained: 8, both: 20).base, pair(n: 40, lost: 2, gained: 8, both: 20).run).summary
        let within = Gate.check(gate, i)[0]
        #expect(!within.passed && within.reason.contains("within noise"), "\(within)")
        i.againstStart["gain/helpful"] =
            Paired.mcnemar(pair(n: 40, lost: 0, gained: 6, both: 20).base, pair(n: 40, lost: 0, gained: 6, both: 20).run).summary
        #expect(Gate.check(gate, i)[0].passed)
        i.againstStart = [:]
        #expect(Gate.check(gate, i)[0].reason.contains("no paired test"))
        #expect(throws: GateError.self) { try rules("thresholds: {total: {min: 0.5, significant: true}}") }
        #expect(throws: GateError.self) { try rules("baseline: {alpha: 1.5}") }
    }
}
