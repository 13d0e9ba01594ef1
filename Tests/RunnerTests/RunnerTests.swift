import Foundation
import Testing
@testable import Runner
import Sweep
@testable import Tracking

/// The runner with real trainer processes (small shell scripts) and a real store.
@Suite struct RunnerTests {
    struct World {
        let dir: String
        let store: Store
    }

    func world(trainer script: String) throws -> World {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-runner-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ("#!/bin/sh\n" + script).write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        return World(dir: dir, store: try Store(path: dir + "/.harrow/harrow.db"))
    }

    func sweep(_ w: World, _ yaml: String, configure: (inout RunnerOptions) -> Void = { _ in }) async throws -> SweepOutcome {
        let plan = try Planner.plan(Experiment.parse(yaml: yaml, file: w.dir + "/exp.yaml"))
        var options = RunnerOptions()
        options.workingDirectory = w.dir
        options.handleSignals = false
        options.pollInterval = 0.05
        options.killGrace = 1
        configure(&options)
        return try await SweepRunner(store: w.store, plan: plan, spec: yaml, options: options).run()
    }

    @Test func aCrashingTrainerFailsItsRunAndTheSweepGoesOn() async throws {
        let w = try world(
            trainer: """
                echo '{"step": 1, "train/loss": 2.0}' >> "$HARROW_METRICS"
                if [ "$1" = "3" ]; then echo "loading shard 3" >&2; echo "CUDA error: out of memory" >&2; exit 3; fi
                echo '{"step": 2, "train/loss": 1.5}' >> "$HARROW_METRICS"
                """)
        let o = try await sweep(
            w,
            """
            name: crash
            parameters: {x: [1, 2, 3, 4]}
            trainer: {command: [./trainer.sh, "{param.x}"]}
            resources: {parallel: 2}
            """)
        #expect(o.exitCode == 1)
        let byX = Dictionary(uniqueKeysWithValues: o.runs.map { ($0.params["x"]?.number.map { Int($0) } ?? -1, $0) })
        #expect(byX[3]?.status == .failed)
        #expect(byX[3]?.exitCode == 3)
        #expect(byX[3]?.stderrTail?.contains("CUDA error: out of memory") == true)
        #expect(try w.store.curve(run: byX[3]!.rowID, key: "train/loss").steps == [1])  // what it wrote is kept
        for x in [1, 2, 4] {
            #expect(byX[x]?.status == .succeeded)
            #expect(try w.store.curve(run: byX[x]!.rowID, key: "train/loss").values == [2.0, 1.5])
        }
    }

    /// Values reach the trainer as argv, never through a shell: metacharacters, quotes and newlines arrive verbatim.
    @Test func parameterValuesWithShellMetacharactersArriveVerbatim() async throws {
        let w = try world(
            trainer: """
                printf '%s' "$1" > "$HARROW_RUN_DIR/arg"
                """)
        let hostile = #"$(touch pwned); `id` > x | rm -rf ~ && echo "q" 'q' \ * ; ${HOME}"#
        let o = try await sweep(
            w,
            """
            name: verbatim
            parameters: {v: {value: '\(hostile.replacingOccurrences(of: "'", with: "''"))'}}
            trainer: {command: [./trainer.sh, "{param.v}"]}
            """)
        #expect(o.exitCode == 0)
        let runDir = try #require(o.runs.first?.runDir)
        #expect(try String(contentsOfFile: runDir + "/arg", encoding: .utf8) == hostile)
        #expect(!FileManager.default.fileExists(atPath: w.dir + "/pwned") && !FileManager.default.fileExists(atPath: w.dir + "/x"))
    }

    @Test func aHangingTrainerTimesOutAndItsChildrenDie() async throws {
        let w = try world(
            trainer: """
                echo $$ > "$HARROW_RUN_DIR/pid"
                sleep 300 &
                echo $! > "$HARROW_RUN_DIR/child"
                wait
                """)
        let started = Date()
        let o = try await sweep(w, "name: hang\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh], timeout: 1}\n")
        #expect(Date().timeIntervalSince(started) < 120)  // the trainer alone would take 300 s; the rest is room for a busy machine
        let run = try #require(o.runs.first)
        #expect(run.status == .timed_out)
        // The timeout sends SIGTERM to the trainer's group; sh dies of it at once (SIGKILL would mean it ignored it).
        #expect(
            run.signal == SIGTERM && run.exitCode == nil,
            "signal \(run.signal.map(String.init) ?? "none"), exit \(run.exitCode.map(String.init) ?? "none")")
        #expect(o.exitCode == 1)
        let child = try Int32(
            String(contentsOfFile: run.runDir! + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        // Its group was signalled: the child dies, however late a busy machine lets it (waited for, up to 10 s).
        for _ in 0..<500 where processIsAlive(child) { usleep(20_000) }
        #expect(!processIsAlive(child), "the trainer's child survived the timeout")
    }

    @Test func malformedAndNonFiniteLinesAreCounted() async throws {
        let w = try world(
            trainer: """
                printf '%s\\n' '{"event": "start", "total_steps": 3, "steps_per_epoch": 3, "warmup_steps": 0}' \
                  '{"step": 1, "train/loss": 2.5}' 'garbage' '{"step": 2, "train/loss": NaN}' '{"step": 3, "train/loss": 1.0, "lr": Infinity}' \
                  >> "$HARROW_METRICS"
                printf '{"step": 4, "train/loss": 0.5}' >> "$HARROW_METRICS"
                """)
        let o = try await sweep(w, "name: bad-lines\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n")
        let run = try #require(o.runs.first)
        #expect(run.status == .succeeded)
        #expect(run.malformedLines == 1)
        #expect(run.nonfiniteValues == 2)
        #expect(run.totalSteps == 3)
        // The last line had no newline: it still counts once the trainer has ended.
        #expect(try w.store.curve(run: run.rowID, key: "train/loss").steps == [1, 3, 4])
    }

    @Test func retriesMakeNewAttemptsAndArchiveTheOldOnes() async throws {
        let w = try world(
            trainer: """
                if [ ! -e "$HARROW_RUN_DIR/../tried-$1" ]; then touch "$HARROW_RUN_DIR/../tried-$1"; echo first >&2; exit 1; fi
                echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
                """)
        let o = try await sweep(w, "name: retry\nparameters: {x: [1, 2]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"], retries: 1}\n")
        #expect(o.exitCode == 0)
        #expect(o.runs.count == 2)
        for run in o.runs {
            #expect(run.status == .succeeded && run.attempt == 2)
            #expect(try w.store.attempts(run: run.rowID).map(\.status) == ["failed", "succeeded"])
            #expect(FileManager.default.fileExists(atPath: run.runDir! + "/attempts/1/stderr.log"))
            #expect(try w.store.curve(run: run.rowID, key: "train/loss").steps == [1])
        }
    }

    @Test func runningAgainSkipsFinishedTrialsAndRerunsFailedOnRequest() async throws {
        let w = try world(
            trainer: """
                [ "$1" = "2" ] && [ ! -e "$HARROW_RUN_DIR/../fixed" ] && exit 1
                echo "{\\"step\\": 1, \\"train/loss\\": $1}" >> "$HARROW_METRICS"
                """)
        let yaml = "name: again\nparameters: {x: [1, 2, 3]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\n"
        let first = try await sweep(w, yaml)
        #expect(first.runs.map(\.status) == [.succeeded, .failed, .succeeded])
        let second = try await sweep(w, yaml)
        #expect(second.alreadyFinished == 2)
        #expect(second.runs.map(\.attempt) == [1, 1, 1])  // nothing ran again
        FileManager.default.createFile(atPath: w.dir + "/.harrow/runs/fixed", contents: nil)
        let third = try await sweep(w, yaml) { $0.rerunFailed = true }
        #expect(third.runs.map(\.status) == [.succeeded, .succeeded, .succeeded])
        #expect(third.runs.map(\.attempt) == [1, 2, 1])
        #expect(third.exitCode == 0)
    }

    @Test func trainerContractEnvironmentAndFiles() async throws {
        let w = try world(
            trainer: """
                env | grep -E '^(HARROW_|OMP_NUM_THREADS|OPENBLAS_NUM_THREADS)' | sort > "$HARROW_RUN_DIR/env.txt"
                cp "$1" "$HARROW_RUN_DIR/seen-config.json"
                pwd > "$HARROW_RUN_DIR/cwd.txt"
                echo hello
                """)
        FileManager.default.createFile(atPath: w.dir + "/data.jsonl", contents: Data("{}\n".utf8))
        let o = try await sweep(
            w,
            """
            name: contract
            parameters: {lr: 0.001, dataset: data.jsonl}
            trainer: {command: [./trainer.sh, "{config}"]}
            resources: {parallel: 2}
            """)
        let run = try #require(o.runs.first)
        let dir = run.runDir!
        let env = try String(contentsOfFile: dir + "/env.txt", encoding: .utf8)
        #expect(env.contains("HARROW_RUN_ID=\(run.id)"))
        #expect(env.contains("HARROW_METRICS=\(dir)/metrics.jsonl"))
        #expect(env.contains("HARROW_RUN_DIR=\(dir)"))
        let share = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        #expect(env.contains("OPENBLAS_NUM_THREADS=\(share)") && env.contains("OMP_NUM_THREADS=\(share)"))
        #expect(try String(contentsOfFile: dir + "/seen-config.json", encoding: .utf8) == "{\"dataset\": \"data.jsonl\", \"lr\": 0.001}\n")
        #expect(try String(contentsOfFile: dir + "/stdout.log", encoding: .utf8) == "hello\n")
        #expect(
            URL(fileURLWithPath: try String(contentsOfFile: dir + "/cwd.txt", encoding: .utf8).trimmingCharacters(in: .newlines))
                .standardized
                == URL(fileURLWithPath: w.dir).standardized)
        let inputs = try w.store.artifacts(run: run.rowID)
        #expect(inputs.count == 1 && inputs[0].role == "input:dataset" && inputs[0].size == 3)
        #expect(inputs[0].sha256 == "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356")  // sha256 of "{}\n"
        #expect(run.provenanceID != nil)
    }

    /// A W&B script's run: the agent's config file and environment, and its `.wandb` file read as it is written
    /// (a file the W&B SDK recorded, copied in two pieces cut inside a record).
    @Test func wandbScriptGetsTheAgentsContractAndItsLogIsRead() async throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrackingTests/Fixtures/wandb-run/run.wandb").path
        let w = try world(
            trainer: """
                cp "$WANDB_SWEEP_PARAM_PATH" "$HARROW_RUN_DIR/seen.yaml"
                env | grep -E '^WANDB_' | sort > "$HARROW_RUN_DIR/wandb-env.txt"
                echo "$@" > "$HARROW_RUN_DIR/argv.txt"
                d="$WANDB_DIR/wandb/offline-run-20250101_000000-$WANDB_RUN_ID"
                mkdir -p "$d"
                head -c 70001 '\(fixture)' > "$d/run-$WANDB_RUN_ID.wandb"
                sleep 0.4
                tail -c +70002 '\(fixture)' >> "$d/run-$WANDB_RUN_ID.wandb"
                """)
        let notices = Notices()
        let o = try await sweep(
            w,
            """
            name: wb
            method: grid
            metric: {name: accuracy, goal: maximize}
            parameters:
              lr: {values: [0.0001]}
              lora: {parameters: {r: {value: 8}, alpha: {value: 16}}}
            command: [./trainer.sh, "${args}"]
            """
        ) { $0.notice = { notices.add($0) } }
        let run = try #require(o.runs.first)
        #expect(run.status == .succeeded)
        let dir = run.runDir!
        #expect(
            try String(contentsOfFile: dir + "/seen.yaml", encoding: .utf8)
                == "wandb_version: 1\n\nlr:\n  value: 0.0001\nlora:\n  value:\n    alpha: 16\n    r: 8\n")
        let env = try String(contentsOfFile: dir + "/wandb-env.txt", encoding: .utf8)
        #expect(env.contains("WANDB_RUN_ID=\(run.id)\n") && env.contains("WANDB_SWEEP_ID=wb\n") && env.contains("WANDB_DIR=\(dir)\n"))
        #expect(env.contains("WANDB_MODE=offline") || ProcessInfo.processInfo.environment["WANDB_MODE"] != nil)
        #expect(try String(contentsOfFile: dir + "/argv.txt", encoding: .utf8) == "--lr=0.0001 --lora={'alpha': 16, 'r': 8}\n")
        // Every point of the file, as W&B's own reader counted them (Fixtures/wandb-run/expected.json).
        #expect(try w.store.curve(run: run.rowID, key: "train/loss").steps.count == 300)
        #expect(try w.store.curve(run: run.rowID, key: "val_loss").steps.count == 30)
        // The sweep's metric never arrived: said once, with what did.
        #expect(notices.all.filter { $0.contains("accuracy was never logged") }.count == 1)
        #expect(notices.all.contains { $0.contains("it logged lr, train/loss, val_loss") })
    }

    @Test func earlyStopEndsATrialWhoseValLossStoppedImproving() async throws {
        // Val falls for 5 evaluations, then rises; the trainer would go on for 40 (12 s). Stopping is decided at the
        // 8th (about 2.4 s in), which leaves a loaded machine (the whole suite in parallel) time to deliver SIGTERM.
        let w = try world(
            trainer: """
                echo '{"event": "start", "total_steps": 400, "steps_per_epoch": 100, "warmup_steps": 0}' >> "$HARROW_METRICS"
                i=1
                while [ $i -le 40 ]; do
                  t=$(awk "BEGIN { print 3 / ($i + 1) }")
                  if [ $i -le 5 ]; then v=$(awk "BEGIN { print 3 - 0.3 * $i }"); else v=$(awk "BEGIN { print 1.5 + 0.1 * ($i - 5) }"); fi
                  echo "{\\"step\\": $((i * 10)), \\"train/loss\\": $t}" >> "$HARROW_METRICS"
                  echo "{\\"step\\": $((i * 10)), \\"val/loss\\": $v}" >> "$HARROW_METRICS"
                  i=$((i + 1))
                  sleep 0.3
                done
                """)
        let o = try await sweep(
            w, "name: early\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\nearly_stop: {patience: 3, min_delta: 0.01}\n")
        let run = try #require(o.runs.first)
        #expect(run.status == .stopped_early)
        #expect(o.exitCode == 0)  // stopped early counts as finished
        let val = try w.store.curve(run: run.rowID, key: "val/loss")
        // Stopping is decided at the 8th evaluation; however late the SIGTERM lands under load, it lands before the 40th.
        #expect(val.steps.count < 40, "the trainer was not stopped: \(val.steps.count) evaluations")
        let d = try #require(try w.store.diagnosis(run: run.rowID))
        #expect(d.bestStep == 50)
        // Stopped early is finished: running the sweep again does not train it again.
        let again = try await sweep(
            w, "name: early\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\nearly_stop: {patience: 3, min_delta: 0.01}\n")
        #expect(again.alreadyFinished == 1 && again.runs.first?.attempt == 1 && again.runs.first?.status == .stopped_early)
    }

    @Test func evaluationRunsAfterTrainingAndIsStored() async throws {
        let w = try world(
            trainer: "echo '{\"step\": 1, \"train/loss\": 1.0}' >> \"$HARROW_METRICS\"\nmkdir -p \"$HARROW_RUN_DIR/checkpoint\"\n")
        let fixtures = #filePath.components(separatedBy: "/Tests/")[0] + "/Tests/EvaluationTests/Fixtures"
        let o = try await sweep(
            w,
            """
            name: with-eval
            parameters: {x: 1}
            trainer: {command: [./trainer.sh]}
            eval:
              evalsets: [\(fixtures)/toy]
              scorer: [python3, \(fixtures)/scorer.py, --model, "{checkpoint}"]
            """)
        let run = try #require(o.runs.first)
        #expect(run.status == .succeeded)
        let evals = try w.store.evals(run: run.rowID, items: true)
        #expect(evals.count == 1)
        #expect(evals.first?.status == "succeeded")
        #expect(evals.first?.total == 0.375 && evals.first?.totalNorm == 0.5)
        #expect(evals.first?.items.count == 6)
        #expect(evals.first?.groups.first { $0.dimension == "helpful" && $0.taskType.isEmpty }?.accStderr == 0.5)
    }

    @Test func orphanedTrainersAreFoundByTheirEnvironment() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["3"]
        let marker = "/tmp/harrow-orphan-\(UUID().uuidString)"
        p.environment = ["HARROW_RUN_DIR": marker]
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        // Until the child has exec'd, its environment is still ours.
        var groups: Set<Int32> = []
        for _ in 0..<100 where groups.isEmpty {
            groups = processGroups(withEnvironment: "HARROW_RUN_DIR", value: marker)
            if groups.isEmpty { usleep(20_000) }
        }
        #expect(groups == [getpgid(p.processIdentifier)])
        #expect(processGroups(withEnvironment: "HARROW_RUN_DIR", value: marker + "x").isEmpty)
        #expect(processIsAlive(p.processIdentifier))
    }

    @Test func aMissingTrainerFailsWithAClearMessage() async throws {
        let w = try world(trainer: "exit 0")
        let o = try await sweep(w, "name: missing\nparameters: {x: 1}\ntrainer: {command: [no-such-trainer-here]}\n")
        #expect(o.runs.first?.status == .failed)
        #expect(o.runs.first?.stderrTail?.contains("cannot start no-such-trainer-here") == true)
    }

    @Test func deadlineStartsNothingThatWouldOverrun() async throws {
        let w = try world(trainer: "sleep 0.4\n")
        let o = try await sweep(w, "name: deadline\nparameters: {epochs: [1, 8]}\ntrainer: {command: [./trainer.sh]}\n") {
            $0.deadline = Date().addingTimeInterval(1.5)
        }
        // Epoch 1 takes ~0.4 s; the 8-epoch trial is estimated at ~3.2 s and is not started.
        #expect(o.runs.first { $0.params["epochs"] == .int(1) }?.status == .succeeded)
        #expect(o.runs.first { $0.params["epochs"] == .int(8) }?.status == .queued)
        #expect(o.notStarted == 1)
        #expect(o.exitCode == 0)
    }
}

/// Paths a trainer or a user names stay inside the folders they belong to.
@Suite struct PathContainmentTests {
    @Test func aCheckpointNamedOutsideItsRunFolderIsNotEvaluated() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-paths-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/outside", withIntermediateDirectories: true)
        // The trainer names a checkpoint two folders up, and an absolute one elsewhere; neither is taken.
        try """
        #!/bin/sh
        echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
        echo '{"event": "done", "checkpoint": "\(dir)/outside", "best_checkpoint": "../../outside"}' >> "$HARROW_METRICS"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        let store = try Store(path: dir + "/.harrow/harrow.db")
        let yaml = "name: paths\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n"
        var options = RunnerOptions()
        options.workingDirectory = dir
        options.handleSignals = false
        options.pollInterval = 0.05
        let o = try await SweepRunner(
            store: store, plan: try Planner.plan(Experiment.parse(yaml: yaml, file: dir + "/exp.yaml")),
            spec: yaml, options: options
        ).run()
        let run = try #require(o.runs.first)
        #expect(run.bestCheckpoint == "../../outside" && run.checkpoint == dir + "/outside")
        let evaluation = RunEvaluation(workingDirectory: dir, toolDirectory: nil, scorer: nil)
        #expect(evaluation.checkpoint(of: run) == nil)
        try FileManager.default.createDirectory(atPath: run.runDir! + "/checkpoint", withIntermediateDirectories: true)
        #expect(evaluation.checkpoint(of: run) == URL(fileURLWithPath: run.runDir! + "/checkpoint").standardized.path)
    }
}

/// Notices a sweep printed, collected across its tasks.
final class Notices: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
