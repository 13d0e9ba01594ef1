import Foundation
import Testing

/// `harrow sweep` as a real process, interrupted and restarted: nothing finished is redone, nothing recorded is
/// lost. (Harrow killed at random moments: FaultTests.)
@Suite(.serialized) struct SweepResumeTests {
    /// 20 metric lines, 30 ms apart.
    static let trainer = """
        #!/bin/sh
        i=1
        while [ $i -le 20 ]; do
          echo "{\\"step\\": $i, \\"train/loss\\": $i.5}" >> "$HARROW_METRICS"
          i=$((i+1))
          sleep 0.03
        done
        """

    func setUp(trials: Int) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try """
        name: resume
        parameters: {x: {min: 1, max: \(trials)}}
        trainer: {command: [./trainer.sh]}
        resources: {parallel: 2}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// Starts `harrow sweep`; its stderr goes to harrow-N.log in the folder, so a failure can say what harrow said.
    func start(in dir: String, round: Int = 0) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harrow.binary)
        p.arguments = ["sweep", "exp.yaml"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: "\(dir)/harrow-\(round).log", contents: nil)
        p.standardError = FileHandle(forWritingAtPath: "\(dir)/harrow-\(round).log")
        try p.run()
        return p
    }

    /// Every run succeeded once, and its curve is exactly steps 1…20.
    func verify(_ dir: String, trials: Int) throws {
        let runs = try Harrow.run("runs", "--json", in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == trials)
        #expect(list.allSatisfy { $0["status"] as? String == "succeeded" })
        let csv = try Harrow.run("export", "--format", "csv", in: dir).stdout
        var steps: [String: [Int]] = [:]
        for line in csv.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            guard f[3] == "train/loss" else { continue }
            steps[String(f[0]), default: []].append(Int(f[4])!)
        }
        #expect(steps.count == trials)
        for (run, s) in steps { #expect(s == Array(1...20), "run \(run) has steps \(s)") }
        for item in list {
            let show = try Harrow.run("show", item["id"] as! String, "--json", in: dir)
            let attempts = try #require(
                (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["attempts"] as? [[String: Any]])
            #expect(attempts.filter { $0["status"] as? String == "succeeded" }.count == 1)
            #expect(attempts.last?["status"] as? String == "succeeded")
        }
    }

    @Test func ctrlCInterruptsAndTheNextRunFinishes() throws {
        let dir = try setUp(trials: 4)
        let p = try start(in: dir)
        // Ctrl-C once a trainer is writing: before that, harrow may not have installed its handler yet
        // (a busy machine can take seconds to start it), and SIGINT would end it by the default action.
        let runsDir = dir + "/.harrow/runs"
        for _ in 0..<600 {
            let runs = (try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []
            if runs.contains(where: { FileManager.default.fileExists(atPath: "\(runsDir)/\($0)/metrics.jsonl") }) { break }
            usleep(20_000)
        }
        usleep(100_000)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        let runs = try Harrow.run("runs", "--status", "interrupted", "--json", in: dir)
        let interrupted = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(!interrupted.isEmpty)
        let finish = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(finish.status == 0)
        try verify(dir, trials: 4)
    }
}
