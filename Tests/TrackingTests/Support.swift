import Foundation
@testable import Tracking

func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func temporaryStore() throws -> Store {
    try Store(path: try temporaryDirectory() + "/harrow.db")
}

/// A store with one sweep of `count` queued runs.
func storeWithRuns(_ count: Int, store: Store? = nil) throws -> (Store, [Run]) {
    let s = try store ?? temporaryStore()
    let trials = (0..<count).map { i in
        TrialRecord(identity: TrialIdentity(paramsKey: sha256Hex(Data("trial \(i)".utf8))), paramsJSON: "{\"i\": \(i)}", command: ["true"])
    }
    let runs = try s.register(sweep: "t", file: "t.yaml", method: "grid", spec: "", trials: trials, runsRoot: "/tmp/runs").runs
    return (s, runs)
}

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
    let data = out.fileHandleForReading.readDataToEndOfFile()  // before waiting: a full pipe would block the child
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
