import Testing
@testable import HarrowTrain
@testable import TrainingCore

@Suite struct CommandLineTests {
    /// Several values follow one flag, as --help shows them.
    @Test func benchTakesSeveralConfigurationsAndThreadCounts() throws {
        let bench = try #require(try HarrowTrain.parseAsRoot(["bench", "--configs", "tiny", "small", "--threads", "1", "2", "--json"]) as? Bench)
        #expect(bench.configs == ["tiny", "small"])
        #expect(bench.threads == [1, 2])
        #expect(bench.json)
        #expect(throws: (any Error).self) { try HarrowTrain.parseAsRoot(["bench", "--configs", "huge"]) }
    }

    /// max_samples keeps the first N domain records (LLaMA-Factory's meaning) and must be positive.
    @Test func maxSamplesIsReadAndChecked() throws {
        let o = try TrainOptions(mode: .sft, parameters: ["base_model": "chat", "dataset": "d.jsonl", "max_samples": 100])
        #expect(o.max_samples == 100 && o.unknownParameters.isEmpty)
        #expect(throws: (any Error).self) {
            try TrainOptions(mode: .sft, parameters: ["base_model": "chat", "dataset": "d.jsonl", "max_samples": 0])
        }
    }
}
