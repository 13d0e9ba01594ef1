import Foundation
import Testing

/// A finished run is reused only when everything its result depends on matches: parameters, command,
/// code (commit and uncommitted changes), trainer and data. Otherwise the trial runs again and harrow says why.
@Suite struct TrialIdentityTests {
    static let trainer = """
        #!/bin/sh
        # version 1
        for s in 1 2 3; do echo "{\\"step\\": $s, \\"train/loss\\": $s.5}" >> "$HARROW_METRICS"; done
        """

    /// A git repository with a trainer script, a data file (untracked, like most datasets) and an experiment.
    func project(lrs: String = "[0.1, 0.2]") throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
        try "{\"text\": \"a\"}\n".write(toFile: dir + "/data.jsonl", atomically: true, encoding: .utf8)
        try experiment(name: "ident", lrs: lrs).write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        try ".harrow/\ndata.jsonl\n".write(toFile: dir + "/.gitignore", atomically: true, encoding: .utf8)
        try sh("git init -q -b main && git add -A && git commit -q -m one", in: dir)
        return dir
    }

    func experiment(name: String, lrs: String) -> String {
        """
        name: \(name)
        parameters: {lr: {values: \(lrs)}, dataset: {value: data.jsonl}}
        trainer: {command: [./trainer.sh]}
        """
    }

    func runs(_ dir: String, _ args: String...) throws -> [[String: Any]] {
        let r = try Harrow.run(["runs", "--json"] + args, in: dir)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    @Test func aCodeChangeRunsTheTrialAgainAndSaysWhy() throws {
        let dir = try project()
        let first = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let before = try runs(dir)
        #expect(before.count == 2)

        // Unchanged: skipped, silently.
        let again = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(again.stdout.contains("2 succeeded (2 finished before and skipped)"))
        #expect(!again.stderr.contains("runs again"))

        // Extending the grid in the (uncommitted) experiment file reruns nothing that finished.
        try experiment(name: "ident", lrs: "[0.1, 0.2, 0.3]").write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let extended = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(extended.stdout.contains("3 succeeded (2 finished before and skipped)"), "\(extended.stdout)\n\(extended.stderr)")
        #expect(!extended.stderr.contains("runs again"))

        // The trainer changes and is committed: every trial runs again, and harrow names the change.
        let old = try sh("git rev-parse --short=7 HEAD", in: dir)
        try sh(
            "git add exp.yaml && git commit -q -m grid && sed -i 's/version 1/version 2/' trainer.sh && git commit -qam trainer", in: dir)
        let new = try sh("git rev-parse --short=7 HEAD", in: dir)
        let changed = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(changed.status == 0)
        #expect(changed.stdout.contains("3 succeeded\n"), "\(changed.stdout)")
        let reasons = changed.stderr.split(separator: "\n").filter { $0.contains("runs again") }
        #expect(reasons.count == 3, "\(changed.stderr)")
        // The first two ran at the first commit; the third at the second (its exp.yaml change was not code).
        #expect(reasons.contains { $0.contains("code changed: commit \(old) → \(new) (exp.yaml, trainer.sh)") }, "\(reasons)")
        #expect(reasons.allSatisfy { $0.contains("trainer.sh") && $0.contains("(succeeded)") })

        // The old runs stay, each linked from the run that replaced it.
        let all = try runs(dir)
        #expect(all.count == 6)
        let oldIDs = Set(before.compactMap { $0["id"] as? String })
        let current = try runs(dir, "--sweep", "ident")
        #expect(current.count == 3 && current.allSatisfy { !oldIDs.contains($0["id"] as! String) })
        let linked = Set(current.compactMap { $0["earlier_run"] as? String })
        #expect(oldIDs.isSubset(of: linked))
        let show = try Harrow.run("show", current[0]["id"] as! String, in: dir)
        #expect(show.stdout.contains("earlier    run "), "\(show.stdout)")

        // An uncommitted edit counts too, by file.
        try sh("echo '# tweak' >> trainer.sh", in: dir)
        let dirty = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(dirty.stderr.contains("uncommitted changes to trainer.sh"), "\(dirty.stderr)")

        // --reuse params: the old rule, any finished run with the same parameters stands.
        try sh("echo '# again' >> trainer.sh", in: dir)
        let reused = try Harrow.run("sweep", "exp.yaml", "--reuse", "params", in: dir)
        #expect(reused.stdout.contains("3 succeeded (3 finished before and skipped)"), "\(reused.stdout)")
        #expect(!reused.stderr.contains("runs again"))
    }

    /// Outside git, a script run by an interpreter (`[sh, trainer.sh]`) is part of the identity as a trainer named by
    /// path is: editing it runs the trial again, naming the script.
    @Test func anEditedScriptRunByAnInterpreterRunsAgain() throws {
        let dir = try Harrow.temporaryDirectory()
        try Self.trainer.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        try "name: interp\nparameters: {lr: {value: 0.1}}\ntrainer: {command: [sh, trainer.sh]}\n"
            .write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).stdout.contains("1 succeeded (1 finished before and skipped)"))
        try Self.trainer.replacingOccurrences(of: "version 1", with: "version 2").write(
            toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        let edited = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(edited.stdout.contains("1 succeeded\n"), "\(edited.stdout)")
        #expect(edited.stderr.contains("program trainer.sh"), "\(edited.stderr)")
    }

    @Test func aDataChangeRunsTheTrialAgain() throws {
        let dir = try project(lrs: "[0.1]")
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        try "{\"text\": \"b\"}\n".write(toFile: dir + "/data.jsonl", atomically: true, encoding: .utf8)
        let r = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(r.stderr.contains("data changed: data.jsonl"), "\(r.stderr)")
        #expect(!r.stderr.contains("code changed"))
        #expect(try runs(dir).count == 2)
    }

    @Test func anotherSweepsRunsAreReusedVisibly() throws {
        let dir = try project()
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        try experiment(name: "ident-b", lrs: "[0.1, 0.2, 0.3]").write(toFile: dir + "/exp-b.yaml", atomically: true, encoding: .utf8)
        let b = try Harrow.run("sweep", "exp-b.yaml", in: dir)
        #expect(b.stdout.contains("2 reused from sweep ident"), "\(b.stdout)")
        #expect(b.stdout.contains("(reused from ident)"))

        // Each run belongs to the sweep that ran it; listing ident-b shows which came from ident.
        let listed = try runs(dir, "--sweep", "ident-b")
        #expect(listed.count == 3)
        #expect(listed.filter { $0["sweep"] as? String == "ident" }.count == 2)
        #expect(listed.filter { $0["sweep"] as? String == "ident-b" }.count == 1)
        #expect(try runs(dir, "--sweep", "ident").count == 2)
        let table = try Harrow.run("runs", "--sweep", "ident-b", in: dir).stdout
        #expect(table.components(separatedBy: "ident (reused)").count == 3, "\(table)")

        let sweeps = try Harrow.run("sweeps", "--json", in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(sweeps.stdout.utf8)) as? [[String: Any]])
        #expect(list.first { $0["name"] as? String == "ident-b" }?["reused"] as? Int == 2)
        #expect(list.first { $0["name"] as? String == "ident" }?["reused"] as? Int == 0)

        let report = try Harrow.run("report", "--sweep", "ident-b", "--out", dir + "/report", in: dir)
        #expect(report.status == 0, "\(report.stderr)")
        let index = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(index.contains("2 reused from sweep ident"))
    }
}
