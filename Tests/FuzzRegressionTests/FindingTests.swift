import Evaluation
import Foundation
import Sweep
import Testing
import Tracking

/// What each fixed finding now does instead of trapping: a clear error, or a value counted as malformed.
@Suite struct FindingTests {
    func experimentErrors(_ yaml: String) -> [String] {
        do {
            _ = try Experiment.parse(yaml: yaml, file: "x.yaml")
            return []
        } catch {
            return error.diagnostics.map(\.message)
        }
    }

    @Test func aParameterNamedTwiceIsAnError() {
        let nested = "method: grid\nparameters:\n  lora.r: {values: [8]}\n  lora:\n    parameters:\n      r: {values: [4]}\n"
        #expect(experimentErrors(nested).contains("parameter 'lora.r' is given twice"))
        let tagged = "method: grid\nparameters:\n  lr: {values: [1]}\n  !!float lr: {values: [2]}\n"
        #expect(experimentErrors(tagged).contains("parameter 'lr' is given twice"))
    }

    @Test func intUniformBoundsPastIntAreAnError() {
        let errors = experimentErrors("method: grid\nparameters:\n  steps: {distribution: int_uniform, min: 0, max: 9223372036854775807}\n")
        #expect(errors.contains { $0.contains("between -9.2e18 and 9.2e18") }, "\(errors)")
    }

    @Test func aWideIntUniformGridIsRefusedByCount() throws {
        let experiment = try Experiment.parse(yaml: "method: grid\nparameters:\n  steps: {min: 0, max: 1000000000000}\n", file: "x.yaml")
        #expect(throws: ExperimentError.self) { try Planner.plan(experiment) }
    }

    @Test func aRandomDrawOverTheWholeIntRangeStaysInBounds() throws {
        let yaml = "method: random\ncount: 50\nparameters:\n  s: {min: -9000000000000000000, max: 9000000000000000000}\n"
        let plan = try Planner.plan(try Experiment.parse(yaml: yaml, file: "x.yaml"))
        #expect(plan.trials.count == 50)
        for t in plan.trials {
            guard case .int(let v) = t.values[0] else { Issue.record("not an int: \(t.values[0])"); continue }
            #expect(v >= -9_000_000_000_000_000_000 && v <= 9_000_000_000_000_000_000)
        }
    }

    @Test func aQuantizedDrawPastIntStaysADouble() throws {
        let yaml = "method: random\ncount: 3\nparameters:\n  s: {distribution: q_log_normal, mu: 700, sigma: 1, q: 1}\n"
        let plan = try Planner.plan(try Experiment.parse(yaml: yaml, file: "x.yaml"))
        #expect(!plan.trials.isEmpty)
        for t in plan.trials {
            guard case .double = t.values[0] else { Issue.record("expected a double: \(t.values[0])"); continue }
        }
    }

    @Test func metricsNumbersPastIntAreMalformedNotFatal() {
        let batch = MetricsLines.parse(
            Data(
                "{\"step\": 1e19, \"train/loss\": 1.5}\n{\"event\": \"start\", \"total_steps\": -1e300}\n{\"step\": 3, \"train/loss\": 1.25}\n"
                    .utf8))
        #expect(batch.malformed == 1)
        #expect(batch.totalSteps == nil)
        #expect(batch.series["train/loss"]?.steps == [3])
    }

    @Test func aManifestKeyThatIsAMappingIsAnError() throws {
        let items = Data(
            "{\"id\": \"a\", \"dimension\": \"helpful\", \"prompt\": \"?\", \"choices\": [\"x\", \"y\"], \"answer\": 0}\n".utf8)
        #expect(throws: EvalsetError.self) {
            try Evalset.parse(manifest: "name: k\n? [a, b]\n: 1\n", items: items, directory: "evalsets/k")
        }
        let set = try Evalset.parse(manifest: "name: k\nweights: {helpful: 2}\n", items: items, directory: "evalsets/k")
        #expect(set.name == "k" && set.weights == ["helpful": 2] && set.items.count == 1)
    }
}
