import Foundation
import Testing
@testable import Tracking

@Suite struct MetricsLinesTests {
    func parse(_ text: String) -> MetricsBatch { MetricsLines.parse(Data(text.utf8)) }

    @Test func canonicalLines() {
        let b = parse(
            """
            {"event": "start", "total_steps": 600, "steps_per_epoch": 200, "warmup_steps": 18}
            {"step": 120, "epoch": 0.6, "train/loss": 1.93, "lr": 0.0002, "grad_norm": 0.8, "tokens_per_s": 15000}
            {"step": 120, "val/loss": 2.10}
            {"event": "done", "checkpoint": "checkpoint", "best_checkpoint": "checkpoint-best", "best_step": 400}

            """)
        #expect(b.lines == 4 && b.malformed == 0)
        #expect(b.totalSteps == 600 && b.stepsPerEpoch == 200 && b.warmupSteps == 18)
        #expect(b.done && b.checkpoint == "checkpoint" && b.bestCheckpoint == "checkpoint-best" && b.bestStep == 400)
        #expect(Set(b.series.keys) == ["epoch", "train/loss", "lr", "grad_norm", "tokens_per_s", "val/loss"])
        #expect(b.series["train/loss"]?.values == [1.93] && b.series["train/loss"]?.steps == [120])
        #expect(b.series["lr"]?.values == [0.0002])
        #expect(b.series["val/loss"]?.values == [2.10])
        #expect(b.pointCount == 6)
    }

    @Test func badLinesAreCountedNotFatal() {
        let b = parse(
            """
            {"step": 1, "train/loss": NaN, "lr": 0.1}
            {"step": 2, "train/loss": Infinity, "x": -Infinity}
            not json at all
            {"step": 3, "train/loss": 1.5
            {"train/loss": 1.0}
            {"step": 4, "train/loss": 1.25, "note": "ok", "nested": {"a": [1, {"b": "}"}]}, "flag": true, "none": null}
            {"step": 5, "name\\"quoted": 2e-3}

            """)
        #expect(b.nonfinite == 3)
        #expect(b.malformed == 3)  // not JSON, unterminated, no step
        #expect(b.malformedExamples.first == "not json at all")
        #expect(b.series["train/loss"]?.steps == [4])
        #expect(b.series["lr"]?.values == [0.1])
        #expect(b.series["name\"quoted"]?.values == [0.002])
        #expect(b.series["nested"] == nil && b.series["flag"] == nil)
    }

    @Test func aPartialLastLineWaits() {
        let text = "{\"step\": 1, \"a\": 1}\n{\"step\": 2, \"a\""
        let b = parse(text)
        #expect(b.consumed == 20)
        #expect(b.series["a"]?.steps == [1])
        #expect(b.malformed == 0)
    }

    @Test func numbersParseExactly() {
        let b = parse("{\"step\": 7, \"a\": -12, \"b\": 3.25e2, \"c\": 0.1, \"d\": 1E-7, \"e\": 123456789012}\n")
        #expect(b.series["a"]?.values == [-12])
        #expect(b.series["b"]?.values == [325])
        #expect(b.series["c"]?.values == [0.1])
        #expect(b.series["d"]?.values == [1e-7])
        #expect(b.series["e"]?.values == [123456789012])
    }
}
