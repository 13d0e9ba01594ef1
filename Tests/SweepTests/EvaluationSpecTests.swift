import Testing
@testable import Sweep

@Suite struct EvaluationSpecTests {
    @Test func evalTimeoutIsADuration() throws {
        let e = try Experiment.parse(yaml: "parameters: {x: 1}\neval: {evalsets: [evalsets/general], timeout: 90m}\n", file: "e.yaml")
        #expect(e.evaluation?.timeout == 5400)
        #expect { try Experiment.parse(yaml: "parameters: {x: 1}\neval: {evalsets: [a], timeout: soon}\n", file: "e.yaml") } throws: {
            "\($0)".contains("e.yaml:2:32:") && "\($0)".contains("timeout must be a positive duration")
        }
    }
}
