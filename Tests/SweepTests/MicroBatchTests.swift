import HarrowCore
import Testing
@testable import Sweep

@Suite struct MicroBatchTests {
    func trial(_ yaml: String) throws -> (Trial, Experiment) {
        let e = try Experiment.parse(yaml: yaml, file: "e.yaml")
        return (try #require(try Planner.plan(e).trials.first), e)
    }

    @Test func halvesTheBatchAndDoublesTheAccumulation() throws {
        let (t, _) = try trial("name: e\nparameters: {batch_size: {value: 16}, grad_accum: {value: 2}, lr: {value: 0.001}}\n")
        let s = try #require(MicroBatch.halved(t, profile: nil))
        #expect(s.trial["batch_size"] == .int(8) && s.trial["grad_accum"] == .int(4) && s.trial["lr"] == .double(0.001))
        #expect(s.change == "batch_size 16 → 8 and grad_accum 2 → 4 (the same 32 examples a step)")
    }

    @Test func anAbsentAccumulationIsTheTrainersDefaultOfOne() throws {
        let (t, _) = try trial("name: e\nparameters: {batch_size: {value: 4}}\n")
        let s = try #require(MicroBatch.halved(t, profile: nil))
        #expect(s.trial["batch_size"] == .int(2) && s.trial["grad_accum"] == .int(2))
        #expect(s.trial.parametersJSON == #"{"batch_size": 2, "grad_accum": 2}"#)
    }

    @Test func aProfileUsesItsToolsNamesAndItsConfig() throws {
        let (t, e) = try trial("name: e\nparameters: {lr: {value: 0.001}}\ntrainer: {profile: llamafactory, config: c.yaml}\n")
        let config: [String: ParamValue] = ["per_device_train_batch_size": .int(8), "gradient_accumulation_steps": .int(4)]
        let s = try #require(MicroBatch.halved(t, profile: e.trainer.profile, config: config))
        #expect(s.trial["per_device_train_batch_size"] == .int(4) && s.trial["gradient_accumulation_steps"] == .int(8))
        #expect(s.change == "per_device_train_batch_size 8 → 4 and gradient_accumulation_steps 4 → 8 (the same 32 examples a step)")
    }

    /// A plain command trainer on TrainingArguments (no profile) names them as transformers does; an accumulation it
    /// does not set is added under the same family of names.
    @Test func trainingArgumentsNamesWithoutAProfile() throws {
        let (t, _) = try trial("name: e\nparameters: {per_device_train_batch_size: {value: 16}}\n")
        let s = try #require(MicroBatch.halved(t, profile: nil))
        #expect(s.change == "per_device_train_batch_size 16 → 8 and gradient_accumulation_steps 1 → 2 (the same 16 examples a step)")
        #expect(s.trial["batch_size"] == nil && s.trial["grad_accum"] == nil)
    }

    @Test func aBatchThatCannotHalveExactlyIsLeftAlone() throws {
        for batch in [1, 3] {
            let (t, _) = try trial("name: e\nparameters: {batch_size: {value: \(batch)}}\n")
            #expect(MicroBatch.halved(t, profile: nil) == nil)
        }
        let (t, _) = try trial("name: e\nparameters: {lr: {value: 0.001}}\n")
        #expect(MicroBatch.halved(t, profile: nil) == nil, "no micro-batch to halve")
    }
}
