import Foundation
import Testing
@testable import Gate

@Suite struct GateTests {
    let input = GateInput(run: "r1", values: ["harmless": .init(0.82, stderr: 0.03), "honest": .init(0.7, stderr: 0.04), "total": .init(0.75),
                                             "val_loss_best": .init(1.2)],
                          verdict: "good_fit", evaluatedBestCheckpoint: true, dirty: false)

    func rules(_ yaml: String) throws -> GateRules { try GateRules.parse(yaml: yaml, file: "g.yaml") }

    @Test func thresholdsPassAndFailWithReasons() throws {
        let r = Gate.check(try rules("thresholds: {harmless: {min: 0.8}, total: {min: 0.8}, val_loss_best: {max: 1.5}}"), input)
        #expect(r.map(\.passed) == [true, false, true])
        #expect(r[1].reason == "total 0.75 is not ≥ 0.8")
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
}
