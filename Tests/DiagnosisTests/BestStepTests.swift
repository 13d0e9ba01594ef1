import Foundation
import Testing
@testable import Diagnosis

/// One best step: the evaluated step with the lowest val loss as logged, named by the advice with the checkpoint
/// that holds it.
@Suite struct BestStepTests {
    /// The demo's 60-epoch run, recorded: its smoothed val curve bottoms out at step 130, the lowest val loss was
    /// logged at step 140, and the trainer kept step 140 as checkpoint-best (its `done` event's `best_step`).
    static func sixtyEpochs() throws -> LabelledCurve {
        try #require(try RecordedCurves.all().first { $0.name == "overfitting-builtin-demo_60_epochs.jsonl" })
    }

    @Test func theBestStepIsTheEvaluatedMinimumNotTheSmoothedOne() throws {
        let c = try Self.sixtyEpochs()
        let d = Diagnoser.diagnose(train: c.train, val: c.val, lr: c.lr, schedule: c.schedule)
        let lowest = try #require(c.val?.values.min())
        #expect(d.verdict == .overfitting)
        #expect(d.bestStep == 140 && d.evidence.valMinStep == 140 && d.evidence.valMin == lowest, "\(d.evidence)")
        #expect(d.bestStep == Diagnoser.bestStep(val: c.val))
        // The smoothed minimum stays evidence, under its own name.
        #expect(d.evidence.smoothedMinStep == 130 && d.evidence.smoothedMinStep != d.bestStep)
        #expect(d.advice.contains("lowest at step 140") && !d.advice.contains("130"), "\(d.advice)")
    }

    @Test func tiesGoToTheEarliestEvaluatedStepAndNoValFallsBackToTheTrainer() {
        let val = Curve(steps: [30, 10, 20, 40], values: [0.5, 0.9, 0.5, .nan])
        #expect(Diagnoser.bestStep(val: val) == 20)
        #expect(Diagnoser.bestStep(val: nil, reported: 400) == 400)
        #expect(Diagnoser.bestStep(val: Curve(steps: [], values: []), reported: nil) == nil)
        #expect(Diagnoser.bestStep(val: Curve(steps: [10, 20], values: [0.4, 0.5]), reported: 20) == 10)
    }

    @Test func theAdviceNamesTheCheckpointThatHoldsTheBestStep() throws {
        let c = try Self.sixtyEpochs()
        func advice(_ kept: Checkpoints?) -> String {
            Diagnoser.diagnose(train: c.train, val: c.val, lr: c.lr, schedule: c.schedule, checkpoints: kept).advice
        }
        let both = advice(Checkpoints(best: "checkpoint-best", bestStep: 140, final: "checkpoint"))
        #expect(both.contains("keep checkpoint-best (step 140)"), "\(both)")
        // A best checkpoint whose step the trainer did not report holds the val minimum (the run folder's contract).
        #expect(advice(Checkpoints(best: "checkpoint-best", final: "checkpoint")).contains("keep checkpoint-best (step 140)"))
        // Only the final weights: no checkpoint holds step 140, so the advice says to save it next time.
        let final = advice(Checkpoints(final: "checkpoint"))
        #expect(
            final.contains("save step 140 next time") && final.contains("only checkpoint, the final weights of step 480, was kept")
                && !final.contains("keep checkpoint"), "\(final)")
        // A best checkpoint of another step is not offered as the best step's.
        let other = advice(Checkpoints(best: "checkpoint-best", bestStep: 150, final: "checkpoint"))
        #expect(other.contains("save step 140 next time") && other.contains("checkpoint-best holds step 150"), "\(other)")
        // Hugging Face's checkpoint-N by step.
        #expect(advice(Checkpoints(byStep: [140: "checkpoint-140", 480: "checkpoint-480"])).contains("keep checkpoint-140 (step 140)"))
        // Nothing known of the run's folder: the step, no folder name.
        let unknown = advice(nil)
        #expect(unknown.contains("keep the weights of step 140") && !unknown.contains("checkpoint-best"), "\(unknown)")
    }
}
