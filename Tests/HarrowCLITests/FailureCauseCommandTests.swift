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
        #expect((oom["failure"] as? [String: Any])?["lines"] as? [String]
                == ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.12 GiB is free."])

        let sweeps = try Harrow.run("sweeps", in: dir)
        #expect(sweeps.stdout.contains("night: 1 out of memory (GPU), 1 diverged, 1 crashed at start"), "\(sweeps.stdout)")
        let importRun = try #require(runs.first { ($0["params"] as? [String: Any])?["kind"] as? String == "import" }?["id"] as? String)
        let show = try Harrow.run("show", importRun, in: dir)
        #expect(show.stdout.contains("failure    crashed at start\n  Traceback (most recent call last):\n  ModuleNotFoundError: No module named 'trl'"), "\(show.stdout)")

        let report = try Harrow.run("report", "--sweep", "night", "--out", "report", in: dir)
        #expect(report.status == 0, "\(report.stderr)")
        let index = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(index.contains("why: 1 out of memory (GPU), 1 diverged, 1 crashed at start"))
    }
}
