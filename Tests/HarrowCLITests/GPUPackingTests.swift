import Foundation
import Testing

/// Trials packed onto GPUs by their memory estimates, through `CUDA_VISIBLE_DEVICES` (the cards are only numbers to
/// the runner, so no GPU is needed): how many share a card, several cards to a trial, and a trial too big for one.
@Suite(.serialized) struct GPUPackingTests {
    /// A Llama-shaped model small enough to estimate by hand: about 0.50 GiB for a CUDA trainer, nearly all of it the
    /// stated CUDA context (512 MiB) and allocator slack.
    static let config =
        #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100}"#

    /// Each trial logs when it starts and ends on which cards.
    static let trainer = """
        #!/bin/sh
        echo "start $CUDA_VISIBLE_DEVICES" >> "$HARROW_RUN_DIR/../cards.log"
        sleep 0.4
        echo "end $CUDA_VISIBLE_DEVICES" >> "$HARROW_RUN_DIR/../cards.log"
        echo '{"step": 1, "train/loss": 1.0}' >> "$HARROW_METRICS"
        """

    func folder(resources: String, trials: Int) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/tiny", withIntermediateDirectories: true)
        try Self.config.write(toFile: dir + "/tiny/config.json", atomically: true, encoding: .utf8)
        try Self.trainer.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        try """
        name: packed
        parameters:
          base_model: {value: tiny}
          seed: {values: [\((1...trials).map(String.init).joined(separator: ", "))]}
          batch_size: {value: 2}
          max_seq_len: {value: 16}
        resources: \(resources)
        trainer: {command: [./t.sh]}
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// The most trials at once on each card set, from the log's order (appends of one short line are atomic).
    func peaks(_ dir: String) throws -> [String: Int] {
        let log = try String(contentsOfFile: dir + "/.harrow/runs/cards.log", encoding: .utf8)
        var now: [String: Int] = [:], peak: [String: Int] = [:]
        for line in log.split(separator: "\n") {
            let parts = line.split(separator: " ")
            let cards = parts.count > 1 ? String(parts[1]) : "none"
            for card in cards.split(separator: ",").map(String.init) {
                now[card, default: 0] += parts[0] == "start" ? 1 : -1
                peak[card] = max(peak[card] ?? 0, now[card]!)
            }
        }
        return peak
    }

    @Test func trialsShareACardWhileTheirEstimatesFit() throws {
        // 2 GiB cards less a tenth hold three trials of about 0.50 GiB each, never four.
        let dir = try folder(resources: "{gpus: [0, 1], gpu_memory: 2GB}", trials: 8)
        let plan = try Harrow.run("plan", "exp.yaml", "--json", in: dir)
        let trials = try #require(
            (try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["trials"] as? [[String: Any]])
        let need = try #require((trials[0]["memory"] as? [String: Any])?["total_bytes"] as? Int)
        #expect(3 * need <= Int(0.9 * 2 * 1_073_741_824) && 4 * need > Int(0.9 * 2 * 1_073_741_824), "estimate \(need) B")
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 0, "\(sweep.stdout)\(sweep.stderr)")
        let peak = try peaks(dir)
        // Eight slots start at once and fill card 0 before card 1 (the fullest card that fits first).
        #expect(Set(peak.keys) == ["0", "1"], "\(peak)")
        #expect(peak.values.allSatisfy { $0 <= 3 }, "\(peak)")
    }

    @Test func aTrialTakesSeveralCards() throws {
        let dir = try folder(resources: "{gpus: [0, 1, 2, 3], gpus_per_trial: 2}", trials: 4)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 0, "\(sweep.stdout)\(sweep.stderr)")
        let log = try String(contentsOfFile: dir + "/.harrow/runs/cards.log", encoding: .utf8)
        let sets = Set(log.split(separator: "\n").map { String($0.split(separator: " ")[1]) })
        #expect(
            sets.isSubset(of: ["0,1", "2,3", "0,2", "0,3", "1,2", "1,3"]) && sets.allSatisfy { $0.split(separator: ",").count == 2 },
            "\(sets)")
        // Without a card size each trial has its cards to itself.
        #expect(try peaks(dir).values.allSatisfy { $0 == 1 })
    }

    @Test func aTrialTooBigForACardFailsWithoutStarting() throws {
        let dir = try folder(resources: "{gpus: [0], gpu_memory: 512MB}", trials: 1)
        let sweep = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(sweep.status == 1)
        #expect(
            sweep.stdout.contains(
                "by its memory estimate (`harrow plan --memory`); a card has 0.45 GiB (gpu_memory less a tenth): not started"),
            "\(sweep.stdout)")
        #expect(sweep.stdout.contains("why: 1 out of memory (GPU)"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/.harrow/runs/cards.log"), "the trainer never ran")
    }

    /// Ctrl-C while trials wait for a card: the one running is interrupted, and those waiting never start (they stay
    /// queued for the next sweep) rather than starting once the card frees only to be stopped.
    @Test func trialsWaitingForACardDoNotStartAfterCtrlC() throws {
        // 1 GB less a tenth holds one trial of about 0.50 GiB: the other two wait for it.
        let dir = try folder(resources: "{gpus: [0], gpu_memory: 1GB}", trials: 3)
        try "#!/bin/sh\necho \"start $CUDA_VISIBLE_DEVICES\" >> \"$HARROW_RUN_DIR/../cards.log\"\nexec sleep 30\n"
            .write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/t.sh")
        let sweep = Process()
        sweep.executableURL = URL(fileURLWithPath: Harrow.binary)
        sweep.arguments = ["sweep", "exp.yaml"]
        sweep.currentDirectoryURL = URL(fileURLWithPath: dir)
        sweep.standardOutput = FileHandle.nullDevice
        sweep.standardError = FileHandle.nullDevice
        try sweep.run()
        let log = dir + "/.harrow/runs/cards.log"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: log), Date() < deadline { usleep(50_000) }
        kill(sweep.processIdentifier, SIGINT)
        sweep.waitUntilExit()
        #expect(sweep.terminationStatus == 130)
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "start 0\n", "only the first trial ever started")
        let runs = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("runs", "--json", in: dir).stdout.utf8)) as? [[String: Any]])
        #expect(runs.compactMap { $0["status"] as? String }.sorted() == ["interrupted", "queued", "queued"])
    }

    @Test func aCardSizeGoesWithCards() throws {
        let dir = try Harrow.temporaryDirectory()
        try "name: e\nparameters: {x: {value: 1}}\nresources: {parallel: 2, gpu_memory: 80GB}\n".write(
            toFile: dir + "/e.yaml", atomically: true, encoding: .utf8)
        let plan = try Harrow.run("plan", "e.yaml", in: dir)
        #expect(plan.status == 2)
        #expect(plan.stderr.contains("`gpu_memory` and `gpus_per_trial` go with `gpus: [...]`"), "\(plan.stderr)")
        try "name: e\nparameters: {x: {value: 1}}\nresources: {gpus: [0], gpus_per_trial: 2}\n".write(
            toFile: dir + "/e.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("plan", "e.yaml", in: dir).stderr.contains("`gpus_per_trial` is 2, but only 1 GPUs are listed"))
    }
}
