import Foundation
import Testing

/// `harrow diagnose PATH`: curves read straight from other trainers' files, with no store.
@Suite struct DiagnoseFilesTests {
    static let fixtures = Harrow.packageRoot + "/Tests/DiagnosisTests/Fixtures"

    func diagnose(_ path: String, in dir: String) throws -> [String: Any] {
        let r = try Harrow.run("diagnose", path, "--json", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])?.first)
    }

    @Test func aHuggingFaceFolderALlamaFactoryLogAndAMetricsFileAreRead() throws {
        let dir = try Harrow.temporaryDirectory()
        // A Trainer output folder: the newest checkpoint's trainer_state.json is read.
        try FileManager.default.createDirectory(atPath: dir + "/out/checkpoint-2000", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Self.fixtures + "/real/originals/overfitting-hf-roberta-sentiment.json",
            toPath: dir + "/out/checkpoint-2000/trainer_state.json")
        let hf = try diagnose("out", in: dir)
        #expect(hf["verdict"] as? String == "overfitting", "\(hf)")
        let lf = try diagnose(Self.fixtures + "/real/originals/stalled_start-llamafactory-llama3-8b-law-full-sft.jsonl", in: dir)
        #expect(lf["verdict"] as? String != nil && lf["verdict"] as? String != "insufficient_data", "\(lf)")
        let ours = try diagnose(Self.fixtures + "/overfitting-builtin-demo_60_epochs.jsonl", in: dir)
        // The best step is the evaluated minimum the trainer kept (140), not the smoothed curve's (130).
        #expect(ours["verdict"] as? String == "overfitting" && ours["best_step"] as? Int == 140)
        // Nothing was stored: no store was even opened.
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow"))
        let missing = try Harrow.run("diagnose", "no/such/trainer_state.json", in: dir)
        #expect(missing.status == 2 && missing.stderr.contains("no such file or folder"))
    }
}
