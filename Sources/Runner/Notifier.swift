import Foundation
import Sweep

/// Runs an experiment's `notify` command with a JSON summary on its standard input, bounded by its timeout. A
/// notifier that fails, hangs or cannot start is reported through `log`, never thrown: the night goes on.
public final class Notifier: @unchecked Sendable {
    let rule: NotifyRule
    let workingDirectory: String
    let log: @Sendable (String) -> Void
    private let pending = DispatchGroup()

    public init(rule: NotifyRule, workingDirectory: String, log: @escaping @Sendable (String) -> Void) {
        self.rule = rule
        self.workingDirectory = workingDirectory
        self.log = log
        // A notifier that exits without reading its input must not take harrow down with it (the scorer client and
        // gnuplot writer do the same).
        signal(SIGPIPE, SIG_IGN)
    }

    /// Sends in the background (a runner slot is not held up); `wait()` lets the last ones finish.
    public func send(_ event: NotifyRule.Event, json: String) {
        guard rule.on.contains(event) else { return }
        pending.enter()
        DispatchQueue.global().async { [self] in
            defer { pending.leave() }
            run(event, json: json)
        }
    }

    /// Waits for notifications still being sent, each bounded by the timeout.
    public func wait() { _ = pending.wait(timeout: .now() + rule.timeout + 5) }

    func run(_ event: NotifyRule.Event, json: String) {
        let p = Process()
        let command = rule.command
        p.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        p.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        p.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        let input = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = errors
        do { try p.run() } catch {
            log("notify (\(event.rawValue)): cannot start \(command[0]): \(error.localizedDescription)")
            return
        }
        // A notifier that does not read its input must not block us: the write is best effort.
        DispatchQueue.global().async {
            try? input.fileHandleForWriting.write(contentsOf: Data((json + "\n").utf8))
            try? input.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(rule.timeout)
        while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            p.terminate()
            log("notify (\(event.rawValue)): \(command[0]) took longer than \(Int(rule.timeout)) s and was stopped")
            return
        }
        if p.terminationStatus != 0 {
            let tail = String(decoding: errors.fileHandleForReading.availableData.suffix(400), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            log("notify (\(event.rawValue)): \(command[0]) exited \(p.terminationStatus)" + (tail.isEmpty ? "" : ": \(tail)"))
        }
    }
}
