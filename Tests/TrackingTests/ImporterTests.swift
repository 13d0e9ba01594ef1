import Foundation
import HarrowCore
import Testing
@testable import Tracking

@Suite struct ImporterTests {
    func fixture(_ name: String) -> String { Bundle.module.resourceURL!.appendingPathComponent("Fixtures/\(name)").path }

    @Test func huggingFaceTrainerState() throws {
        let run = try HuggingFaceImporter.read(fixture("hf-run"))  // finds the newest checkpoint-N
        let b = run.batch
        #expect(b.series["train/loss"]?.steps == [15, 100, 200])
        #expect(b.series["train/loss"]?.values == [2.0762, 1.8123, 1.7])
        #expect(b.series["val/loss"]?.steps == [100, 200])
        #expect(b.series["val/loss"]?.values.last == 1.622266411781311)
        #expect(b.series["lr"]?.values.first == 2.456140350877193e-06)
        #expect(b.series["grad_norm"]?.steps.count == 3)
        #expect(b.series["val/mean_token_accuracy"]?.steps == [100, 200])
        #expect(b.series["val/runtime"] == nil && b.series["train_loss"] == nil)  // timing and the summary are not curves
        #expect(b.totalSteps == 1400 && b.bestStep == 200)
        #expect(
            run.params["lora_r"] == .int(8) && run.params["lora_alpha"] == .int(16)
                && run.params["lora_targets"] == .list([.string("q_proj"), .string("v_proj")]))
        #expect(run.params["num_train_epochs"] == .int(2))
        #expect(HuggingFaceImporter.canonical("eval_squad_loss") == "val/squad/loss")
    }

    @Test func llamaFactoryLogOldAndNewKeys() throws {
        let run = try LlamaFactoryImporter.read(fixture("llamafactory-run"))
        let b = run.batch
        #expect(b.series["train/loss"]?.steps == [5, 10])
        #expect(b.series["lr"]?.values == [4.99e-05, 1.3333333333333334e-06])  // learning_rate (old) and lr (new)
        #expect(b.series["val/loss"]?.steps == [500])
        #expect(b.series["tokens_per_s"]?.values == [1843.27])
        #expect(b.series["epoch"]?.steps == [5, 10, 500, 6750])
        #expect(b.series["percentage"] == nil && b.series["eval_loss"] == nil)  // nulls of old files are absent values
        #expect(b.malformed == 1)
        #expect(b.totalSteps == 6750)
        #expect(b.stepsPerEpoch == 2250)  // 6750 steps at epoch 3.0
    }

    /// An evaluation run into the same folder after training appends its progress (its own step count and total)
    /// and its loss at current_steps 0; a resumed training run goes back too, with train loss and the same total.
    @Test func llamaFactoryLaterPhasesAndResumes() {
        let log = """
            {"current_steps": 10, "total_steps": 30, "loss": 2.0, "lr": 1e-4, "epoch": 1.0}
            {"current_steps": 20, "total_steps": 30, "loss": 1.5, "eval_loss": 1.8, "epoch": 2.0}
            {"current_steps": 10, "total_steps": 30, "loss": 1.9, "lr": 1e-4, "epoch": 1.0}
            {"current_steps": 20, "total_steps": 30, "loss": 1.4, "epoch": 2.0}
            {"current_steps": 20, "total_steps": 30, "eval_loss": 1.7, "epoch": 2.0}
            {"current_steps": 30, "total_steps": 30, "loss": 1.2, "eval_loss": 1.75, "epoch": 3.0}
            {"current_steps": 5, "total_steps": 12, "percentage": 41.67, "elapsed_time": "0:00:03", "remaining_time": "0:00:04"}
            {"current_steps": 10, "total_steps": 12, "percentage": 83.33, "elapsed_time": "0:00:06", "remaining_time": "0:00:01"}
            {"current_steps": 0, "total_steps": 12, "eval_loss": 1.69, "epoch": 3.0}
            """
        let b = LlamaFactoryImporter.parse(Data(log.utf8), file: "/runs/lf/trainer_log.jsonl").batch
        #expect(b.totalSteps == 30 && b.stepsPerEpoch == 10)
        #expect(b.series["val/loss"]?.steps == [20, 20, 30] && b.series["val/loss"]?.values.last == 1.75)
        #expect(b.series["val/loss_final"]?.steps == [30] && b.series["val/loss_final"]?.values == [1.69])
        #expect(b.series["train/loss"]?.steps == [10, 20, 10, 20, 30])  // the resumed copy kept: the later point wins when read
    }

    /// ms-swift's logging.jsonl, as a real 3.x run wrote it and as 1.x wrote it (every line twice).
    @Test func msSwiftLoggingLines() throws {
        let run = try MsSwiftImporter.read(fixture("ms-swift-run"))
        let b = run.batch
        #expect(b.series["train/loss"]?.steps.count == 44 && b.series["train/loss"]?.steps.prefix(3) == [1, 10, 20])
        #expect(b.series["val/loss"]?.steps == [100, 200, 300, 400, 438])
        #expect(b.series["val/loss"]?.values.last == 0.12936011)
        #expect(b.series["lr"]?.values.first == 0.0001)
        #expect(b.series["val/token_acc"]?.steps.count == 5)
        #expect(b.series["train_loss"] == nil && b.series["percentage"] == nil)  // the summary and progress text are not curves
        #expect(b.totalSteps == 438 && b.stepsPerEpoch == 437 && b.malformed == 0)
        #expect(run.params["lora_r"] == .int(8) && run.params["lora_alpha"] == .int(32))

        let old = try MsSwiftImporter.read(fixture("ms-swift-v1")).batch
        #expect(old.series["train/loss"]?.steps.count == 60 && old.series["train/loss"]?.steps.prefix(4) == [1, 1, 5, 5])
        #expect(old.totalSteps == nil && old.malformed == 0)
        // Recognised by its file name and, under any name, by its first line.
        #expect(try CurveFiles.read(fixture("ms-swift-run")).source == "ms-swift")
        let renamed = FileManager.default.temporaryDirectory.appendingPathComponent("swift-\(UUID().uuidString).jsonl").path
        try FileManager.default.copyItem(atPath: fixture("ms-swift-run/logging.jsonl"), toPath: renamed)
        defer { try? FileManager.default.removeItem(atPath: renamed) }
        #expect(try CurveFiles.read(renamed).source == "ms-swift")
    }

    @Test func importedRunsLandInTheStoreOnce() throws {
        let store = try temporaryStore()
        let first = try store.save(try HuggingFaceImporter.read(fixture("hf-run")))
        let again = try store.save(try HuggingFaceImporter.read(fixture("hf-run")))
        #expect(first.id == again.id)
        #expect(try store.runs().count == 1)
        #expect(first.source == "hf" && first.status == .succeeded)
        #expect(try store.curve(run: again.rowID, key: "train/loss").steps == [15, 100, 200])
        #expect(try store.summaries(run: again.rowID)["val/loss"]?.min == 1.622266411781311)
        #expect(first.params["lora_r"] == .int(8))  // typed, as the adapter config states it
    }

    @Test func missingFilesSaySo() {
        #expect(throws: ImportError.self) { try HuggingFaceImporter.read("/nonexistent") }
        #expect { try LlamaFactoryImporter.read(fixture("hf-run")) } throws: { "\($0)".contains("no trainer_log.jsonl") }
    }
}

/// Real trainer_state.json files as Python's json module wrote them, with NaN and Infinity as numbers.
@Suite struct PythonJSONTests {
    static let originals = #filePath.components(separatedBy: "/Tests/")[0] + "/Tests/DiagnosisTests/Fixtures/real/originals"

    func imported(_ name: String) throws -> ImportedRun {
        let dir = try temporaryDirectory()
        try FileManager.default.copyItem(atPath: Self.originals + "/" + name, toPath: dir + "/trainer_state.json")
        return try HuggingFaceImporter.read(dir)
    }

    @Test func nonFiniteNumbersAreCountedAndTheImportGoesOn() throws {
        // Two grad_norm values of Infinity (sources in Tests/DiagnosisTests/Fixtures/real/README.md).
        let infinite = try imported("stalled_start-hf-medimind.json")
        #expect(infinite.batch.nonfinite == 2)
        #expect((infinite.batch.series["train/loss"]?.steps.count ?? 0) > 100)
        // Every eval_loss NaN, train loss finite.
        let nan = try imported("diverged-hf-wikipedia-llm-nan-eval.json")
        #expect(nan.batch.nonfinite == 7 && nan.batch.series["val/loss"] == nil)
        #expect((nan.batch.series["train/loss"]?.steps.count ?? 0) > 0)
    }

    @Test func tokensInsideStringsStayText() {
        let data = Data(#"{"note": "NaN is \"Infinity\" here", "x": NaN, "y": -Infinity, "z": [Infinity]}"#.utf8)
        let object = PythonJSON.object(data) as? [String: Any]
        #expect(object?["note"] as? String == #"NaN is "Infinity" here"#)
        #expect(numeric(object?["x"] as Any)?.isNaN == true && numeric(object?["y"] as Any) == -.infinity)
        #expect(numeric((object?["z"] as? [Any])?.first as Any) == .infinity)
    }
}
