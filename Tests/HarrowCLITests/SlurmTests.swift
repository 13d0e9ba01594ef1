import Foundation
import Testing

/// `harrow sweep` on a real one-node Slurm (Debian's slurm-wlm and munge, started by scripts/slurm-cluster.sh;
/// `make test` starts it and sets SLURM_CONF). Each test's sweep is bounded by a timeout, so a cluster that does
/// not schedule fails the test instead of hanging it.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SLURM_CONF"] != nil, "needs a Slurm cluster: SLURM_CONF (make test starts one)"))
struct SlurmTests {
    /// Records when it ran (for the throttle), then fails for x = 7 and succeeds otherwise.
    static let trainer = """
        #!/bin/sh
        echo "$(date +%s.%N) start" >> "$HARROW_RUN_DIR/times"
        i=1
        while [ $i -le 4 ]; do
          echo "{\\"step\\": $i, \\"train/loss\\": $((10 - i))}" >> "$HARROW_METRICS"
          i=$((i+1)); sleep 0.25
        done
        echo "$(date +%s.%N) end" >> "$HARROW_RUN_DIR/times"
        if [ "$1" = 7 ]; then echo "x = 7 is not allowed" >&2; exit 3; fi
        """

    func folder(_ experiment: String, trainer: String = SlurmTests.trainer) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try trainer.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try experiment.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func runs(_ dir: String) throws -> [[String: Any]] {
        let out = try Harrow.run("runs", "--json", in: dir).stdout
        return try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
    }

    /// The tasks Slurm ran (each leaves its batch output) and the tasks harrow submitted (the manifests' lines).
    func counts(_ dir: String) throws -> (ran: Int, submitted: Int, arrays: Int) {
        let slurm = dir + "/.harrow/slurm"
        let files = try FileManager.default.contentsOfDirectory(atPath: slurm)
        let manifests = files.filter { $0.hasSuffix(".runs") }
        let lines = try manifests.map { try String(contentsOfFile: slurm + "/" + $0, encoding: .utf8).split(separator: "\n").count }
        return (files.filter { $0.hasSuffix(".out") }.count, lines.reduce(0, +), manifests.count)
    }

    func start(_ dir: String, log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harrow.binary)
        p.arguments = ["sweep", "exp.yaml"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: dir + "/" + log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: dir + "/" + log)
        try p.run()
        // Bounded: a cluster that never schedules fails the test instead of hanging it.
        DispatchQueue.global().asyncAfter(deadline: .now() + 240) { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        return p
    }

    func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    /// One trial whose trainer runs until a file named `marker` exists in the test's folder (then it succeeds at
    /// once): harrow started, the task running. Returns the folder, harrow, and the task's job id.
    func runningTask(_ name: String, until marker: String) throws -> (String, Process, String) {
        let dir = try folder(
            """
            name: \(name)
            parameters: {x: {value: 1}}
            trainer: {command: [./trainer.sh], timeout: 5m}
            executor: {type: slurm, poll: 1}
            """,
            trainer: """
                #!/bin/sh
                [ -e "$HARROW_RUN_DIR/../../../\(marker)" ] && { echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"; exit 0; }
                touch "$HARROW_RUN_DIR/started"
                sleep 120
                """)
        let p = try start(dir, log: "harrow.log")
        let runsDir = dir + "/.harrow/runs"
        var runDir = ""
        #expect(
            waitFor(60) {
                runDir = ((try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []).first.map { runsDir + "/" + $0 } ?? ""
                return !runDir.isEmpty && FileManager.default.fileExists(atPath: runDir + "/started")
            })
        let job = try String(contentsOfFile: runDir + "/slurm_job", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return (dir, p, job)
    }

    /// 12 trials as one array with a throttle of 2: never more than 2 at once, one failure recorded with its stderr,
    /// every run's Slurm job id in the store.
    @Test func twelveTrialsRunAsOneThrottledArray() throws {
        let dir = try folder(
            """
            name: slurm-grid
            parameters: {x: {min: 1, max: 12}}
            trainer: {command: [./trainer.sh, "{param.x}"], timeout: 5m}
            executor: {type: slurm, array_parallelism: 2, cpus_per_task: 1, poll: 2}
            """)
        let p = try start(dir, log: "harrow.log")
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 1, "one trial fails: \(log.suffix(1500))")
        let all = try runs(dir)
        #expect(all.count == 12)
        #expect(all.filter { $0["status"] as? String == "succeeded" }.count == 11)
        let failed = try #require(all.first { $0["status"] as? String == "failed" })
        #expect((failed["params"] as? [String: Any])?["x"] as? Int == 7)
        let show = try Harrow.run("show", failed["id"] as! String, "--json", in: dir).stdout
        #expect(show.contains("x = 7 is not allowed"), "the stderr tail is recorded")
        #expect(all.allSatisfy { ($0["job"] as? String)?.contains("_") == true && $0["executor"] as? String == "slurm" })

        let c = try counts(dir)
        #expect(c.arrays == 1 && c.submitted == 12 && c.ran == 12, "\(c)")
        // Never more than 2 trainers at once: sweep the start and end times.
        var events: [(Double, Int)] = []
        for run in all {
            let text = try String(contentsOfFile: (run["run_dir"] as! String) + "/times", encoding: .utf8)
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                events.append((Double(f[0])!, f[1] == "start" ? 1 : -1))
            }
        }
        var running = 0, most = 0
        for (_, delta) in events.sorted(by: { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }) {
            running += delta
            most = max(most, running)
        }
        #expect(most == 2, "at most 2 at once (the throttle), and the cluster used both: \(most)")
        // The curves came from the run folders.
        let curve = try Harrow.run("export", "--format", "csv", in: dir).stdout.split(separator: "\n").filter { $0.contains("train/loss") }
        #expect(curve.count == 48)
    }

    /// Without `gres` or `mem`, each trial asks Slurm for what its memory estimate needs, given the partition's
    /// card size: a LoRA trial (about 2.3 GiB) one card of 3.2 GB, full fine-tuning (about 3.9 GiB) two cards to
    /// shard over; both 4 GiB of host memory (the fp32 weights and the runtime). The two requests go out as two
    /// arrays, and Slurm (two cards on this node) hands each task its cards.
    @Test func eachTrialAsksForTheCardsAndMemoryItsEstimateNeeds() throws {
        let dir = try folder(
            """
            name: slurm-gres
            parameters:
              full_finetune: [true, false]
              base_model: {value: ./model}
              per_device_train_batch_size: {value: 4}
              max_seq_len: {value: 256}
            trainer: {command: [./trainer.sh], timeout: 5m}
            executor: {type: slurm, poll: 1, gpu_memory: 3.2GB}
            """,
            trainer: """
                #!/bin/sh
                echo "cards=$CUDA_VISIBLE_DEVICES mem=$SLURM_MEM_PER_NODE" > "$HARROW_RUN_DIR/asked"
                echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
                """)
        try FileManager.default.createDirectory(atPath: dir + "/model", withIntermediateDirectories: true)
        // A Llama of 168M parameters stored in fp32.
        try """
        {"model_type": "llama", "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8, "num_attention_heads": 16,
         "num_key_value_heads": 16, "vocab_size": 32000, "tie_word_embeddings": false, "torch_dtype": "float32"}
        """.write(toFile: dir + "/model/config.json", atomically: true, encoding: .utf8)
        let plan = try Harrow.run("plan", "exp.yaml", "--memory", in: dir).stdout
        #expect(plan.contains("on Slurm: --gres=gpu:2 --mem=4G"), "\(plan)")
        #expect(plan.contains("on Slurm: --gres=gpu:1 --mem=4G"), "\(plan)")

        let p = try start(dir, log: "harrow.log")
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(log.suffix(1500))")
        var asked: [Bool: String] = [:]
        for run in try runs(dir) {
            let full = try #require((run["params"] as? [String: Any])?["full_finetune"] as? Bool)
            asked[full] = try String(contentsOfFile: (run["run_dir"] as! String) + "/asked", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(asked[true] == "cards=0,1 mem=4096", "\(asked)")
        #expect(asked[false] == "cards=0 mem=4096" || asked[false] == "cards=1 mem=4096", "\(asked)")
        #expect(try counts(dir).arrays == 2)
    }

    /// harrow killed with SIGKILL while the array runs: the next harrow watches the tasks still queued or running,
    /// records the ones that ended meanwhile, and submits nothing again.
    @Test func aKilledHarrowResumesWithoutSubmittingTwice() throws {
        let dir = try folder(
            """
            name: slurm-resume
            parameters: {x: {min: 1, max: 6}}
            trainer: {command: [./trainer.sh, "{param.x}"], timeout: 5m}
            executor: {type: slurm, array_parallelism: 1, poll: 2}
            """)
        let first = try start(dir, log: "harrow-1.log")
        let runsDir = dir + "/.harrow/runs"
        func ended() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []).filter {
                FileManager.default.fileExists(atPath: runsDir + "/" + $0 + "/exit_status")
            }.count
        }
        #expect(waitFor(120) { ended() >= 2 }, "two tasks end")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let second = try start(dir, log: "harrow-2.log")
        second.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow-2.log", encoding: .utf8)) ?? ""
        #expect(second.terminationStatus == 0, "\(log.suffix(1500))")
        let all = try runs(dir)
        #expect(
            all.count == 6 && all.allSatisfy { $0["status"] as? String == "succeeded" && $0["attempt"] as? Int == 1 },
            "\(all.map { ($0["status"] ?? "", $0["attempt"] ?? "") })")
        let c = try counts(dir)
        #expect(c.submitted == 6 && c.ran == 6 && c.arrays == 1, "no task submitted twice: \(c)")
        #expect(log.contains("watching its slurm job"), "\(log.suffix(800))")
    }

    /// A job cancelled from outside (scancel) is not the trainer's fault: the attempt is `interrupted` and the trial
    /// runs again in the same sweep.
    @Test func aCancelledJobIsInterruptedAndRunsAgain() throws {
        let (dir, p, job) = try runningTask("slurm-cancel", until: "cancelled")
        FileManager.default.createFile(atPath: dir + "/cancelled", contents: nil)
        _ = try sh("scancel \(job)", in: dir)
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(log.suffix(1500))")
        let run = try #require(try runs(dir).first)
        #expect(run["status"] as? String == "succeeded" && run["attempt"] as? Int == 2)
        let show = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("show", run["id"] as! String, "--json", in: dir).stdout.utf8))
                as? [String: Any])
        let attempts = (show["attempts"] as? [[String: Any]])?.map { $0["status"] as? String ?? "" }
        #expect(attempts == ["interrupted", "succeeded"])
        #expect((run["job"] as? String) != job, "a new job ran the second attempt")
    }

    /// A trial past its Slurm time limit gets the warning signal, stops, and is recorded `timed_out`.
    @Test func aTrialPastItsTimeLimitTimesOut() throws {
        let dir = try folder(
            """
            name: slurm-time
            parameters: {x: {value: 1}}
            trainer: {command: [./trainer.sh]}
            executor: {type: slurm, time: "1", poll: 2}
            """,
            trainer: """
                #!/bin/sh
                trap 'echo "saving before the limit" >&2; exit 143' TERM
                echo '{"step": 1, "train/loss": 2.0}' >> "$HARROW_METRICS"
                sleep 300 & wait $!
                """)
        let started = Date()
        let p = try start(dir, log: "harrow.log")
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 1, "\(log.suffix(1500))")
        let run = try #require(try runs(dir).first)
        #expect(run["status"] as? String == "timed_out")
        #expect(Date().timeIntervalSince(started) < 200)
        let show = try Harrow.run("show", run["id"] as! String, "--json", in: dir).stdout
        #expect(show.contains("saving before the limit"), "the trainer was warned: \(show.suffix(600))")
    }

    /// Evaluation after training runs as a Slurm job too: harrow-train's scorer on the run's checkpoint (the shipped
    /// chat model), its requests and answers as files in the run folder. It scores exactly as the local scorer does.
    @Test func evaluationRunsAsAJob() throws {
        let toy = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures/toy"
        let experiment = """
            name: slurm-eval
            parameters: {x: {value: 1}}
            trainer: {command: [./trainer.sh], timeout: 5m}
            executor: {type: slurm, poll: 1}
            eval: {evalsets: [\(toy)]}
            """
        let trainer = """
            #!/bin/sh
            echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
            cp -r '\(Harrow.packageRoot)/models/chat' "$HARROW_RUN_DIR/checkpoint"
            """
        var totals: [String: [String: Double]] = [:]
        for executor in ["slurm", "local"] {
            let dir = try folder(experiment, trainer: trainer)
            let sweep = try Harrow.run("sweep", "exp.yaml", "--executor", executor, in: dir)
            #expect(sweep.status == 0, "\(sweep.stderr.suffix(1500))")
            let run = try #require(try runs(dir).first)
            let show = try #require(
                try JSONSerialization.jsonObject(with: Data(Harrow.run("show", run["id"] as! String, "--json", in: dir).stdout.utf8))
                    as? [String: Any])
            let scores = show["scores"] as? [String: Any]
            #expect(scores?.isEmpty == false, "\(show["evals"] ?? show)")
            // Every dimension and the total, compared whole (a dictionary's first value differs between processes).
            totals[executor] = scores?.compactMapValues { ($0 as? NSNumber)?.doubleValue }
            let jobFolder = (run["run_dir"] as! String) + "/eval/toy"
            #expect(FileManager.default.fileExists(atPath: jobFolder + "/responses.jsonl") == (executor == "slurm"))
            if executor == "slurm" {
                #expect(FileManager.default.fileExists(atPath: jobFolder + "/slurm_job"), "the scorer ran as a Slurm job")
            }
        }
        #expect(totals["slurm"] != nil && totals["slurm"] == totals["local"], "\(totals)")
    }

    /// A task requeued by Slurm (preemption, `scontrol requeue`) goes back to the queue, not to `failed`: harrow
    /// keeps watching it, and the same attempt ends when the task, run again, ends.
    @Test func aRequeuedTaskIsWaitedForNotFailed() throws {
        let (dir, p, job) = try runningTask("slurm-requeue", until: "requeued")
        FileManager.default.createFile(atPath: dir + "/requeued", contents: nil)
        _ = try sh("scontrol requeue \(job)", in: dir)
        #expect(
            waitFor(30) { ((try? sh("squeue -h -r -j \(job) -o %T", in: dir)) ?? "").hasPrefix("PENDING") }, "the task is back in the queue"
        )
        // A requeued task waits out a begin time; let it start now.
        _ = try sh("scontrol update jobid=\(job) StartTime=now", in: dir)
        p.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/harrow.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(log.suffix(1500))")
        let run = try #require(try runs(dir).first)
        #expect(run["status"] as? String == "succeeded" && run["attempt"] as? Int == 1 && run["job"] as? String == job)
    }
}
