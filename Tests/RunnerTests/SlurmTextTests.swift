import Foundation
import Testing
@testable import Runner
import Sweep

/// Slurm's texts as harrow reads and writes them, without a cluster: squeue lines, scontrol records, the end
/// of a task, time limits, and the task script's quoting. (A real cluster: HarrowCLITests/SlurmTests.)
@Suite struct SlurmTextTests {
    @Test func squeueLinesAreReadPerTask() {
        // `squeue --array --format=%i|%T|%r|%k`, as Slurm 22.05 prints it; a pending array not yet split shows its range.
        let text = """
            41_2|RUNNING|None|/runs/a.runs
            41_[3-5,8%2]|PENDING|JobArrayTaskLimit|/runs/a.runs
            42_0|PENDING|BeginTime|/runs/b.runs
            43_1|COMPLETING|None|
            """
        let q = Slurm.parseQueue(text)
        #expect(Set(q.keys) == ["41_2", "41_3", "41_4", "41_5", "41_8", "42_0", "43_1"])
        #expect(q["41_4"] == Slurm.QueueEntry(state: "PENDING", reason: "JobArrayTaskLimit", comment: "/runs/a.runs"))
        #expect(Slurm.liveState(q["41_2"]!) == .running && Slurm.liveState(q["43_1"]!) == .running)
        #expect(Slurm.liveState(q["42_0"]!) == .queued("BeginTime"))
        #expect(Slurm.liveState(Slurm.QueueEntry(state: "CANCELLED", reason: "None", comment: "")) == nil)
    }

    @Test func scontrolRecordsGiveStateAndExitCode() {
        let line =
            "JobId=52 ArrayJobId=51 ArrayTaskId=1 JobName=harrow-x UserId=root(0) JobState=FAILED Reason=NonZeroExitCode "
            + "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode=3:0 RunTime=00:00:02 TimeLimit=UNLIMITED"
        #expect(Slurm.parseJobRecord(line) == Slurm.JobRecord(state: "FAILED", exitCode: 3, signal: 0, reason: "NonZeroExitCode"))
        #expect(Slurm.parseJobRecord("slurm_load_jobs error: Invalid job id specified") == nil)
    }

    /// Every way a task can leave the queue, and what the run becomes.
    @Test func theEndOfATaskIsRecordedFromSlurmAndTheRunFolder() {
        func record(_ state: String, _ code: Int32 = 0, _ signal: Int32 = 0) -> Slurm.JobRecord {
            Slurm.JobRecord(state: state, exitCode: code, signal: signal, reason: "None")
        }
        let wrote0 = Slurm.RunFiles(exitStatus: 0), wrote3 = Slurm.RunFiles(exitStatus: 3)
        #expect(Slurm.finalState(record: record("COMPLETED"), files: wrote0) == .ended(.exited(0)))
        #expect(Slurm.finalState(record: record("FAILED", 3), files: wrote3) == .ended(.exited(3)))
        // The task died before it could write its status: Slurm's exit code or signal.
        #expect(Slurm.finalState(record: record("FAILED", 0, 9), files: .init()) == .ended(.signaled(9)))
        #expect(Slurm.finalState(record: record("OUT_OF_MEMORY", 0, 9), files: .init()) == .ended(.signaled(9)))
        // The time limit: Slurm says so, or the warning left its mark before the record was forgotten.
        #expect(Slurm.finalState(record: record("TIMEOUT", 0, 15), files: .init()) == .timedOut(nil))
        #expect(Slurm.finalState(record: nil, files: .init(exitStatus: 143, timedOut: true)) == .timedOut(.exited(143)))
        #expect(Slurm.finalState(record: record("COMPLETED"), files: .init(exitStatus: 143, timedOut: true)) == .timedOut(.exited(143)))
        // Not the trainer's fault: the run goes again.
        for state in ["CANCELLED", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"] {
            guard case .vanished = Slurm.finalState(record: record(state), files: .init()) else {
                Issue.record("\(state) should make the run interrupted")
                continue
            }
        }
        // Forgotten by Slurm (MinJobAge): the run folder is the record; with nothing there, it is lost.
        #expect(Slurm.finalState(record: nil, files: wrote3) == .ended(.exited(3)))
        guard case .vanished = Slurm.finalState(record: nil, files: .init()) else { Issue.record("lost without a status"); return }
        // Still in Slurm's hands (requeued): not over.
        #expect(!Slurm.finalState(record: record("PENDING"), files: .init()).isOver)
    }

    @Test func timeLimitsAreReadInSlurmsSyntax() {
        #expect(SlurmTime.minutes("90") == 90)
        #expect(SlurmTime.minutes("4:00:00") == 240)
        #expect(SlurmTime.minutes("30:30") == 30.5)
        #expect(SlurmTime.minutes("1-12") == 2160)
        #expect(SlurmTime.minutes("1-00:30:00") == 1470)
        #expect(SlurmTime.minutes("UNLIMITED") == 0)
        #expect(SlurmTime.minutes("4h") == nil && SlurmTime.minutes("-5") == nil && SlurmTime.minutes("1:2:3:4") == nil)
        #expect(SlurmTime.limit(seconds: 1) == "1" && SlurmTime.limit(seconds: 3600) == "60" && SlurmTime.limit(seconds: 3601) == "61")
        #expect(Slurm.warningSeconds(limitMinutes: 1) == 15 && Slurm.warningSeconds(limitMinutes: 240) == 120)
    }

    /// The trainer's argv reaches it word for word through the task script, whatever it holds.
    @Test func theTaskScriptPassesTheArgvVerbatim() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-task-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hostile = #"$(touch pwned); `id` 'q' "q" \ * ${HOME}"#
        let script = Slurm.taskScript(
            argv: ["/bin/sh", "-c", "printf '%s' \"$1\" > \"$HARROW_RUN_DIR/arg\"; exit 4", "sh", hostile],
            environment: ["HARROW_RUN_DIR": dir, "BAD NAME": "x"], workingDirectory: dir, runDir: dir,
            stdout: dir + "/stdout.log", stderr: dir + "/stderr.log", runID: "r1")
        try script.write(toFile: dir + "/slurm-task.sh", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [dir + "/slurm-task.sh"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 4)
        #expect(try String(contentsOfFile: dir + "/arg", encoding: .utf8) == hostile)
        #expect(try String(contentsOfFile: dir + "/exit_status", encoding: .utf8) == "4\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/pwned") && !script.contains("BAD NAME"))
    }
}

/// A Slurm query that does not answer is given up on, so a sweep asks again at its next poll instead of waiting on it.
struct SlurmQueryTests {
    @Test func aQueryThatDoesNotAnswerIsGivenUpOn() async throws {
        await #expect {
            _ = try await Slurm.query(["sleep", "30"], timeout: 0.5)
        } throws: { error in
            "\(error)" == "sleep did not answer in 0.5 s"
        }
        let answered = try await Slurm.query(["echo", "5_0|RUNNING||"], timeout: 30)
        #expect(answered.status == 0 && answered.stdout == "5_0|RUNNING||\n")
    }
}
