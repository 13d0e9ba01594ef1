import Foundation
import Testing

/// What someone new to harrow meets first: typos, empty answers, sorting, telling runs apart, naming them.
/// Each test runs the built binary on a small store made by a real sweep.
@Suite(.serialized) struct NewcomerTests {
    /// Six runs of sweep `demo`: lr × lora_r varying, three parameters fixed; lr 0.003 overfits (val loss min 1.95
    /// at step 1), the others reach 1.6 at step 4. Each run keeps a final checkpoint.
    func demo() throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try """
        #!/bin/sh
        for s in 1 2 3 4; do
          v=$(awk -v s=$s -v lr=$1 'BEGIN{print 2.0 - s*0.1 + (lr>0.001 ? s*s*0.05 : 0)}')
          printf '{"step": %d, "train/loss": %s}\\n{"step": %d, "val/loss": %s}\\n' $s $v $s $v >> "$HARROW_METRICS"
        done
        mkdir -p "$HARROW_RUN_DIR/checkpoint"
        echo "trained lr=$1"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try """
        name: demo
        parameters:
          lr: [0.0001, 0.0003, 0.003]
          lora_r: [8, 16]
          base_model: {value: chat}
          batch_size: {value: 16}
          dataset: {value: datasets/domain/train.jsonl}
        trainer: {command: [./trainer.sh, "{param.lr}", "{param.lora_r}"]}
        """.write(toFile: dir + "/demo.yaml", atomically: true, encoding: .utf8)
        let r = try Harrow.run("sweep", "demo.yaml", "--parallel", "2", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    func runs(_ dir: String, _ args: String...) throws -> [[String: Any]] {
        let r = try Harrow.run(["runs", "--json"] + args, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    /// Table rows below the rule line, split into cells.
    func rows(_ table: String) -> [[String]] {
        let lines = table.split(separator: "\n").map(String.init)
        guard let rule = lines.firstIndex(where: { $0.hasPrefix("──") }) else { return [] }
        return lines[(rule + 1)...].map { $0.split(separator: " ").map(String.init) }
    }

    @Test func unknownSweepsSortKeysAndStatusesAreUsageErrorsAndEmptyAnswersNameTheStore() throws {
        let dir = try demo()
        let sweep = try Harrow.run("runs", "--sweep", "demoo", in: dir)
        #expect(
            sweep.status == 2 && sweep.stderr.contains("did you mean 'demo'?") && sweep.stderr.contains(".harrow/harrow.db"),
            "\(sweep.status) \(sweep.stdout)\(sweep.stderr)")
        #expect(try Harrow.run("export", "--sweep", "demoo", in: dir).status == 2)

        let sort = try Harrow.run("runs", "--sort", "val/los", in: dir)
        #expect(sort.status == 2 && sort.stderr.contains("did you mean 'val/loss'?"), "\(sort.status) \(sort.stdout)\(sort.stderr)")
        let descending = try Harrow.run("runs", "--sort", "-helpfull", in: dir)
        #expect(descending.status == 2 && descending.stderr.contains("did you mean '-helpful'?"), "\(descending.stderr)")

        let status = try Harrow.run("runs", "--status", "faild", in: dir)
        #expect(status.status == 2 && status.stderr.contains("did you mean 'failed'?"), "\(status.status) \(status.stderr)")
        #expect(status.stderr.contains("Usage: harrow runs "), "\(status.stderr)")
        #expect(try Harrow.run("runs", "--limit", "0", in: dir).status == 2)

        // A filter that matches nothing says which store and which filter.
        let none = try Harrow.run("runs", "--sweep", "demo", "--status", "failed", in: dir)
        #expect(none.status == 0)
        #expect(none.stdout.contains(".harrow/harrow.db") && none.stdout.contains("--status failed"), "\(none.stdout)")
    }

    @Test func runsShowsTheParametersThatVaryAsColumns() throws {
        let dir = try demo()
        let table = try Harrow.run("runs", in: dir).stdout
        let header = try #require(table.split(separator: "\n").first { $0.hasPrefix("run ") }).split(separator: " ").map(String.init)
        #expect(header.contains("lr") && header.contains("lora_r"), "\(table)")
        #expect(!header.contains("params") && !header.contains("base_model"), "\(table)")
        #expect(table.contains("fixed: base_model=chat  batch_size=16  dataset=datasets/domain/train.jsonl"), "\(table)")
        #expect(rows(table).count == 6)
        #expect(!table.contains("base_model=chat batch_size=16"), "the fixed parameters are on every row: \(table)")
        // Among the runs listed: with lora_r 8 only, lora_r is fixed.
        let narrowed = try Harrow.run("runs", "--sort", "lora_r", "--limit", "3", in: dir).stdout
        #expect(narrowed.contains("lora_r=8"), "\(narrowed)")
    }

    @Test func sortTakesMinusNameAndSortsByTheValueItShows() throws {
        let dir = try demo()
        // `--sort -val/loss` (a separate word starting with -) is the sort key, not an unknown option.
        let r = try Harrow.run("runs", "--sort", "-val/loss", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let header = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("run ") })
        #expect(header.contains("val/loss min"))
        // Largest min first: the two lr 0.003 runs (1.95), then the others (1.6), as the column shows.
        let shown = rows(r.stdout)
        #expect(shown.prefix(2).allSatisfy { $0.contains("0.003") && $0.contains("1.95") }, "\(r.stdout)")
        #expect(shown.dropFirst(2).allSatisfy { $0.contains("1.6") }, "\(r.stdout)")
        let mins = try runs(dir, "--sort", "-val/loss").map {
            (($0["metrics"] as? [String: Any])?["val/loss"] as? [String: Any])?["min"] as? Double ?? .nan
        }
        #expect(mins == mins.sorted(by: >), "\(mins)")
        #expect(
            try runs(dir, "--sort=-val/loss").map { $0["id"] as! String }
                == (try runs(dir, "--sort", "-val/loss").map { $0["id"] as! String }))

        // A named value (as gates name them) and a parameter sort too, and add their column.
        let best = try Harrow.run("runs", "--sort", "-val_loss_best", in: dir)
        #expect(best.status == 0 && best.stdout.contains("val_loss_best"), "\(best.stdout)\(best.stderr)")
        let lr = try runs(dir, "--sort", "-lr").map { ($0["params"] as? [String: Any])?["lr"] as? Double ?? 0 }
        #expect(lr == [0.003, 0.003, 0.0003, 0.0003, 0.0001, 0.0001], "\(lr)")
        // A value no run has yet lists every run, not "no runs match".
        let helpful = try Harrow.run("runs", "--sort", "helpful", in: dir)
        #expect(helpful.status == 0 && rows(helpful.stdout).count == 6, "\(helpful.stdout)\(helpful.stderr)")
        // A metric whose shown value is not the sorted one gets its own column: train/loss shows the last point.
        let train = try Harrow.run("runs", "--sort", "train/loss", in: dir).stdout
        #expect(train.contains("train/loss min"), "\(train)")
    }

    /// `--sort -helpful` on evaluated runs: the most helpful first, with the value in a column.
    @Test func sortByANamedScore() throws {
        let dir = try Harrow.evaluatedPair(sweep: "scored")
        let listed = try runs(dir, "--sort", "-helpful")
        let helpful = listed.map { ($0["scores"] as? [String: Any])?["helpful"] as? Double ?? -1 }
        #expect(helpful.count == 2 && helpful == helpful.sorted(by: >) && helpful.allSatisfy { $0 >= 0 }, "\(helpful)")
        let table = try Harrow.run("runs", "--sort", "-helpful", in: dir).stdout
        #expect(table.split(separator: "\n").first { $0.hasPrefix("run ") }?.hasSuffix("helpful") == true, "\(table)")
        // `show` prints the scores `--json` has.
        let show = try Harrow.run("show", listed[0]["id"] as! String, in: dir).stdout
        #expect(show.contains("scores     ") && show.contains("helpful "), "\(show)")
    }

    @Test func usageErrorsExitTwoWithTheCommandsOwnUsage() throws {
        let dir = try Harrow.temporaryDirectory()
        let typo = try Harrow.run("rnus", in: dir)
        #expect(typo.status == 2 && typo.stderr.contains("did you mean 'runs'?"), "\(typo.status) \(typo.stderr)")
        let diagnose = try Harrow.run("diagnoze", "--sweep", "demo", in: dir)
        #expect(diagnose.status == 2 && diagnose.stderr.contains("did you mean 'diagnose'?"), "\(diagnose.stderr)")
        #expect(!diagnose.stderr.contains("Unknown option"), "\(diagnose.stderr)")
        let format = try Harrow.run("export", "--format", "parquet", in: dir)
        #expect(format.status == 2 && format.stderr.contains("Usage: harrow export"), "\(format.status) \(format.stderr)")
        let status = try Harrow.run("runs", "--status", "faild", in: dir)
        #expect(
            status.status == 2 && status.stderr.contains("Usage: harrow runs") && !status.stderr.contains("harrow <subcommand>"),
            "\(status.stderr)")
        #expect(try Harrow.run("runs", "--bogus", in: dir).status == 2)
        #expect(try Harrow.run("--help", in: dir).status == 0)
    }

    @Test func everyHelpNamesItsExitStatuses() throws {
        let names = [
            "plan", "sweep", "sweeps", "runs", "show", "logs", "export", "import", "diagnose", "eval", "ablation", "gate",
            "compare", "report", "tag", "untag", "check"
        ]
        for name in names {
            let help = try Harrow.run(name, "--help")
            #expect(help.status == 0, "\(name)")
            #expect(help.stdout.contains("EXIT STATUS") || help.stdout.contains("Exit status"), "\(name): \(help.stdout)")
        }
        #expect(try Harrow.run("help", "runs").stdout.contains("EXIT STATUS"))
    }

    @Test func tagRefusesNamesThatHideRunsAndListsARunsTags() throws {
        let dir = try demo()
        let ids = try runs(dir).map { $0["id"] as! String }
        let (a, b) = (ids[0], ids[1])
        let prefix = String(b.prefix(4))
        let hiding = try Harrow.run("tag", a, prefix, in: dir)
        #expect(hiding.status == 2 && hiding.stderr.contains(b), "\(hiding.status) \(hiding.stderr)")
        #expect(try Harrow.run("tag", a, b, in: dir).status == 2)
        // `show PREFIX` still finds the other run.
        #expect(try Harrow.run("show", prefix, in: dir).stdout.hasPrefix("run \(b)"))

        let none = try Harrow.run("tag", a, in: dir)
        #expect(none.status == 0 && none.stdout.contains("run \(a) has no tags"), "\(none.stdout)")
        #expect(try Harrow.run("tag", a, "production", in: dir).status == 0)
        #expect(try Harrow.run("tag", b, "candidate", in: dir).status == 0)
        let own = try Harrow.run("tag", a, in: dir).stdout
        #expect(own.contains("production") && !own.contains("candidate"), "\(own)")
    }

    @Test func sweepsPrintsISODates() throws {
        let dir = try demo()
        let table = try Harrow.run("sweeps", in: dir).stdout
        #expect(table.range(of: #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"#, options: .regularExpression) != nil, "\(table)")
        #expect(!table.contains("/"), "\(table)")
    }

    @Test func showTakesThePlanKeyAndLabelsBothKeys() throws {
        let dir = try demo()
        let plan = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("plan", "demo.yaml", "--json", in: dir).stdout.utf8)) as? [String: Any])
        let first = try #require((plan["trials"] as? [[String: Any]])?.first)
        let key = String((first["key"] as! String).prefix(12))
        let show = try Harrow.run("show", key, in: dir)
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("params key   \(key)"), "\(show.stdout)")
        #expect(show.stdout.contains("identity key "), "\(show.stdout)")
        #expect(!show.stdout.contains("trial key"), "\(show.stdout)")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("show", key, "--json", in: dir).stdout.utf8)) as? [String: Any])
        #expect((json["params_key"] as? String)?.hasPrefix(key) == true)
        #expect((json["params"] as? [String: Any])?["lr"] as? Double == 0.0001)
        #expect(try Harrow.run("show", "0000000000ff", in: dir).status == 2)
    }

    @Test func showPrintsVerdictCommandAndCheckpoints() throws {
        let dir = try demo()
        let id = try runs(dir, "--sort", "-val/loss")[0]["id"] as! String
        let show = try Harrow.run("show", id, in: dir).stdout
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(Harrow.run("show", id, "--json", in: dir).stdout.utf8)) as? [String: Any])
        let verdict = try #require((json["verdict"] as? [String: Any])?["verdict"] as? String)
        #expect(show.contains("verdict    \(verdict)"), "\(show)")
        #expect(show.contains("command    ./trainer.sh "), "\(show)")
        #expect(show.contains("checkpoint final \(dir)"), "\(show)")
        #expect(show.range(of: #"time       \d{4}-\d{2}-\d{2}T"#, options: .regularExpression) != nil, "\(show)")
    }

    /// A run still queued behind a trainer that waits: `logs` says it has not started.
    @Test func logsSaysARunHasNotStarted() throws {
        let dir = try Harrow.temporaryDirectory()
        try "#!/bin/sh\nwhile [ ! -f \"$PWD/go\" ]; do sleep 0.05; done\necho done\n".write(
            toFile: dir + "/wait.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/wait.sh", 0o755)
        try "name: waits\nparameters: {x: [1, 2]}\ntrainer: {command: [./wait.sh], timeout: 2m}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let sweep = Process()
        sweep.executableURL = URL(fileURLWithPath: Harrow.binary)
        sweep.arguments = ["sweep", "exp.yaml", "--parallel", "1"]
        sweep.currentDirectoryURL = URL(fileURLWithPath: dir)
        sweep.standardOutput = FileHandle.nullDevice
        sweep.standardError = FileHandle.nullDevice
        try sweep.run()
        defer {
            FileManager.default.createFile(atPath: dir + "/go", contents: nil)
            sweep.waitUntilExit()
        }
        var queued: String?
        for _ in 0..<200 where queued == nil {
            let listed =
                (try? JSONSerialization.jsonObject(with: Data(Harrow.run("runs", "--json", in: dir).stdout.utf8))) as? [[String: Any]] ?? []
            if listed.contains(where: { $0["status"] as? String == "running" }) {
                queued = listed.first { $0["status"] as? String == "queued" }?["id"] as? String
            }
            if queued == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        let id = try #require(queued)
        let logs = try Harrow.run("logs", id, in: dir)
        #expect(logs.status == 0)
        #expect(logs.stderr.contains("run \(id) has not started; no logs yet"), "\(logs.stdout)\(logs.stderr)")
    }
}
