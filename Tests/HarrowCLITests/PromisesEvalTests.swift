import Foundation
import Testing

/// Evaluation's promises against the real binary: `eval --checkpoint` (and `--adapter`) scores that folder with
/// harrow-train, `eval --timeout` stops a scorer that goes silent, and the starting model of two runs is scored
/// once. The harrow-train that harrow finds next to itself is a wrapper here: it records each call and answers
/// with the toy scorer (Tests/EvaluationTests/Fixtures/scorer.py), so what was scored, and how often, is known.
@Suite struct PromisesEvalTests {
    static let fixtures = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures"

    /// A folder with a copy of harrow in bin/ and, beside it, a harrow-train that appends its arguments to
    /// calls.log and answers `score` with the toy scorer.
    static func wrapped() throws -> (dir: String, harrow: String) {
        let dir = try Harrow.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Harrow.binary, toPath: dir + "/bin/harrow")
        chmod(dir + "/bin/harrow", 0o755)
        try """
        #!/bin/sh
        echo "$*" >> "\(dir)/calls.log"
        if [ "$1" = score ]; then shift; exec python3 "\(fixtures)/scorer.py" "$@"; fi
        echo "unexpected: harrow-train $*" >&2
        exit 3
        """.write(toFile: dir + "/bin/harrow-train", atomically: true, encoding: .utf8)
        chmod(dir + "/bin/harrow-train", 0o755)
        return (dir, dir + "/bin/harrow")
    }

    /// Runs an executable to its end (hang guard 60 s).
    static func run(_ executable: String, _ args: [String], in dir: String) throws -> Harrow.Result {
        let log = "run-\(UUID().uuidString)"
        let p = try Promise.start(args, in: dir, log: log, executable: executable)
        defer { Promise.stop(p) }
        try Promise.waitForExit(p)
        return Harrow.Result(
            status: p.terminationStatus, stdout: Promise.text("\(dir)/\(log).out"), stderr: Promise.text("\(dir)/\(log).err"))
    }

    static func total(_ r: Harrow.Result) throws -> Double {
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r.stdout)\(r.stderr)")
        return try #require(list.first?["total"] as? Double)
    }

    @Test func evalCheckpointScoresThatFolderWithHarrowTrain() throws {
        let (dir, harrow) = try Self.wrapped()
        defer { try? FileManager.default.removeItem(atPath: harrow) }  // a copy of the binary: not left in /tmp
        let checkpoint = dir + "/ck", adapter = dir + "/adapter"
        try FileManager.default.createDirectory(atPath: checkpoint, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try "1\n".write(toFile: checkpoint + "/flip", atomically: true, encoding: .utf8)  // the toy scorer answers two items the other way

        let r = try Self.run(harrow, ["eval", "--checkpoint", checkpoint, "--evalset", Self.fixtures + "/toy", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Promise.lines(dir + "/calls.log") == ["score --model \(checkpoint)"])
        // The same scores as the toy scorer run by hand on that folder, and not the unflipped model's 0.375.
        let byHand = try Harrow.run(
            [
                "eval", "--scorer", "python3 \(Self.fixtures)/scorer.py --model \(checkpoint)", "--evalset", Self.fixtures + "/toy",
                "--json"
            ], in: dir)
        #expect(byHand.status == 0)
        let total = try Self.total(r)
        #expect(total == (try Self.total(byHand)))
        #expect(total != 0.375)

        let withAdapter = try Self.run(
            harrow, ["eval", "--checkpoint", checkpoint, "--adapter", adapter, "--evalset", Self.fixtures + "/toy"], in: dir)
        #expect(withAdapter.status == 0, "\(withAdapter.stderr)")
        #expect(Promise.lines(dir + "/calls.log").last == "score --model \(checkpoint) --adapter \(adapter)")
        #expect(withAdapter.stdout.contains("weighted total"), "\(withAdapter.stdout)")
        // --adapter needs --checkpoint; scoring a folder needs no store and makes none.
        #expect(try Self.run(harrow, ["eval", "--adapter", adapter, "--evalset", Self.fixtures + "/toy"], in: dir).status == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow"))
    }

    @Test func evalTimeoutStopsAScorerThatGoesSilent() throws {
        let dir = try Harrow.temporaryDirectory()
        // Answers three requests, then holds its stdout open and says nothing more.
        try """
        #!/bin/sh
        head -n 3 | python3 "\(Self.fixtures)/scorer.py"
        exec sleep 120
        """.write(toFile: dir + "/silent.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/silent.sh", 0o755)
        let started = Date()
        let r = try Self.run(
            Harrow.binary, ["eval", "--scorer", dir + "/silent.sh", "--evalset", Self.fixtures + "/toy", "--timeout", "1"], in: dir)
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("answered 3 of") && r.stderr.contains("stopped after 1 s without an answer"), "\(r.stderr)")
        #expect(elapsed < 60, "the default timeout is 600 s; --timeout 1 stopped it after \(elapsed) s")
        #expect(
            try Harrow.run(["eval", "--scorer", dir + "/silent.sh", "--evalset", Self.fixtures + "/toy", "--timeout", "0"], in: dir).status
                == 2)
    }

    /// Two runs from one starting model: it is scored once, its score is the baseline of both, and evaluating a run
    /// again scores only that run. With one slot, and with two (both runs end, and are evaluated, at once).
    @Test(arguments: [1, 2]) func theStartingModelIsScoredOnce(parallel: Int) throws {
        let (dir, harrow) = try Self.wrapped()
        defer { try? FileManager.default.removeItem(atPath: harrow) }  // a copy of the binary: not left in /tmp
        let base = dir + "/base-model"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try Data("weights".utf8).write(to: URL(fileURLWithPath: base + "/model.safetensors"))
        try Harrow.writeFlipTrainer(in: dir)
        try """
        name: cached
        parameters: {flip: [0, 1], base_model: \(base)}
        trainer: {command: [./trainer.sh, "{param.flip}"]}
        eval: {evalsets: [\(Self.fixtures)/toy]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = try Self.run(harrow, ["sweep", "exp.yaml", "--parallel", String(parallel)], in: dir)
        #expect(sweep.status == 0, "\(sweep.stderr)")

        let calls = Promise.lines(dir + "/calls.log")
        #expect(calls.filter { $0.hasPrefix("score --model ") && $0.hasSuffix("/checkpoint") }.count == 2, "\(calls)")
        let once = {
            #expect(
                calls.filter { $0 == "score --model \(base)" }.count == 1,
                "the starting model was scored \(calls.filter { $0.hasSuffix(base) }.count) times: \(calls)")
            #expect(calls.count == 3, "\(calls)")
        }
        // With two slots evaluating at once, one scores the starting model and the other waits for it.
        once()

        // Its score (0.375: no flip file) is the baseline of both: gain = total − 0.375.
        let runs = try Promise.runs(dir)
        #expect(runs.count == 2)
        for run in runs {
            let scores = run["scores"] as? [String: Any] ?? [:]
            let total = try #require(scores["total"].flatMap(Promise.number), "\(run)")
            let gain = try #require(scores["gain"].flatMap(Promise.number), "no gain for \(run["id"] ?? ""): \(scores)")
            #expect(abs(gain - (total - 0.375)) < 1e-12)
        }
        // Evaluating a run again scores that run, not its starting model.
        let id = try #require(runs.first?["id"] as? String)
        let again = try Self.run(harrow, ["eval", id, "--evalset", Self.fixtures + "/toy"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        let after = Promise.lines(dir + "/calls.log")
        #expect(after.count == calls.count + 1 && after.last?.hasSuffix("/\(id)/checkpoint") == true, "\(after)")
        #expect(again.stdout.contains("starting model 0.375"), "\(again.stdout)")
    }
}
