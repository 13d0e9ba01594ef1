import Foundation
import Testing

/// Faults injected into real sweeps: harrow killed at random moments, a power cut, runaway trainer output,
/// orphaned children, a full disk, three sweeps on one store. Afterwards nothing finished is lost or
/// duplicated, every curve equals its metrics file (`harrow check`), and every run is terminal.
@Suite(.serialized) struct FaultTests {
    static let fixtures = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures"

    func folder(trainer: String) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try ("#!/bin/sh\n" + trainer).write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        return dir
    }

    func start(_ args: [String], in dir: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harrow.binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func json(_ r: Harrow.Result) throws -> Any { try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) }

    /// `harrow check`: integrity ok and every stored curve equal to its metrics file.
    func checked(_ dir: String) throws -> [String: Any] {
        let r = try Harrow.run("check", "--json", in: dir)
        let c = try #require(try json(r) as? [String: Any])
        #expect(r.status == 0 && c["ok"] as? Bool == true, "\(r.stdout)")
        return c
    }

    /// Every run succeeded in exactly one attempt.
    func everyRunSucceededOnce(_ dir: String, count: Int) throws {
        let runs = try #require(try json(try Harrow.run("runs", "--json", in: dir)) as? [[String: Any]])
        #expect(runs.count == count)
        for run in runs {
            #expect(run["status"] as? String == "succeeded", "\(run["id"] ?? "?") is \(run["status"] ?? "?")")
            let show = try #require(try json(try Harrow.run("show", run["id"] as! String, "--json", in: dir)) as? [String: Any])
            let attempts = try #require(show["attempts"] as? [[String: Any]])
            #expect(attempts.filter { $0["status"] as? String == "succeeded" }.count == 1)
        }
    }

    /// Harrow is SIGKILLed 20 times at random moments of a sweep that trains, ingests, evaluates and
    /// diagnoses, and resumed each time. 48 trials of at least 1.5 s each on 2 slots are 36 s of work or more;
    /// 20 rounds of at most 1 s can do at most 20 s of it (less, as each kill throws away the trials in flight),
    /// so all 20 kills land mid-sweep however fast or busy the machine is.
    @Test func killedTwentyTimesAcrossTrainingAndEvaluation() throws {
        let dir = try folder(
            trainer: """
                i=1
                while [ $i -le 15 ]; do
                  echo "{\\"step\\": $i, \\"train/loss\\": $(( 100 - i )).$1, \\"val/loss\\": $(( 90 - i )).5}" >> "$HARROW_METRICS"
                  i=$((i+1)); sleep 0.1
                done
                mkdir -p "$HARROW_RUN_DIR/checkpoint"
                """)
        try """
        name: faults
        parameters: {x: {min: 1, max: 48}}
        trainer: {command: [./trainer.sh, "{param.x}"]}
        resources: {parallel: 2}
        eval:
          evalsets: [\(Self.fixtures)/toy]
          scorer: [python3, \(Self.fixtures)/scorer.py, --model, "{checkpoint}"]
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        var generator = SystemRandomNumberGenerator()
        var kills = 0, rounds = 0
        while rounds < 60 {
            rounds += 1
            let p = try start(["sweep", "exp.yaml"], in: dir)
            if kills < 20 {
                // A blocking sleep: under a busy test run, Task.sleep may resume seconds late.
                usleep(UInt32(Int.random(in: 100...1_000, using: &generator)) * 1_000)
                if p.isRunning {
                    kill(p.processIdentifier, SIGKILL)
                    kills += 1
                }
            }
            p.waitUntilExit()
            if p.terminationReason == .exit, p.terminationStatus == 0 { break }
        }
        #expect(kills == 20)
        try everyRunSucceededOnce(dir, count: 48)
        let c = try checked(dir)
        #expect(c["points"] as? Int == 48 * 30)
        let evals = try #require(try json(try Harrow.run("runs", "--json", in: dir)) as? [[String: Any]])
        #expect(evals.allSatisfy { ($0["scores"] as? [String: Any])?.isEmpty == false }, "every run evaluated")
        let diagnosed = try #require(try json(try Harrow.run("diagnose", "--sweep", "faults", "--json", in: dir)) as? [[String: Any]])
        #expect(diagnosed.count == 48)
        // Once everything finished, running again does nothing.
        let again = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(again.status == 0 && again.stdout.contains("48 succeeded (48 finished before and skipped)"))
    }

    /// Harrow and its trainers killed together, as a power cut would, five times; then resumed.
    @Test func aPowerCutLosesNothingFinished() throws {
        let dir = try folder(
            trainer: """
                i=1
                while [ $i -le 10 ]; do echo "{\\"step\\": $i, \\"train/loss\\": $i.$1}" >> "$HARROW_METRICS"; i=$((i+1)); sleep 0.05; done
                """)
        try
            "name: cut\nparameters: {x: {min: 1, max: 6}}\ntrainer: {command: [\(dir)/trainer.sh, \"{param.x}\"]}\nresources: {parallel: 2}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        for _ in 0..<5 {
            let p = try start(["sweep", "exp.yaml"], in: dir)
            usleep(UInt32.random(in: 200_000...900_000))
            // Everything at once: harrow, then every trainer of this folder (their own process groups).
            kill(p.processIdentifier, SIGKILL)
            try sh("pkill -KILL -f '\(dir)/trainer.sh' || true", in: dir)
            p.waitUntilExit()
        }
        let finish = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(finish.status == 0, "\(finish.stderr.suffix(500))")
        try everyRunSucceededOnce(dir, count: 6)
        #expect(try checked(dir)["points"] as? Int == 60)
    }

    /// 1 GB on stdout and one 10 MB metrics line: harrow's memory stays bounded and the lines after the
    /// long one are read.
    @Test func runawayOutputLeavesMemoryBounded() throws {
        let dir = try folder(
            trainer: """
                head -c 1000000000 /dev/zero
                echo '{"step": 1, "train/loss": 2.0}' >> "$HARROW_METRICS"
                { printf '{"step": 2, "note": "'; head -c 10000000 /dev/zero | tr '\\0' x; printf '"}\\n'; } >> "$HARROW_METRICS"
                echo '{"step": 3, "train/loss": 1.0}' >> "$HARROW_METRICS"
                head -c 12000000 /dev/zero | tr '\\0' y >> "$HARROW_METRICS"
                """)
        try "name: flood\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let p = try start(["sweep", "exp.yaml"], in: dir)
        var peakKB = 0
        while p.isRunning {
            if let status = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
            {
                peakKB = max(peakKB, kb)
            }
            usleep(20_000)
        }
        #expect(p.terminationStatus == 0)
        #expect(peakKB > 0 && peakKB < 150_000, "harrow peaked at \(peakKB / 1024) MB")
        let run = try #require((try json(try Harrow.run("runs", "--json", in: dir)) as? [[String: Any]])?.first)
        let stdoutLog = (run["run_dir"] as! String) + "/stdout.log"
        #expect((try FileManager.default.attributesOfItem(atPath: stdoutLog)[.size] as? Int) == 1_000_000_000)
        let csv = try Harrow.run("export", "--format", "csv", in: dir).stdout
        #expect(csv.contains(",train/loss,1,2.0") && csv.contains(",train/loss,3,1.0"), "\(csv)")
        let show = try Harrow.run("show", run["id"] as! String, in: dir).stdout
        #expect(show.contains("2 malformed lines"), "\(show)")  // the 10 MB line, and 12 MB never ended by a newline
        _ = try checked(dir)
        try FileManager.default.removeItem(atPath: stdoutLog)
    }

    /// A trainer that leaves a child running (in its group, or in a session of its own) does not leave an
    /// orphan behind when its run ends.
    @Test func orphanedChildrenAreStopped() throws {
        let dir = try folder(
            trainer: """
                sleep 300 &
                echo $! > "$HARROW_RUN_DIR/child.pid"
                setsid sleep 300 &
                echo $! > "$HARROW_RUN_DIR/daemon.pid"
                echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
                """)
        try "name: orphans\nparameters: {x: 1}\ntrainer: {command: [./trainer.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        let run = try #require((try json(try Harrow.run("runs", "--json", in: dir)) as? [[String: Any]])?.first)
        for name in ["child", "daemon"] {
            let pid = try #require(
                Int32(
                    try String(contentsOfFile: (run["run_dir"] as! String) + "/\(name).pid", encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines)))
            // Gone within seconds, on a machine busy with the other fault tests (it is usually a few milliseconds).
            var gone = false
            for _ in 0..<500 where !gone {
                let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(
                    separator: " "
                ).first
                gone = state == nil || state == "Z"
                if !gone { usleep(20_000) }
            }
            #expect(gone, "the trainer's \(name) \(pid) outlived its run")
        }
    }

    /// Three sweeps and repeated reports on one store at once: no "database is locked", no lost write.
    @Test func threeSweepsAndReportsShareOneStore() throws {
        let dir = try folder(
            trainer: """
                i=1
                while [ $i -le 40 ]; do echo "{\\"step\\": $i, \\"train/loss\\": $i.$1, \\"val/loss\\": $i.5}" >> "$HARROW_METRICS"; i=$((i+1)); done
                """)
        for (i, name) in ["conc-a", "conc-b", "conc-c"].enumerated() {
            try
                "name: \(name)\nparameters: {x: {min: \(i * 100 + 1), max: \(i * 100 + 12)}}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\nresources: {parallel: 2}\n"
                .write(toFile: dir + "/\(name).yaml", atomically: true, encoding: .utf8)
        }
        let logs = (0..<3).map { dir + "/sweep-\($0).log" }
        let sweeps = try ["conc-a", "conc-b", "conc-c"].enumerated().map { i, name -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Harrow.binary)
            p.arguments = ["sweep", name + ".yaml"]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            FileManager.default.createFile(atPath: logs[i], contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: logs[i])
            p.standardError = p.standardOutput
            try p.run()
            return p
        }
        var reports = 0, reportErrors: [String] = []
        while sweeps.contains(where: \.isRunning) {
            let r = try Harrow.run("report", "--out", dir + "/report", in: dir)
            reports += 1
            // Before the first sweep has created the store (a loaded machine starts them slowly) there is nothing to report.
            if r.status != 0, !r.stderr.contains("no sweeps"), !r.stderr.contains("no store at") { reportErrors.append(r.stderr) }
        }
        for p in sweeps { p.waitUntilExit() }
        let output = try logs.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined(separator: "\n")
        #expect(sweeps.allSatisfy { $0.terminationStatus == 0 }, "\(output.suffix(800))")
        #expect(!output.contains("locked") && reportErrors.isEmpty, "\(reportErrors.first ?? output.suffix(800).description)")
        #expect(reports >= 2)
        let c = try checked(dir)
        #expect((c["runs"] as? [String: Int])?["succeeded"] == 36)
        #expect(c["points"] as? Int == 36 * 80)
    }

    /// Eight harrow processes creating one new store at once (imports: reads never create a store): one applies
    /// the migrations, the others wait, and the one run they all import is stored once.
    @Test func manyHarrowsOpeningANewStoreMigrateItOnce() throws {
        let run = Harrow.packageRoot + "/Tests/TrackingTests/Fixtures/wandb-run/run.wandb"
        for _ in 0..<5 {
            let dir = try Harrow.temporaryDirectory()
            let processes = try (0..<8).map { i -> Process in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: Harrow.binary)
                p.arguments = ["import", "wandb", run, "--db", dir + "/new.db"]
                FileManager.default.createFile(atPath: dir + "/\(i).log", contents: nil)
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle(forWritingAtPath: dir + "/\(i).log")
                try p.run()
                return p
            }
            for p in processes { p.waitUntilExit() }
            let errors = try (0..<8).map { try String(contentsOfFile: dir + "/\($0).log", encoding: .utf8) }.filter { !$0.isEmpty }
            #expect(processes.allSatisfy { $0.terminationStatus == 0 } && errors.isEmpty, "\(errors.first ?? "")")
            let listed = try Harrow.run(["runs", "--json", "--db", dir + "/new.db"])
            let imported = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any]
            #expect(listed.status == 0 && imported?.count == 1)
        }
    }

    /// Whether this machine lets the tests mount a small tmpfs (root with CAP_SYS_ADMIN).
    static let canMount: Bool = {
        guard getuid() == 0, let dir = try? Harrow.temporaryDirectory() else { return false }
        let ok = (try? sh("mount -t tmpfs -o size=1m tmpfs '\(dir)' && umount '\(dir)' && echo ok", in: "/")) == "ok"
        return ok
    }()

    /// The store's disk fills up while a trainer's metrics are ingested: a clear error, exit 1, a sound
    /// store, and once there is space again the same command finishes the sweep.
    @Test(.enabled(if: canMount)) func aFullDiskStopsTheSweepAndTheResumeContinues() throws {
        let dir = try folder(
            trainer: """
                i=1
                while [ $i -le 30000 ]; do echo "{\\"step\\": $i, \\"train/loss\\": $i.25}"; i=$((i+1)); done >> "$HARROW_METRICS"
                """)
        try "name: full\nparameters: {x: [1, 2, 3]}\ntrainer: {command: [./trainer.sh, \"{param.x}\"]}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/.harrow", withIntermediateDirectories: true)
        try sh("mount -t tmpfs -o size=2m tmpfs .harrow", in: dir)
        defer { _ = try? sh("umount .harrow", in: dir) }
        let full = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(full.status == 1)
        #expect(full.stdout.contains("stopped: the store cannot be written") && full.stdout.contains("disk is full"), "\(full.stdout)")
        try sh("mount -o remount,size=64m .harrow", in: dir)
        let check = try Harrow.run("check", in: dir)
        #expect(check.stdout.contains("integrity  ok"), "\(check.stdout)")
        let resumed = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr.suffix(500))")
        try everyRunSucceededOnce(dir, count: 3)
        #expect(try checked(dir)["points"] as? Int == 90_000)
    }
}
