import Foundation
import Subprocess
import SystemPackage

/// JSON lines with a process over its stdin and stdout (the score and judge protocols): requests are written while
/// answers are read, with a bounded window in flight, so neither pipe fills up and blocks the other side. A process
/// that goes silent is stopped after `idleTimeout`, one still running `exitGrace` after the exchange is killed with
/// its process group, and a line that is not an answer ends the exchange with an error quoting it.
struct LineExchange: Sendable {
    var argv: [String]
    var window: Int
    var idleTimeout: Double
    var exitGrace: Double
    /// "scorer" or "judge", for messages.
    var role: String

    /// Sends `requests` (one JSON line each, ids 0..<count) and returns the answer to each, in request order.
    func run<Answer: Sendable>(
        _ requests: [String], environment: [String: String], parse: @escaping @Sendable (String) throws -> (Int, Answer)
    ) async throws -> [Answer] {
        guard !argv.isEmpty else { throw ScorerError("no \(role) command") }
        // A scorer that dies leaves a closed pipe: a write must fail with EPIPE, not kill harrow.
        signal(SIGPIPE, SIG_IGN)
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-\(role)-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: stderrPath) }
        let errFD = try FileDescriptor.open(FilePath(stderrPath), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        var env: [Environment.Key: String?] = [:]
        for (k, v) in environment { env[Environment.Key(stringLiteral: k)] = v }
        let executable: Executable = argv[0].contains("/") ? .path(FilePath(argv[0])) : .name(argv[0])
        let lines = requests.map { $0 + "\n" }
        let gate = Window(size: window)
        let clock = AnswerClock()
        // Its own process group, so a wrapper's children (a shell around python) are stopped with it: a
        // child left holding stdout open would keep the exchange from ever ending.
        var platform = PlatformOptions()
        platform.processGroupID = 0
        let grace = exitGrace
        var reaper: Task<Void, Never>?
        defer { reaper?.cancel() }
        let result = try await Subprocess.run(
            executable, arguments: Arguments(Array(argv.dropFirst())), environment: .inherit.updating(env),
            platformOptions: platform, input: .inputWriter, output: .sequence,
            error: .fileDescriptor(errFD, closeAfterSpawningProcess: true)
        ) { execution in
            // Ends the exchange: the writer stops waiting for room in the window and the scorer is stopped.
            @Sendable func stop() async {
                await gate.close()
                try? execution.send(signal: .kill, toProcessGroup: true)
            }
            defer {
                // After the exchange harrow waits for the scorer to exit; one that ignores the end of its
                // input is killed after the grace period instead of holding the evaluation forever.
                reaper = Task {
                    guard (try? await Task.sleep(for: .seconds(grace))) != nil else { return }
                    try? execution.send(signal: .kill, toProcessGroup: true)
                }
            }
            return try await withThrowingTaskGroup(of: [Int: Answer]?.self) { group in
                let writer = execution.standardInputWriter
                group.addTask {
                    do {
                        for line in lines {
                            guard await gate.acquire() else { break }
                            _ = try await writer.write(line)
                        }
                        try await writer.finish()
                    } catch {
                        // The scorer stopped reading; the missing answers and its stderr say why.
                    }
                    return nil
                }
                group.addTask {
                    var answers: [Int: Answer] = [:]
                    do {
                        for try await line in execution.standardOutput.strings() {
                            for part in line.split(separator: "\n") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
                                let (id, response) = try parse(String(part))
                                answers[id] = response
                                await clock.answered()
                                await gate.release()
                            }
                            if answers.count == lines.count { break }
                        }
                    } catch {
                        // An answer harrow cannot read ends the exchange (the scorer may be waiting for more
                        // requests, the writer for room in the window).
                        await stop()
                        throw error
                    }
                    await gate.close()
                    return answers
                }
                // A scorer that goes silent is stopped: its stdout then ends and the answers so far come back.
                let idle = idleTimeout
                group.addTask {
                    let tick = min(1.0, idle / 4)
                    while await clock.silence() < idle {
                        do { try await Task.sleep(for: .seconds(tick)) } catch { return nil }
                    }
                    await clock.timedOut()
                    await stop()
                    return nil
                }
                var answers: [Int: Answer] = [:]
                for try await partial in group {
                    if let partial { answers = partial; group.cancelAll() }
                }
                return answers
            }
        }
        let answers = result.closureResult
        guard answers.count == requests.count else {
            let tail =
                (try? String(contentsOfFile: stderrPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            let silent = await clock.didTimeOut ? "; stopped after \(String(format: "%g", idleTimeout)) s without an answer" : ""
            throw ScorerError(
                "the \(role) \(argv[0]) answered \(answers.count) of \(requests.count) requests (\(result.terminationStatus))\(silent)"
                    + (tail.isEmpty ? "" : ":\n" + tail))
        }
        return (0..<requests.count).map { answers[$0]! }
    }

}
