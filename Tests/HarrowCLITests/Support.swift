import Foundation

/// Runs the built `harrow` binary as users do.
enum Harrow {
    static let packageRoot = #filePath.components(separatedBy: "/Tests/")[0]

    /// The built `harrow` next to the test bundle (any --scratch-path), or in the default build folder.
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("harrow").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot + "/.build/debug/harrow"
    }()

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: String..., in directory: String = packageRoot) throws -> Result {
        try run(args, in: directory)
    }

    static func run(_ args: [String], in directory: String = packageRoot, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        // Files, not pipes: a harrow that writes a lot to stderr cannot block on a pipe nobody reads yet.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-out-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: base + ".out", contents: nil)
        FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer { for ext in [".out", ".err"] { try? FileManager.default.removeItem(atPath: base + ext) } }
        p.standardOutput = FileHandle(forWritingAtPath: base + ".out")
        p.standardError = FileHandle(forWritingAtPath: base + ".err")
        try p.run()
        p.waitUntilExit()
        let o = FileManager.default.contents(atPath: base + ".out") ?? Data(),
            e = FileManager.default.contents(atPath: base + ".err") ?? Data()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A folder whose store holds two runs of a sweep, trained and evaluated by `harrow sweep`: flip 0 and flip 1
    /// (the toy scorer answers two items the other way for it).
    static func evaluatedPair(sweep: String) throws -> String {
        let fixtures = packageRoot + "/Tests/EvaluationTests/Fixtures"
        let dir = try temporaryDirectory()
        try writeFlipTrainer(in: dir)
        try """
        name: \(sweep)
        parameters: {flip: [0, 1]}
        trainer: {command: [./trainer.sh, "{param.flip}"]}
        eval:
          evalsets: [\(fixtures)/toy]
          scorer: [python3, \(fixtures)/scorer.py, --model, "{checkpoint}"]
        """.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let r = try run("sweep", "exp.yaml", in: dir)
        guard r.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "harrow sweep: \(r.stderr)"]) }
        return dir
    }

    /// `trainer.sh`: one train and one val point, and a checkpoint whose `flip` file holds its first argument (the toy
    /// scorer answers two items the other way for flip 1).
    static func writeFlipTrainer(in dir: String) throws {
        try """
        #!/bin/sh
        printf '%s\\n' '{"step": 1, "train/loss": 2.0}' '{"step": 1, "val/loss": 2.1}' >> "$HARROW_METRICS"
        mkdir -p "$HARROW_RUN_DIR/checkpoint" && echo "$1" > "$HARROW_RUN_DIR/checkpoint/flip"
        """.write(toFile: dir + "/trainer.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/trainer.sh", 0o755)
    }

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Runs a shell command (git with a fixed author) in a folder; returns its trimmed stdout.
@discardableResult
func sh(_ command: String, in dir: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    p.currentDirectoryURL = URL(fileURLWithPath: dir)
    p.environment = ProcessInfo.processInfo.environment.merging(
        ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"]) { $1 }
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
