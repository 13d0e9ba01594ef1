import Foundation
import Testing

/// Trainers that write their own logs, not Harrow's metrics lines: a real `python3` process writes LLaMA-Factory's
/// `trainer_log.jsonl` (as `LogCallback.on_log` does), ms-swift's `logging.jsonl` under a versioned folder, or Hugging
/// Face's `checkpoint-N/trainer_state.json`, over time. `trainer.metrics` names the format; the curves must be in the
/// store while the trainer runs, and whole at the end.
@Suite(.serialized) struct TrainerLogTests {
    /// 40 steps: a point every 5 steps, val every 10; halfway it waits for a file `go` in the run folder.
    static let trainer = #"""
        import json, os, sys, time
        fmt, run = sys.argv[1], os.environ["HARROW_RUN_DIR"]
        total, history = 40, []
        def append(path, entry):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(entry) + "\n")
        def state(path, done=False):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            logs = history + ([{"train_runtime": 1.5, "train_loss": 1.0, "epoch": 2.0, "step": total}] if done else [])
            with open(path + ".tmp", "w") as f:
                json.dump({"log_history": logs, "max_steps": total, "global_step": len(history) and history[-1]["step"]}, f, indent=2)
            os.replace(path + ".tmp", path)
        for step in range(5, total + 1, 5):
            loss, lr, epoch = round(2.0 * 0.97 ** step, 4), 1e-4 * (1 - step / total), step / 20
            history.append({"loss": loss, "learning_rate": lr, "epoch": epoch, "step": step})
            if fmt == "llamafactory":
                append(run + "/trainer_log.jsonl", {"current_steps": step, "total_steps": total, "loss": loss, "lr": lr, "epoch": epoch,
                                                    "percentage": round(step / total * 100, 2), "elapsed_time": "0:00:01", "remaining_time": "0:00:01"})
            elif fmt == "ms-swift":
                append(run + "/v0-20260101-000000/logging.jsonl", {"loss": loss, "learning_rate": lr, "epoch": epoch,
                                                                 "global_step/max_steps": f"{step}/{total}", "percentage": f"{step / total * 100:.2f}%"})
            if step % 10 == 0:
                val = round(2.2 * 0.98 ** step, 4)
                history.append({"eval_loss": val, "eval_runtime": 0.1, "epoch": epoch, "step": step})
                if fmt == "llamafactory":
                    append(run + "/trainer_log.jsonl", {"current_steps": step, "total_steps": total, "eval_loss": val, "epoch": epoch})
                elif fmt == "ms-swift":
                    append(run + "/v0-20260101-000000/logging.jsonl", {"eval_loss": val, "epoch": epoch, "global_step/max_steps": f"{step}/{total}"})
                elif fmt == "hf":
                    state(f"{run}/checkpoint-{step}/trainer_state.json")
            if fmt == "hf-callback":  # harrow.HarrowCallback's lines; checkpoints only at the end
                with open(os.environ["HARROW_METRICS"], "a") as f:
                    f.write(json.dumps({"step": step, "train/loss": loss, "lr": lr, "epoch": epoch}) + "\n")
                    if step % 10 == 0:
                        f.write(json.dumps({"step": step, "val/loss": history[-1]["eval_loss"]}) + "\n")
            if step == 20:
                for _ in range(1200):
                    if os.path.exists(run + "/go"):
                        break
                    time.sleep(0.05)
        if fmt.startswith("hf"):
            state(run + "/trainer_state.json", done=True)
        """#

    /// Points of each key in the store, from `harrow export`.
    func points(_ dir: String) throws -> [String: [Int]] {
        let csv = try Harrow.run("export", "--format", "csv", in: dir).stdout
        var steps: [String: [Int]] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            steps[String(f[3]), default: []].append(Int(f[4])!)
        }
        return steps
    }

    /// A folder with the trainer and an experiment reading its log in `format`.
    func setUp(_ format: String) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/train.py", atomically: true, encoding: .utf8)
        if format == "hf-callback" {
            // `profile: hf` with no `metrics:` line: the callback's lines are read live, before any checkpoint.
            try """
            name: own-logs
            parameters: {lr: {value: 0.0001}}
            trainer: {profile: hf, program: train.py, timeout: 5m}
            """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
            try Self.trainer.replacingOccurrences(of: "fmt, run = sys.argv[1],", with: "fmt, run = \"hf-callback\",")
                .write(toFile: dir + "/train.py", atomically: true, encoding: .utf8)
            return dir
        }
        try """
        name: own-logs
        parameters: {lr: {value: 0.0001}}
        trainer:
          command: [python3, train.py, \(format)]
          metrics: {format: \(format)}
          timeout: 5m
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func startSweep(in dir: String, log: String = "harrow.log") throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harrow.binary)
        p.arguments = ["sweep", "exp.yaml"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: dir + "/" + log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: dir + "/" + log)
        try p.run()
        return p
    }

    /// Waits (up to a minute) for the first half of the curve, which the trainer writes before it waits for `go`.
    func firstHalf(_ dir: String) -> [String: [Int]] {
        var live: [String: [Int]] = [:]
        for _ in 0..<1200 {
            live = (try? points(dir)) ?? [:]
            if live["train/loss"]?.count == 4, live["val/loss"]?.count == 2 { break }
            usleep(50_000)
        }
        return live
    }

    @Test(arguments: ["llamafactory", "ms-swift", "hf", "hf-callback"])
    func curvesArriveWhileTheTrainerRuns(format: String) throws {
        let dir = try setUp(format)
        let p = try startSweep(in: dir)
        // Halfway, the trainer waits: the first half of its curve must already be in the store.
        let live = firstHalf(dir)
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir + "/.harrow/runs")
        let runDir = try #require(runs.first.map { dir + "/.harrow/runs/" + $0 })
        #expect(live["train/loss"] == [5, 10, 15, 20] && live["val/loss"] == [10, 20], "while running: \(live)")
        #expect(p.isRunning, "the trainer waits for go, so harrow is still running")
        FileManager.default.createFile(atPath: runDir + "/go", contents: nil)
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(log.suffix(1500))")

        let done = try points(dir)
        #expect(done["train/loss"] == Array(stride(from: 5, through: 40, by: 5)), "\(done)")
        #expect(done["val/loss"] == [10, 20, 30, 40], "\(done)")
        #expect(done["lr"]?.count == 8)
        // The run's schedule came from the log: diagnosis reads it like any other run.
        let show = try Harrow.run("show", runs[0], "--json", in: dir)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect((summary["verdict"] as? [String: Any])?["verdict"] as? String != "insufficient_data", "\(summary["verdict"] ?? "-")")
    }

    /// harrow killed with SIGKILL while the trainer writes its LLaMA-Factory log: the next `harrow sweep` stops the
    /// orphaned trainer, runs the trial again in a clean folder (the first attempt's log kept in attempts/1/), and
    /// the stored curve is the new attempt's, each step once.
    @Test func aKilledHarrowResumesATrainerLogWithoutDuplicates() throws {
        let dir = try setUp("llamafactory")
        let first = try startSweep(in: dir)
        #expect(firstHalf(dir)["train/loss"] == [5, 10, 15, 20])
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let second = try startSweep(in: dir, log: "harrow-2.log")
        let runDir = dir + "/.harrow/runs/" + (try FileManager.default.contentsOfDirectory(atPath: dir + "/.harrow/runs")[0])
        // The new attempt reaches its halfway point with a fresh log.
        for _ in 0..<1200
        where !FileManager.default.fileExists(atPath: runDir + "/attempts/1/trainer_log.jsonl")
            || ((try? String(contentsOfFile: runDir + "/trainer_log.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count < 6
        {
            usleep(50_000)
        }
        FileManager.default.createFile(atPath: runDir + "/go", contents: nil)
        second.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow-2.log", encoding: .utf8)) ?? ""
        #expect(second.terminationStatus == 0, "\(log.suffix(1500))")
        let done = try points(dir)
        #expect(done["train/loss"] == Array(stride(from: 5, through: 40, by: 5)) && done["val/loss"] == [10, 20, 30, 40], "\(done)")
    }

    /// The Python helper (`python/harrow`, standard library only) in a custom loop and as a Hugging Face callback: a
    /// real python3 writes lines that harrow stores as curves with their schedule. The callback is fed the
    /// trainer's own log dicts (names as transformers writes them); without transformers installed it still works.
    @Test func thePythonHelperWritesMetricsLines() throws {
        let dir = try Harrow.temporaryDirectory()
        try """
        import sys, types
        sys.path.insert(0, \(String(reflecting: Harrow.packageRoot + "/python")))
        import harrow
        harrow.start(total_steps=20, steps_per_epoch=10, warmup_steps=2)
        for step in range(1, 11):
            harrow.log({"train/loss": 2.0 - 0.05 * step, "lr": 1e-4, "note": "not a number", "nan": float("nan")}, step=step)
        harrow.log({"val/loss": 1.7}, step=10)
        callback = harrow.HarrowCallback()
        state = types.SimpleNamespace(global_step=10, max_steps=20, num_train_epochs=2, best_model_checkpoint=None, best_global_step=None)
        for step in range(11, 21):
            state.global_step = step
            callback.on_log(None, state, None, logs={"loss": 2.0 - 0.05 * step, "learning_rate": 1e-4, "epoch": step / 10})
            callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs={"eval_loss": 1.6, "eval_runtime": 0.2, "epoch": 2.0})
        callback.on_log(None, state, None, logs={"train_runtime": 3.0, "train_loss": 1.4})
        harrow.done(best_step=20)
        """.write(toFile: dir + "/train.py", atomically: true, encoding: .utf8)
        try """
        name: helper
        parameters: {lr: {value: 0.0001}}
        trainer: {command: [python3, train.py]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr.suffix(1500))")
        let done = try points(dir)
        #expect(done["train/loss"] == Array(1...20), "\(done)")
        #expect(done["val/loss"] == [10, 20] && done["lr"]?.count == 20)
        #expect(
            done["note"] == nil && done["nan"] == nil && done["val/runtime"] == nil && done["train_loss"] == nil, "\(done.keys.sorted())")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir + "/.harrow/runs")
        // The start line's schedule reached the store: diagnosis counts epochs by it.
        let diagnosis = try Harrow.run("diagnose", runs[0], "--json", in: dir)
        let evidence = try #require(
            (try JSONSerialization.jsonObject(with: Data(diagnosis.stdout.utf8)) as? [[String: Any]])?.first?["evidence"] as? [String: Any])
        #expect(evidence["steps_per_epoch"] as? Int == 10 && evidence["epochs"] as? Double == 2, "\(evidence)")
    }

    /// `profile: hf`: the user's script gets TrainingArguments flags and the run folder as `--output_dir`, and its
    /// checkpoints' trainer_state.json become the run's curves.
    @Test func theHuggingFaceProfileRunsAScriptWithFlags() throws {
        let dir = try Harrow.temporaryDirectory()
        try #"""
        import argparse, json, os
        parser = argparse.ArgumentParser()
        parser.add_argument("--learning_rate", type=float)
        parser.add_argument("--num_train_epochs", type=int)
        parser.add_argument("--output_dir")
        args, _ = parser.parse_known_args()
        history = []
        for step in range(1, 11):
            history.append({"loss": 2.0 / step, "learning_rate": args.learning_rate, "epoch": step / 5, "step": step})
            if step % 5 == 0:
                history.append({"eval_loss": 2.5 / step, "epoch": step / 5, "step": step})
                os.makedirs(f"{args.output_dir}/checkpoint-{step}", exist_ok=True)
                with open(f"{args.output_dir}/checkpoint-{step}/trainer_state.json", "w") as f:
                    json.dump({"log_history": history, "max_steps": 10, "global_step": step}, f)
        """#.write(toFile: dir + "/sft.py", atomically: true, encoding: .utf8)
        try """
        name: hf-profile
        parameters: {lr: {values: [0.001, 0.002]}, epochs: {value: 2}}
        trainer: {profile: hf, program: sft.py}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", "--json", in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr.suffix(1500))")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(sweep.stdout.utf8)) as? [[String: Any]])
        #expect(runs.count == 2)
        for run in runs {
            let id = try #require(run["id"] as? String)
            let lr = try #require((run["params"] as? [String: Any])?["lr"] as? Double)
            let csv = try Harrow.run("export", "--format", "csv", in: dir).stdout
            let rows = csv.split(separator: "\n").map { $0.split(separator: ",") }.filter { $0.first.map(String.init) == id }
            #expect(rows.filter { $0[3] == "train/loss" }.count == 10 && rows.filter { $0[3] == "val/loss" }.count == 2)
            let lrRows = rows.filter { $0[3] == "lr" }
            #expect(lrRows.count == 10, "one lr per logged training step")
            #expect(lrRows.allSatisfy { Double($0[5]) == lr }, "the script got --learning_rate \(lr)")
        }
        // The script is part of each trial's identity: unchanged, nothing runs again; edited, both trials do.
        func runFolders() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: dir + "/.harrow/runs").count }
        let again = try Harrow.run("sweep", "exp.yaml", in: dir)
        let afterAgain = try runFolders()
        #expect(again.status == 0 && afterAgain == 2)
        try (try String(contentsOfFile: dir + "/sft.py", encoding: .utf8) + "# tuned\n").write(
            toFile: dir + "/sft.py", atomically: true, encoding: .utf8)
        let edited = try Harrow.run("sweep", "exp.yaml", in: dir)
        let afterEdit = try runFolders()
        #expect(edited.status == 0 && afterEdit == 4, "\(edited.stderr)")
        #expect(edited.stderr.contains("sft.py"), "the reason names the script: \(edited.stderr)")
    }

    /// `profile: llamafactory`: each trial's run folder gets the user's config with the trial's parameters, and
    /// `llamafactory-cli train` is run on it. (LLaMA-Factory is not installed here: the trial fails to start, and the
    /// reason says so; the config it would have read is there.)
    @Test func theLlamaFactoryProfileWritesEachTrialsConfig() throws {
        let dir = try Harrow.temporaryDirectory()
        try "stage: sft\nfinetuning_type: lora\ndataset: medical_qa\ntemplate: qwen\n".write(
            toFile: dir + "/lora.yaml", atomically: true, encoding: .utf8)
        try """
        name: lf-profile
        parameters: {lr: {value: 0.0002}, lora_r: {value: 16}, mix_ratio: {value: 0.25}, general_dataset: {value: alpaca_en}}
        trainer: {profile: llamafactory, config: lora.yaml}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", "--json", in: dir)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(sweep.stdout.utf8)) as? [[String: Any]])
        let runDir = try #require(runs.first?["run_dir"] as? String)
        let config = try String(contentsOfFile: runDir + "/llamafactory.yaml", encoding: .utf8)
        for line in [
            "learning_rate: 0.0002", "lora_rank: 16", #"dataset: "medical_qa,alpaca_en""#, #"interleave_probs: "0.75,0.25""#,
            #"stage: "sft""#, "output_dir: \(String(reflecting: runDir))"
        ] {
            #expect(config.contains(line), "\(line) in:\n\(config)")
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/local/bin/llamafactory-cli") {
            #expect(runs.first?["status"] as? String == "failed")
            let show = try Harrow.run("show", try #require(runs.first?["id"] as? String), "--json", in: dir)
            let tail = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["stderr_tail"] as? String ?? ""
            #expect(tail.contains("cannot start llamafactory-cli"), "\(tail)")
        }
    }

    @Test func aMetricsSectionWithMistakesSaysWhere() throws {
        let file = try Harrow.temporaryFile(
            """
            name: bad
            parameters: {lr: {value: 0.1}}
            trainer:
              command: [python3, train.py]
              metrics: {format: llamafactry}
            """)
        let r = try Harrow.run("plan", file)
        #expect(r.status == 2)
        #expect(
            r.stderr.contains(":5:") && r.stderr.contains("unknown metrics format 'llamafactry'") && r.stderr.contains("llamafactory"),
            "\(r.stderr)")
        let noPath = try Harrow.temporaryFile(
            """
            name: bad
            parameters: {lr: {value: 0.1}}
            trainer:
              command: [python3, train.py]
              metrics: {format: jsonl, keys: {loss: train/loss}}
            """)
        let r2 = try Harrow.run("plan", noPath)
        #expect(r2.status == 2 && r2.stderr.contains("needs a `path`"), "\(r2.stderr)")
    }
}
