import Foundation
import Testing

/// One best step across commands, and `harrow diagnose` as a read: the demo's 60-epoch run, replayed by a trainer
/// that writes its recorded metrics and both checkpoints.
@Suite struct BestStepTests {
    static let fixture = Harrow.packageRoot + "/Tests/DiagnosisTests/Fixtures/overfitting-builtin-demo_60_epochs.jsonl"

    /// A swept run of the recorded curves: its smoothed val minimum is step 130, its lowest val loss step 140,
    /// which the trainer kept as checkpoint-best.
    func sweptRun() throws -> (dir: String, run: String) {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        cat "\(Self.fixture)" >> "$HARROW_METRICS"
        mkdir -p "$HARROW_RUN_DIR/checkpoint" "$HARROW_RUN_DIR/checkpoint-best"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "name: sixty\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        try #require(sweep.status == 0, "\(sweep.stderr.suffix(1500))")
        let run = try #require(try runs(dir).first?["id"] as? String)
        return (dir, run)
    }

    func runs(_ dir: String) throws -> [[String: Any]] {
        let r = try Harrow.run("runs", "--json", in: dir)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    func stored(_ dir: String) throws -> [String: Any] {
        try #require(try runs(dir).first?["verdict"] as? [String: Any])
    }

    func diagnose(_ args: String..., in dir: String) throws -> (json: [String: Any], stderr: String) {
        let r = try Harrow.run(["diagnose"] + args + ["--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return (try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])?.first), r.stderr)
    }

    @Test func diagnosisRunsAndTheTrainerNameOneBestStepAndItsCheckpoint() throws {
        let (dir, run) = try sweptRun()
        let summary = try #require(try runs(dir).first)
        let val = try #require((summary["metrics"] as? [String: Any])?["val/loss"] as? [String: Any])
        let verdict = try stored(dir)
        #expect(val["min_step"] as? Int == 140)
        #expect(verdict["verdict"] as? String == "overfitting" && verdict["best_step"] as? Int == 140, "\(verdict)")
        #expect((verdict["advice"] as? String)?.contains("keep checkpoint-best (step 140)") == true, "\(verdict)")
        let (d, _) = try diagnose(run, in: dir)
        #expect(d["best_step"] as? Int == 140)
        let evidence = try #require(d["evidence"] as? [String: Any])
        #expect(evidence["val_min_step"] as? Int == 140 && evidence["smoothed_min_step"] as? Int == 130, "\(evidence)")

        // Without checkpoint-best, the advice says which step to save next time instead of naming a missing folder.
        let runDir = try #require(summary["run_dir"] as? String)
        try FileManager.default.removeItem(atPath: runDir + "/checkpoint-best")
        let (after, _) = try diagnose(run, in: dir)
        let advice = after["advice"] as? String ?? ""
        #expect(
            advice.contains("save step 140 next time") && advice.contains("only checkpoint, the final weights of step 480, was kept"),
            "\(advice)")
        #expect(!advice.contains("keep checkpoint"), "\(advice)")
    }

    @Test func whatIfThresholdsPrintWithoutSavingAndSaveStores() throws {
        let (dir, run) = try sweptRun()
        let before = try stored(dir)
        // Thresholds no curve passes: a what-if reading that is not over-fitting.
        let whatIf = ["--threshold", "overfit_rise_percent=500", "--threshold", "plateau_fraction=2"]
        let r = try Harrow.run(["diagnose", run] + whatIf, in: dir)
        #expect(r.status == 0 && !r.stdout.contains("overfitting"), "\(r.stdout)")
        #expect(r.stderr.contains("stored diagnosis says overfitting, best step 140") && r.stderr.contains("add --save"), "\(r.stderr)")
        let untouched = try stored(dir)
        #expect(untouched["verdict"] as? String == "overfitting" && untouched["advice"] as? String == before["advice"] as? String)
        // A plain reading of a run just diagnosed by its sweep agrees with what is stored, and says nothing more.
        let plain = try Harrow.run("diagnose", run, in: dir)
        #expect(plain.status == 0 && plain.stderr.isEmpty, "\(plain.stderr)")

        let saved = try Harrow.run(["diagnose", run, "--save"] + whatIf, in: dir)
        #expect(saved.status == 0, "\(saved.stderr)")
        let now = try stored(dir)
        #expect(now["verdict"] as? String != "overfitting" && now["best_step"] as? Int == 140, "\(now)")
        // --save has nothing to store curves read from files with.
        #expect(try Harrow.run("diagnose", Self.fixture, "--save", in: dir).status == 2)
    }
}
