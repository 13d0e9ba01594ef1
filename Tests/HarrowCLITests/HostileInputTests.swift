import Foundation
import Testing

/// Names and strings from users stay where they belong: no folder escapes, no wildcard matches, no NUL cuts.
@Suite struct HostileInputTests {
    let trainer = "#!/bin/sh\necho '{\"step\": 1, \"train/loss\": 1.0}' >> \"$HARROW_METRICS\"\n"

    @Test func aSweepNamedToClimbOutWritesItsReportInsideReports() throws {
        let dir = try Harrow.temporaryDirectory()
        try trainer.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/t.sh", 0o755)
        for name in ["../../escape", "/etc/escape", ".."] {
            try "name: \"\(name)\"\nparameters: {x: 1}\ntrainer: {command: [./t.sh]}\n".write(
                toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
            #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
            let r = try Harrow.run("report", "--sweep", name, "--json", in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let index = try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["index"] as? String)
            let resolved = URL(fileURLWithPath: index, relativeTo: URL(fileURLWithPath: dir + "/")).standardized.path
            #expect(resolved.hasPrefix(URL(fileURLWithPath: dir + "/reports").standardized.path + "/"), "\(name) → \(resolved)")
        }
        #expect(!FileManager.default.fileExists(atPath: URL(fileURLWithPath: dir + "/../escape").standardized.path))
        #expect(!FileManager.default.fileExists(atPath: dir + "/index.html"))
    }

    @Test func runIdsAreLiteralPrefixesNotPatterns() throws {
        let dir = try Harrow.temporaryDirectory()
        try trainer.write(toFile: dir + "/t.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/t.sh", 0o755)
        try "name: ids\nparameters: {x: 1}\ntrainer: {command: [./t.sh]}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "exp.yaml", in: dir).status == 0)
        for pattern in ["%", "_", "________", "", "../x"] {
            let r = try Harrow.run("show", pattern, in: dir)
            #expect(r.status == 2 && r.stderr.contains("no run"), "'\(pattern)': \(r.stdout)")
        }
    }

    @Test func aNulByteInAnExperimentIsRefusedWhereItIsWritten() throws {
        let dir = try Harrow.temporaryDirectory()
        try "name: nul\nparameters:\n  dataset: {value: \"data.jsonl\\0../../etc/passwd\"}\n".write(
            toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let r = try Harrow.run("plan", "exp.yaml", in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("exp.yaml:3:") && r.stderr.contains("NUL byte"), "\(r.stderr)")
    }
}
