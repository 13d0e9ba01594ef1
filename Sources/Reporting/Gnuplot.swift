import Foundation

public struct GnuplotError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// One gnuplot process per report: chart scripts are piped in as they are made, so drawing overlaps the
/// report's own work, and every SVG lands in the report folder (gnuplot runs there; paths stay relative).
final class Gnuplot {
    private let process = Process()
    private let input = Pipe()
    private let errors = Pipe()
    private let stderrText = StderrBuffer()
    private var buffer = ""
    private(set) var charts = 0
    /// A gnuplot that takes longer than this over one chunk of script, or over its exit, is killed: a
    /// report never hangs on it (seconds).
    var stallTimeout: Double = 120
    private let stalled = StallFlag()

    init(directory: URL, executable: String = "gnuplot") throws(GnuplotError) {
        // A gnuplot that stops on an error closes its input; the write must fail, not kill harrow.
        signal(SIGPIPE, SIG_IGN)
        guard let path = Self.find(executable) else {
            throw GnuplotError(
                description: "gnuplot is not installed: the report draws its plots with it (apt-get install gnuplot-nox, or make deps)")
        }
        process.executableURL = URL(fileURLWithPath: path)
        // As a script file argument, gnuplot reads stdin through buffered stdio; as plain stdin it reads the pipe
        // a byte at a time, which made a 1,000-plot report 12× slower (13.6 s against 1.2 s, mostly system time).
        process.arguments = ["/dev/stdin"]
        process.currentDirectoryURL = directory
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        var environment = ProcessInfo.processInfo.environment
        environment["GNUPLOT_LIB"] = nil
        process.environment = environment
        let handle = errors.fileHandleForReading
        let sink = stderrText
        // Read stderr all along so a chatty gnuplot can never block on a full pipe.
        Thread.detachNewThread {
            sink.data = handle.readDataToEndOfFile()
            sink.done.signal()
        }
        do { try process.run() } catch { throw GnuplotError(description: "cannot start gnuplot: \(error)") }
        try? errors.fileHandleForWriting.close()
    }

    static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Queues a chart; scripts go to gnuplot in chunks of about 256 KiB.
    func draw(_ chart: Chart) throws(GnuplotError) {
        try send(chart.script(id: charts))
        charts += 1
    }

    func send(_ commands: String) throws(GnuplotError) {
        buffer += commands
        if buffer.utf8.count > 1 << 18 { try flush() }
    }

    private func flush() throws(GnuplotError) {
        guard !buffer.isEmpty else { return }
        let data = Data(buffer.utf8)
        buffer = ""
        do { try bounded { try input.fileHandleForWriting.write(contentsOf: data) } } catch {
            throw failure("gnuplot stopped reading its script")
        }
    }

    /// Sends what is left, closes the last file and waits; gnuplot's stderr becomes the error if it failed.
    func finish() throws(GnuplotError) {
        buffer += "unset output\nexit\n"
        try flush()
        let stderr = waitForExit()
        if process.terminationStatus != 0 {
            throw GnuplotError(
                description: "gnuplot exited with status \(process.terminationStatus)" + (stderr.isEmpty ? "" : ":\n\(stderr)"))
        }
    }

    private var exited = false
    private var stderrComplete = false

    /// Runs a step that waits on gnuplot, killing gnuplot if it takes longer than `stallTimeout`.
    private func bounded<T>(_ body: () throws -> T) rethrows -> T {
        let pid = process.processIdentifier, flag = stalled
        let kill = DispatchWorkItem {
            flag.set()
            _ = Foundation.kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + stallTimeout, execute: kill)
        defer { kill.cancel() }
        return try body()
    }

    /// A report that failed part-way still lets its gnuplot finish what it was sent and exit.
    deinit {
        if !exited { try? input.fileHandleForWriting.close() }
    }

    /// Closes gnuplot's input, waits for it, and returns the end of its stderr.
    private func waitForExit() -> String {
        if !exited {
            try? input.fileHandleForWriting.close()
            bounded { process.waitUntilExit() }
            // A child gnuplot left behind may hold stderr open: then its text is not waited for.
            stderrComplete = stderrText.done.wait(timeout: .now() + 5) == .success
            exited = true
        }
        let tail =
            stderrComplete ? String(decoding: stderrText.data, as: UTF8.self).split(separator: "\n").suffix(8).joined(separator: "\n") : ""
        return stalled.isSet
            ? "gnuplot made no progress for \(String(format: "%g", stallTimeout)) s and was stopped" + (tail.isEmpty ? "" : "\n" + tail)
            : tail
    }

    private func failure(_ what: String) -> GnuplotError {
        let stderr = waitForExit()
        return GnuplotError(description: what + (stderr.isEmpty ? "" : ":\n\(stderr)"))
    }
}

/// Set when the watchdog killed gnuplot.
private final class StallFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// gnuplot's stderr, filled by the reading thread and read only after `done` is signalled.
private final class StderrBuffer: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}
