import Foundation
import Testing

/// A night whose trials fail in different ways, each through a real subprocess: the sweep's footer, `runs --json`,
/// `sweeps`, `show` and the report say why.
@Suite struct FailureCauseCommandTests {
    static let trainer = """
        #!/bin/sh
        case "$1" in
          oom)
            echo '{"step": 1, "train/loss": 2.5}' >> "$HARROW_METRICS"
            echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free.' >&2
            exit 1 ;;
          import)
            printf 'Traceback (most recent call last):\\n  File "train.py", line 3, in <module>\\nModuleNotFoundError: No module named %s\\n' "'trl'" >&2
            exit 1 ;;
          diverge)
            echo '{"step": 1, "train/loss": 2.5}' >> "$HARROW_METRICS"
            echo '{"step": 2, "train/loss": NaN}' >> "$HARROW_METRICS"
            echo 'loss is nan, stopping' >&2
            exit 1 ;;
          ok)
            echo '{"step": 1, "train/loss": 2.5}' >> "$HARROW_METRICS" ;;
        esac
        """

    @Test func eachFailedTrialSaysWhy() throws {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        try """
        name: night
        parameters: {kind: {values: [oom, import, diverge, ok]}}
        trainer: {command: [./t.sh, "{param.kind}"]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 1)
        #expect(sweep.stdout.contains("why: 1 out of memory (GPU), 1 diverged, 1 crashed at start"), "\(sweep.stdout)")

        let out = try Harrow.run("runs", "--json", in: dir)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        var causes: [String: String] = [:]
        for r in runs {
            let kind = try #require((r["params"] as? [String: Any])?["kind"] as? String)
            causes[kind] = (r["failure"] as? [String: Any])?["cause"] as? String ?? "none"
        }
        #expect(causes == ["oom": "out_of_memory_gpu", "import": "crashed_at_start", "diverge": "diverged", "ok": "none"])
        let oom = try #require(runs.first { ($0["params"] as? [String: Any])?["kind"] as? String == "oom" })
        #expect(
            (oom["failure"] as? [String: Any])?["lines"] as? [String]
                == [
                    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free."
                ])

        let sweeps = try Harrow.run("sweeps", in: dir)
        #expect(sweeps.stdout.contains("night: 1 out of memory (GPU), 1 diverged, 1 crashed at start"), "\(sweeps.stdout)")
        let importRun = try #require(runs.first { ($0["params"] as? [String: Any])?["kind"] as? String == "import" }?["id"] as? String)
        let show = try Harrow.run("show", importRun, in: dir)
        #expect(
            show.stdout.contains(
                "failure    crashed at start\n  Traceback (most recent call last):\n  ModuleNotFoundError: No module named 'trl'"),
            "\(show.stdout)")

        let report = try Harrow.run("report", "--sweep", "night", "--out", "report", in: dir)
        #expect(report.status == 0, "\(report.stderr)")
        let index = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(index.contains("why: 1 out of memory (GPU), 1 diverged, 1 crashed at start"))
    }

    /// A trainer that runs out of memory above a micro-batch of 4 (PyTorch's message, read from its trial.json): the
    /// run goes again at 8, then 4, accumulating 2 then 4 steps, without using a retry, and succeeds; each attempt
    /// says what the next one changed.
    @Test func outOfMemoryRunsAgainAtHalfTheMicroBatch() throws {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        batch=$(sed 's/.*"batch_size": \\([0-9]*\\).*/\\1/' "$1")
        accum=$(sed -n 's/.*"grad_accum": \\([0-9]*\\).*/\\1/p' "$1")
        echo "batch $batch accum ${accum:-1}" >> "$HARROW_RUN_DIR/../seen.txt"
        if [ "$batch" -gt 4 ]; then
          echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate $((batch * 256)).00 MiB. GPU 0 has a total capacity of 7.79 GiB of which 310.00 MiB is free." >&2
          exit 1
        fi
        echo '{"step": 1, "train/loss": 2.0}' >> "$HARROW_METRICS"
        """.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        try "name: small\nparameters: {batch_size: {value: 16}}\ntrainer: {command: [./t.sh, \"{config}\"]}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 0, "\(sweep.stdout)\(sweep.stderr)")
        let seen = try String(contentsOfFile: dir + "/.harrow/runs/seen.txt", encoding: .utf8)
        #expect(seen == "batch 16 accum 1\nbatch 8 accum 2\nbatch 4 accum 4\n")
        #expect(sweep.stdout.contains("\n1 ran out of memory and finished at a smaller micro-batch"), "\(sweep.stdout)")
        let out = try Harrow.run("runs", "--json", in: dir)
        let run = try #require((try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(run["status"] as? String == "succeeded" && run["attempt"] as? Int == 3)
        // The run keeps its planned parameters: the same trial, run at a smaller micro-batch.
        #expect((run["params"] as? [String: Any])?["batch_size"] as? Int == 16)
        let show = try Harrow.run("show", run["id"] as! String, "--json", in: dir)
        let attempts = try #require(
            (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["attempts"] as? [[String: Any]])
        #expect(
            attempts.map { $0["note"] as? String } == [
                "out of memory (GPU): again at batch_size 16 → 8 and grad_accum 1 → 2 (the same 16 examples a step)",
                "out of memory (GPU): again at batch_size 8 → 4 and grad_accum 2 → 4 (the same 16 examples a step)",
                nil
            ])
    }

    /// A memory cgroup of `limit` bytes under this process's own (cgroup v1 or v2), where the kernel's OOM killer can
    /// end a child without touching anything else; nil where it cannot be made (not root, a read-only cgroup fs).
    static func memoryCgroup(limit: Int) -> String? {
        guard getuid() == 0, let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        var candidates: [(dir: String, limitFile: String)] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { continue }
            if parts[1].split(separator: ",").contains("memory") {
                candidates.append(("/sys/fs/cgroup/memory" + parts[2], "memory.limit_in_bytes"))
            }
            if parts[0] == "0", parts[1].isEmpty {
                for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] { candidates.append((root + parts[2], "memory.max")) }
            }
        }
        for c in candidates {
            let dir = (c.dir.hasSuffix("/") ? c.dir : c.dir + "/") + "harrow-oom-\(UUID().uuidString.prefix(8))"
            guard mkdir(dir, 0o755) == 0 else { continue }
            if (try? String(limit).write(toFile: dir + "/" + c.limitFile, atomically: false, encoding: .utf8)) != nil { return dir }
            rmdir(dir)
        }
        return nil
    }

    /// Trainers the kernel's OOM killer ends (real kills: in a 100 MiB memory cgroup each asks for 8 MiB per
    /// example). Their stderr is empty, only SIGKILL, yet each run is told out of memory (host) by the kernel's own
    /// count and log line; a trial with a micro-batch runs again at half of it, where it fits, and one without fails.
    @Test(.enabled(if: FailureCauseCommandTests.canMakeCgroup, "needs root and a writable memory cgroup"))
    func theKernelsOutOfMemoryKillerIsToldAndTheTrialShrinks() throws {
        let cgroup = try #require(Self.memoryCgroup(limit: 100 << 20))
        defer { rmdir(cgroup) }
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        examples=$(sed 's/.*"\\(batch_size\\|examples\\)": \\([0-9]*\\).*/\\2/' "$1")
        echo '{"step": 1, "train/loss": 2.0}' >> "$HARROW_METRICS"
        echo $$ > \(cgroup)/cgroup.procs
        exec python3 -c 'import sys; held = b"x" * (int(sys.argv[1]) << 23)' "$examples"
        """.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        for (name, parameter) in [("shrinks", "batch_size"), ("fails", "examples")] {
            try "name: \(name)\nparameters: {\(parameter): {value: 16}}\ntrainer: {command: [./t.sh, \"{config}\"]}\n"
                .write(toFile: dir + "/\(name).yaml", atomically: true, encoding: .utf8)
        }
        let shrinks = try Harrow.run("sweep", "shrinks.yaml", in: dir)
        #expect(shrinks.status == 0, "\(shrinks.stdout)\(shrinks.stderr)")
        let fails = try Harrow.run("sweep", "fails.yaml", in: dir)
        #expect(fails.status == 1 && fails.stdout.contains("why: 1 out of memory (host)"), "\(fails.stdout)\(fails.stderr)")
        let out = try Harrow.run("runs", "--json", in: dir)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        let shrunk = try #require(runs.first { ($0["params"] as? [String: Any])?["batch_size"] as? Int == 16 })
        #expect(shrunk["status"] as? String == "succeeded" && shrunk["attempt"] as? Int == 2)
        let show = try Harrow.run("show", shrunk["id"] as! String, "--json", in: dir)
        let attempts = try #require(
            (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["attempts"] as? [[String: Any]])
        #expect(
            attempts.first?["note"] as? String
                == "out of memory (host): again at batch_size 16 → 8 and grad_accum 1 → 2 (the same 16 examples a step)")
        #expect(attempts.first?["signal"] as? Int == 9)

        let failed = try #require(runs.first { $0["status"] as? String == "failed" })
        #expect(failed["signal"] as? Int == 9)
        let failure = try #require(failed["failure"] as? [String: Any])
        #expect(failure["cause"] as? String == "out_of_memory_host")
        let lines = (failure["lines"] as? [String] ?? []).joined(separator: "\n")
        #expect(lines.contains("the kernel's out-of-memory killer ended it: /proc/vmstat oom_kill rose"), "\(lines)")
        #expect(lines.contains("Memory cgroup out of memory: Killed process"), "\(lines)")
    }

    static let canMakeCgroup: Bool = {
        guard let dir = memoryCgroup(limit: 1 << 30) else { return false }
        rmdir(dir)
        return true
    }()

    /// `notify:` runs the user's command with JSON on its standard input: once for the first failure, once when the
    /// sweep ends. A notifier that fails is logged and changes nothing else.
    @Test func theNotifierIsToldOfTheFirstFailureAndTheEnd() throws {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        try """
        name: night
        parameters: {kind: {values: [import, ok, oom]}}
        resources: {parallel: 1}
        trainer: {command: [./t.sh, "{param.kind}"]}
        notify: {command: [sh, -c, "cat >> told.jsonl"], on: [failed_first, finished]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 1)
        let told = try String(contentsOfFile: dir + "/told.jsonl", encoding: .utf8)
        // jsonText pretty-prints: one object per notification, read as a stream of JSON values.
        let objects = try told.components(separatedBy: "\n}\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            .map { try #require(try JSONSerialization.jsonObject(with: Data(($0 + "}").utf8)) as? [String: Any]) }
        #expect(objects.map { $0["event"] as? String } == ["failed_first", "finished"])
        #expect((objects[0]["failure"] as? [String: Any])?["cause"] as? String == "crashed_at_start")
        #expect(objects[1]["counts"] as? [String: Int] == ["failed": 2, "succeeded": 1])
        #expect(objects[1]["failures"] as? [String: Int] == ["crashed_at_start": 1, "out_of_memory_gpu": 1])
        #expect(objects[1]["exit_code"] as? Int == 1)

        // A notifier that fails is logged; the sweep's outcome is its own.
        try (try String(contentsOfFile: dir + "/exp.yaml", encoding: .utf8))
            .replacingOccurrences(of: "cat >> told.jsonl", with: "echo no route to host >&2; exit 3")
            .replacingOccurrences(of: "values: [import, ok, oom]", with: "values: [ok]")
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let second = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("harrow: notify (finished): sh exited 3: no route to host"), "\(second.stderr)")
    }
}
