import Foundation
import Testing

/// What the README promises of commands and options that no other test holds it to, each against the real binary:
/// logs (and following a live run), imports, GPUs, `method: custom`, --rerun-failed, --retries, --grace,
/// HARROW_DB, export, --runs-dir, and two sweeps on one store. (Evaluation's promises: PromisesEvalTests.)
@Suite struct PromisesTests {
    // MARK: logs

    @Test func logsPrintsStdoutThenStderrAndStderrAlone() throws {
        let dir = try Promise.folder(
            trainer: """
                echo "out one"; echo "err one" >&2; echo "out two"; echo "err two" >&2
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                """, experiment: "name: logs\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n")
        let sweep = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let run = try #require(try Promise.runs(dir).first)["id"] as! String
        let both = try Harrow.run(["logs", run], in: dir)
        #expect(both.status == 0 && both.stderr.isEmpty, "\(both.stderr)")
        #expect(both.stdout == "out one\nout two\nerr one\nerr two\n")
        let err = try Harrow.run(["logs", run, "--stderr"], in: dir)
        #expect(err.status == 0 && err.stdout == "err one\nerr two\n", "\(err.stdout)\(err.stderr)")
        // A prefix names the run too; a name that is no run exits 2.
        #expect(try Harrow.run(["logs", String(run.prefix(5))], in: dir).stdout == both.stdout)
        #expect(try Harrow.run(["logs", "nosuchrun"], in: dir).status == 2)
    }

    @Test func logsFollowPrintsLinesWhileTheRunGoesOnAndEndsWithIt() throws {
        // Three lines, then it waits for a file `go` in its run folder before its last line.
        let dir = try Promise.folder(
            trainer: """
                for i in 1 2 3; do echo "line $i"; done
                echo "err line" >&2
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                n=0
                while [ ! -e "$HARROW_RUN_DIR/go" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
                echo "last line"
                """, experiment: "name: follow\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n")
        let sweep = try Promise.start(["sweep", "exp.yaml"], in: dir, log: "sweep")
        defer { Promise.stop(sweep) }
        let runDir = try Promise.waitForRunFolder(in: dir + "/.harrow/runs") {
            Promise.text($0 + "/stdout.log").contains("line 3") && Promise.text($0 + "/stderr.log").contains("err line")
        }
        let run = (runDir as NSString).lastPathComponent
        let follow = try Promise.start(["logs", run, "-f"], in: dir, log: "follow")
        defer { Promise.stop(follow) }
        // The lines so far arrive while the trainer still waits.
        try Promise.waitUntil("logs -f printed the lines so far") { Promise.text(dir + "/follow.out").contains("err line") }
        #expect(follow.isRunning && sweep.isRunning)
        #expect(!Promise.text(dir + "/follow.out").contains("last line"))
        _ = FileManager.default.createFile(atPath: runDir + "/go", contents: nil)
        try Promise.waitForExit(follow)
        #expect(follow.terminationStatus == 0, "\(Promise.text(dir + "/follow.err"))")
        #expect(Promise.text(dir + "/follow.out") == "line 1\nline 2\nline 3\nerr line\nlast line\n")
        try Promise.waitForExit(sweep)
        #expect(sweep.terminationStatus == 0, "\(Promise.text(dir + "/sweep.err"))")
        #expect(try Promise.runs(dir).first?["status"] as? String == "succeeded")
    }

    // MARK: import

    enum Import: String, CaseIterable, CustomTestStringConvertible {
        case hf, llamafactory, msSwift = "ms-swift", wandb
        var testDescription: String { rawValue }
        var path: String {
            let fixtures = Harrow.packageRoot + "/Tests/TrackingTests/Fixtures/"
            switch self {
            case .hf: return fixtures + "hf-run"
            case .llamafactory: return fixtures + "llamafactory-run"
            case .msSwift: return fixtures + "ms-swift-run"
            case .wandb: return fixtures + "wandb-run/run.wandb"
            }
        }

        /// Points per key, counted from the fixture with plain parsing (W&B: what W&B's own reader counted).
        func expectedPoints() throws -> [String: Int] {
            func isNumber(_ v: Any?) -> Bool { v.map { type(of: $0) != Bool.self && Promise.number($0) != nil } ?? false }
            func count(_ entries: [[String: Any]], _ keys: [String: [String]]) -> [String: Int] {
                keys.mapValues { names in entries.filter { e in names.contains { isNumber(e[$0]) } }.count }
            }
            func jsonLines(_ file: String) -> [[String: Any]] {
                Promise.text(file).split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
            }
            switch self {
            case .hf:
                let state = try #require(
                    try JSONSerialization.jsonObject(
                        with: Data(contentsOf: URL(fileURLWithPath: path + "/checkpoint-200/trainer_state.json"))) as? [String: Any])
                // The last entry is the run's summary (train_loss, train_runtime), not a point.
                let history = (state["log_history"] as? [[String: Any]] ?? []).filter { $0["train_runtime"] == nil }
                return count(history, ["train/loss": ["loss"], "val/loss": ["eval_loss"], "lr": ["learning_rate"]])
            case .llamafactory:
                return count(
                    jsonLines(path + "/trainer_log.jsonl"),
                    ["train/loss": ["loss"], "val/loss": ["eval_loss"], "lr": ["lr", "learning_rate"]])
            case .msSwift:
                let lines = jsonLines(path + "/logging.jsonl").filter { $0["log_history"] == nil && $0["train_runtime"] == nil }
                return count(lines, ["train/loss": ["loss"], "val/loss": ["eval_loss"], "lr": ["learning_rate"]])
            case .wandb:
                let url = URL(fileURLWithPath: (path as NSString).deletingLastPathComponent + "/expected.json")
                let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
                return try #require(expected["points"] as? [String: Int])
            }
        }
    }

    @Test(arguments: Import.allCases) func importStoresEveryPointOfTheFixture(_ source: Import) throws {
        let dir = try Harrow.temporaryDirectory()
        let expected = try source.expectedPoints()
        #expect(expected.values.allSatisfy { $0 > 0 } && !expected.isEmpty, "\(expected)")
        let r = try Harrow.run(["import", source.rawValue, source.path], in: dir)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.hasPrefix("imported "), "\(r.stdout)")
        let runs = try Promise.runs(dir)
        #expect(runs.count == 1)
        let run = try #require(runs.first)
        #expect(run["source"] as? String == source.rawValue && run["status"] as? String == "succeeded")
        let metrics = run["metrics"] as? [String: [String: Any]] ?? [:]
        let stored = metrics.mapValues { $0["count"] as? Int ?? -1 }
        if source == .wandb {
            #expect(stored == expected, "stored \(stored), W&B's reader found \(expected)")
        } else {
            for (key, n) in expected {
                #expect(stored[key] == n, "\(source): \(key) has \(stored[key] ?? 0) points stored, \(n) in the fixture")
            }
        }
        // The stored curves are what export gives, point for point.
        let csv = try Harrow.run(["export", "--format", "csv"], in: dir)
        var rows: [String: Int] = [:]
        for line in csv.stdout.split(separator: "\n").dropFirst() {
            rows[String(line.split(separator: ",", omittingEmptySubsequences: false)[3]), default: 0] += 1  // run,sweep,status,key,…
        }
        #expect(rows == stored)
        // Importing the same folder again replaces the run.
        #expect(try Harrow.run(["import", source.rawValue, source.path], in: dir).status == 0)
        #expect(try Promise.runs(dir).count == 1)
    }

    // MARK: sweep options

    @Test func gpusGiveEachTrialOneDeviceNeverTwoAtOnce() throws {
        // Each trial holds a lock folder named after its device while it runs; a second holder would fail mkdir.
        let dir = try Promise.folder(
            trainer: """
                echo "$CUDA_VISIBLE_DEVICES" > "$HARROW_RUN_DIR/gpu"
                if mkdir "gpu-$CUDA_VISIBLE_DEVICES.lock" 2>/dev/null; then :; else echo "$HARROW_RUN_ID $CUDA_VISIBLE_DEVICES" >> clashes; fi
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                sleep 0.3
                rmdir "gpu-$CUDA_VISIBLE_DEVICES.lock"
                """, experiment: "name: gpus\nparameters: {x: [1, 2, 3, 4]}\ntrainer: {command: [./trainer.sh]}\n")
        let r = try Harrow.run(["sweep", "exp.yaml", "--gpus", "0,1"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let runs = try Promise.runs(dir)
        #expect(runs.count == 4 && runs.allSatisfy { $0["status"] as? String == "succeeded" })
        let devices = try runs.map {
            try String(contentsOfFile: ($0["run_dir"] as! String) + "/gpu", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(devices.allSatisfy { $0 == "0" || $0 == "1" }, "\(devices)")  // one id each, never "0,1"
        #expect(Set(devices) == ["0", "1"], "\(devices)")  // two slots, both used
        #expect(
            !FileManager.default.fileExists(atPath: dir + "/clashes"), "one device, two trials at once: \(Promise.text(dir + "/clashes"))")
        #expect(try Harrow.run(["sweep", "exp.yaml", "--gpus", "0,x"], in: dir).status == 2)
        #expect(try Harrow.run(["sweep", "exp.yaml", "--gpus", "0", "--parallel", "2"], in: dir).status == 2)
    }

    @Test func methodCustomIsRefused() throws {
        let dir = try Harrow.temporaryDirectory()
        try "name: c\nmethod: custom\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh]}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        for command in [["sweep", "exp.yaml"], ["plan", "exp.yaml"]] {
            let r = try Harrow.run(command, in: dir)
            #expect(r.status == 2, "\(command): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("exp.yaml:2:") && r.stderr.contains("error:") && r.stderr.contains("method 'custom'"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow"), "a refused sweep created a store")
    }

    @Test func rerunFailedRunsFailedTrialsAgainAndNotSucceededOnes() throws {
        // x=2 fails while a file `fail` is in the folder.
        let dir = try Promise.folder(
            trainer: """
                echo "$1" >> calls
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                if [ "$1" = 2 ] && [ -e fail ]; then echo "x=2 fails" >&2; exit 3; fi
                """, experiment: "name: rerun\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\n")
        _ = FileManager.default.createFile(atPath: dir + "/fail", contents: nil)
        let first = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        #expect(first.status == 1)
        #expect(Promise.lines(dir + "/calls") == ["1", "2"])
        var byX = try Promise.runsByX(dir)
        #expect(byX["1"]?["status"] as? String == "succeeded" && byX["2"]?["status"] as? String == "failed")
        #expect(byX["2"]?["exit_code"] as? Int == 3)
        // The same command again leaves the failed trial alone.
        let again = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        #expect(again.status == 1)
        #expect(Promise.lines(dir + "/calls") == ["1", "2"])
        try FileManager.default.removeItem(atPath: dir + "/fail")
        let rerun = try Harrow.run(["sweep", "exp.yaml", "--rerun-failed"], in: dir)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(Promise.lines(dir + "/calls") == ["1", "2", "2"])
        byX = try Promise.runsByX(dir)
        #expect(byX.count == 2)
        #expect(byX["1"]?["status"] as? String == "succeeded" && byX["1"]?["attempt"] as? Int == 1)
        #expect(byX["2"]?["status"] as? String == "succeeded")
    }

    @Test func retriesGiveAFailingTrialASecondAttempt() throws {
        // x=1 fails its first attempt only; x=2 always fails.
        let dir = try Promise.folder(
            trainer: """
                echo "$1" >> calls
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                if [ "$1" = 1 ] && [ ! -e "seen-$HARROW_RUN_ID" ]; then touch "seen-$HARROW_RUN_ID"; echo "first try fails" >&2; exit 4; fi
                if [ "$1" = 2 ]; then echo "always fails" >&2; exit 5; fi
                exit 0
                """, experiment: "name: retry\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\n")
        let r = try Harrow.run(["sweep", "exp.yaml", "--retries", "1"], in: dir)
        #expect(r.status == 1, "\(r.stderr)")  // x=2 failed both attempts
        #expect(Promise.lines(dir + "/calls").sorted() == ["1", "1", "2", "2"])
        let byX = try Promise.runsByX(dir)
        let one = try #require(byX["1"]), two = try #require(byX["2"])
        #expect(one["status"] as? String == "succeeded" && one["attempt"] as? Int == 2)
        #expect(two["status"] as? String == "failed" && two["attempt"] as? Int == 2 && two["exit_code"] as? Int == 5)
        for (run, codes, last) in [(one, [4, 0], "succeeded"), (two, [5, 5], "failed")] {
            let show = try Harrow.run(["show", run["id"] as! String, "--json"], in: dir)
            let attempts = try #require(
                (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["attempt"] as? Int } == [1, 2])
            #expect(attempts.map { $0["exit_code"] as? Int } == codes)
            #expect(attempts.map { $0["status"] as? String } == ["failed", last])
        }
        // The first attempt's files are kept in attempts/1/.
        let runDir = one["run_dir"] as! String
        #expect(Promise.text(runDir + "/attempts/1/stderr.log").contains("first try fails"))
        #expect(!Promise.text(runDir + "/stderr.log").contains("first try fails"))
    }

    enum Stop: String, CaseIterable, CustomTestStringConvertible {
        case interrupt, timeout
        var testDescription: String { rawValue }
    }

    /// A trainer that ignores SIGTERM is killed --grace seconds after it: it lives on for about the grace, then
    /// SIGKILL ends it (and the sweep), well before the default 10 s. `alive` is replaced by a rename, so a SIGKILL
    /// that lands while `date` starts (slow on a loaded machine) cannot leave it empty.
    @Test(arguments: Stop.allCases) func graceIsTheTimeBetweenSigtermAndSigkill(_ stop: Stop) throws {
        let grace = 2.0
        let dir = try Promise.folder(
            trainer: """
                echo $$ > "$HARROW_RUN_DIR/pid"
                trap 'date +%s.%N >> "$HARROW_RUN_DIR/term"' TERM
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                n=0
                while [ $n -lt 1200 ]; do date +%s.%N > "$HARROW_RUN_DIR/alive.new"; mv "$HARROW_RUN_DIR/alive.new" "$HARROW_RUN_DIR/alive"; sleep 0.05; n=$((n+1)); done
                """,
            experiment: "name: grace\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]"
                + (stop == .timeout ? ", timeout: 1s" : "") + "}\n")
        let sweep = try Promise.start(["sweep", "exp.yaml", "--grace", String(grace)], in: dir, log: "sweep")
        defer { Promise.stop(sweep) }
        let runDir = try Promise.waitForRunFolder(in: dir + "/.harrow/runs") { FileManager.default.fileExists(atPath: $0 + "/alive") }
        if stop == .interrupt { kill(sweep.processIdentifier, SIGINT) }
        try Promise.waitForExit(sweep)
        let ended = Date().timeIntervalSince1970
        #expect(sweep.terminationStatus == (stop == .interrupt ? 130 : 1), "\(Promise.text(dir + "/sweep.err"))")
        let term = try #require(Promise.lines(runDir + "/term").first.flatMap(Double.init), "the trainer never got SIGTERM")
        let alive = try #require(Double(Promise.text(runDir + "/alive").trimmingCharacters(in: .whitespacesAndNewlines)))
        // It went on for the grace after SIGTERM (the loop writes `alive` every 50 ms)…
        #expect(alive - term >= grace - 0.5, "killed \(alive - term) s after SIGTERM with --grace \(grace)")
        // …and was killed then, not after the default 10 s.
        #expect(ended - term < 9, "harrow ended \(ended - term) s after SIGTERM with --grace \(grace)")
        let pid = try #require(Int32(Promise.text(runDir + "/pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) != 0, "the trainer still runs")
        let run = try #require(try Promise.runs(dir).first)
        #expect(run["status"] as? String == (stop == .interrupt ? "interrupted" : "timed_out"))
        if stop == .timeout { #expect(run["signal"] as? Int == Int(SIGKILL)) }
    }

    @Test func harrowDBSelectsTheStore() throws {
        let dir = try Promise.folder(
            trainer: "echo '{\"step\": 1, \"train/loss\": 1.5}' >> \"$HARROW_METRICS\"",
            experiment: "name: env\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh]}\n")
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        let env = ["HARROW_DB": dir + "/elsewhere/my.db"]
        let sweep = try Harrow.run(["sweep", "exp.yaml"], in: dir, environment: env)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/elsewhere/my.db"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow"), "the default store was used too")
        let runs = try Harrow.run(["runs", "--json"], in: dir, environment: env)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 2)
        // Run folders go beside that store.
        #expect(
            list.allSatisfy { ($0["run_dir"] as? String)?.hasPrefix(dir + "/elsewhere/runs/") == true },
            "\(list.map { $0["run_dir"] ?? "" })")
        // Without it, the default store is not there; --db wins over it.
        let without = try Harrow.run(["runs"], in: dir)
        #expect(without.status == 2 && without.stderr.contains(".harrow/harrow.db"), "\(without.stderr)")
        let db = try Harrow.run(["runs", "--db", dir + "/nothing.db"], in: dir, environment: env)
        #expect(db.status == 2 && db.stderr.contains("nothing.db"), "\(db.stderr)")
        #expect(try Harrow.run(["check"], in: dir, environment: env).status == 0)
    }

    // MARK: export

    /// Two runs: x=1 logs train/loss at steps 1…5 (`STEP.5`) and val/loss at 2, 4 (`STEP.25`); x=2 at 1…10 and 2…10.
    func exportStore() throws -> String {
        let dir = try Promise.folder(
            trainer: """
                i=1
                while [ $i -le $((5 * $1)) ]; do
                  echo "{\\"step\\": $i, \\"train/loss\\": $i.5}" >> "$HARROW_METRICS"
                  if [ $((i % 2)) -eq 0 ]; then echo "{\\"step\\": $i, \\"val/loss\\": $i.25}" >> "$HARROW_METRICS"; fi
                  i=$((i+1))
                done
                """,
            experiment:
                "name: exported\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\nresources: {parallel: 2}\n")
        let r = try Harrow.run(["sweep", "exp.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    /// The points each run's trainer wrote, by key.
    func written(x: Int) -> [String: [[Double]]] {
        let steps: [Double] = (1...(5 * x)).map(Double.init)
        let train: [[Double]] = steps.map { s in [s, s + 0.5] }
        let val: [[Double]] = steps.filter { s in s.truncatingRemainder(dividingBy: 2) == 0 }.map { s in [s, s + 0.25] }
        return ["train/loss": train, "val/loss": val]
    }

    @Test func exportJSONLinesHasOneObjectPerRunWithItsCurves() throws {
        let dir = try exportStore()
        let r = try Harrow.run(["export", "--format", "jsonl"], in: dir)
        #expect(r.status == 0 && r.stdout.hasSuffix("\n"), "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        var seen: Set<String> = []
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(o["id"] as? String)
            seen.insert(id)
            #expect(o["sweep"] as? String == "exported" && o["status"] as? String == "succeeded")
            let x = try #require((o["params"] as? [String: Any])?["x"] as? Int)
            let curves = try #require(o["curves"] as? [String: [[Any]]]).mapValues { $0.map { $0.compactMap(Promise.number) } }
            #expect(curves == written(x: x), "run \(id) (x=\(x)): \(curves)")
            // Its summary counts the same points.
            let metrics = o["metrics"] as? [String: [String: Any]] ?? [:]
            #expect(metrics.mapValues { $0["count"] as? Int ?? -1 } == curves.mapValues(\.count))
        }
        #expect(seen == Set(try Promise.runs(dir).map { $0["id"] as! String }))
        // --sweep keeps to one sweep; an unknown one exits 2.
        #expect(try Harrow.run(["export", "--format", "jsonl", "--sweep", "exported"], in: dir).stdout == r.stdout)
        #expect(try Harrow.run(["export", "--format", "jsonl", "--sweep", "nope"], in: dir).status == 2)
    }

    @Test func exportCSVHasEveryPointOnce() throws {
        let dir = try exportStore()
        let r = try Harrow.run(["export", "--format", "csv"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "run,sweep,status,key,step,value")
        let x = Dictionary(
            uniqueKeysWithValues: try Promise.runs(dir).map { ($0["id"] as! String, ($0["params"] as! [String: Any])["x"] as! Int) })
        var points: [String: [String: [[Double]]]] = [:]
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(f.count == 6 && f[1] == "exported" && f[2] == "succeeded", "\(line)")
            points[f[0], default: [:]][f[3], default: []].append([Double(f[4])!, Double(f[5])!])
        }
        #expect(lines.count == 1 + (5 + 2) + (10 + 5))
        #expect(Set(points.keys) == Set(x.keys))
        for (run, curves) in points { #expect(curves == written(x: x[run]!), "run \(run)") }
        // The default format is CSV.
        #expect(try Harrow.run(["export"], in: dir).stdout == r.stdout)
    }

    @Test func runsDirPutsRunFoldersThere() throws {
        let dir = try Promise.folder(
            trainer: "echo out; echo '{\"step\": 1, \"train/loss\": 1.5}' >> \"$HARROW_METRICS\"",
            experiment: "name: placed\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh]}\n")
        let r = try Harrow.run(["sweep", "exp.yaml", "--runs-dir", "out/runs"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let runs = try Promise.runs(dir)
        #expect(runs.count == 2)
        for run in runs {
            let id = run["id"] as! String, runDir = run["run_dir"] as? String ?? ""
            #expect(URL(fileURLWithPath: runDir).standardized.path == URL(fileURLWithPath: dir + "/out/runs/" + id).standardized.path)
            for file in ["trial.json", "metrics.jsonl", "stdout.log", "stderr.log"] {
                #expect(FileManager.default.fileExists(atPath: "\(dir)/out/runs/\(id)/\(file)"), "\(file)")
            }
            #expect(try Harrow.run(["logs", id], in: dir).stdout == "out\n")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow/runs"))
        let check = try Harrow.run(["check"], in: dir)
        #expect(check.status == 0 && check.stdout.contains("curves     2 runs compared"), "\(check.stdout)")
    }

    // MARK: two harrows, one store

    @Test func twoSweepsAtOnceRunEveryTrialOnce() throws {
        let dir = try Promise.folder(
            trainer: """
                echo "$1" >> trials
                echo '{"step": 1, "train/loss": 1.5}' >> "$HARROW_METRICS"
                sleep 0.2
                """, experiment: "name: shared\nparameters: {x: [1, 2, 3, 4, 5, 6]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\n")
        let a = try Promise.start(["sweep", "exp.yaml"], in: dir, log: "a")
        let b = try Promise.start(["sweep", "exp.yaml"], in: dir, log: "b")
        defer { Promise.stop(a); Promise.stop(b) }
        try Promise.waitForExit(a)
        try Promise.waitForExit(b)
        #expect(a.terminationStatus == 0, "\(Promise.text(dir + "/a.err"))")
        #expect(b.terminationStatus == 0, "\(Promise.text(dir + "/b.err"))")
        #expect(Promise.lines(dir + "/trials").sorted() == ["1", "2", "3", "4", "5", "6"])
        let runs = try Promise.runs(dir)
        #expect(runs.count == 6)
        #expect(runs.compactMap { ($0["params"] as? [String: Any])?["x"] as? Int }.sorted() == [1, 2, 3, 4, 5, 6])
        #expect(
            runs.allSatisfy { $0["status"] as? String == "succeeded" && $0["attempt"] as? Int == 1 }, "\(runs.map { $0["status"] ?? "" })")
        let check = try Harrow.run(["check"], in: dir)
        #expect(check.status == 0, "\(check.stdout)")
    }
}

/// Helpers for tests that start harrow in the background and wait on what it does.
enum Promise {
    /// A folder with `trainer.sh` (the given body under `#!/bin/sh`; trainers start in this folder) and `exp.yaml`.
    static func folder(trainer body: String, experiment: String) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try ("#!/bin/sh\n" + body + "\n")
            .write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try experiment.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// Starts harrow in the background; its stdout and stderr go to LOG.out and LOG.err in the folder.
    static func start(_ args: [String], in dir: String, log: String, executable: String = Harrow.binary) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        _ = FileManager.default.createFile(atPath: "\(dir)/\(log).out", contents: nil)
        _ = FileManager.default.createFile(atPath: "\(dir)/\(log).err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: "\(dir)/\(log).out")
        p.standardError = FileHandle(forWritingAtPath: "\(dir)/\(log).err")
        try p.run()
        return p
    }

    /// Ends a process this test started, if it still runs (a test that failed half way).
    static func stop(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
    }

    struct Timeout: Error, CustomStringConvertible { var description: String }

    /// Polls until the condition holds; a hang guard of `seconds`, never a measure.
    static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return }
            usleep(20_000)
        }
        throw Timeout(description: "waited \(Int(seconds)) s: \(what)")
    }

    static func waitForExit(_ p: Process, seconds: Double = 60) throws {
        try waitUntil("\(p.executableURL?.lastPathComponent ?? "") \(p.arguments?.joined(separator: " ") ?? "") to exit", seconds: seconds)
        { !p.isRunning }
        p.waitUntilExit()
    }

    /// The first run folder under `root` for which the condition holds.
    static func waitForRunFolder(in root: String, _ condition: (String) -> Bool) throws -> String {
        var found: String?
        try waitUntil("a run folder in \(root)") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            found = names.map { root + "/" + $0 }.first(where: condition)
            return found != nil
        }
        return found!
    }

    /// A JSON number as a Double, whichever type JSONSerialization gave it (never a Bool).
    static func number(_ v: Any) -> Double? {
        if type(of: v) == Bool.self { return nil }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        return (v as? NSNumber)?.doubleValue
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    static func lines(_ path: String) -> [String] {
        text(path).split(separator: "\n").map(String.init)
    }

    /// `harrow runs --json` in the folder.
    static func runs(_ dir: String, environment: [String: String] = [:]) throws -> [[String: Any]] {
        let r = try Harrow.run(["runs", "--json"], in: dir, environment: environment)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "harrow runs: \(r.stderr)")
    }

    /// The runs, by their parameter x.
    static func runsByX(_ dir: String) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for run in try runs(dir) {
            if let x = (run["params"] as? [String: Any])?["x"] { out["\(x)"] = run }
        }
        return out
    }
}
