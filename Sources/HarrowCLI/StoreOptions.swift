import ArgumentParser
import Foundation
import Tracking

struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The store (SQLite). Default: $HARROW_DB or .harrow/harrow.db.", valueName: "path"))
    var db: String?

    /// The store, for reading: it must exist, and nothing is written to it (a read-only file opens too).
    func open() throws -> Store {
        do {
            return try Store.reading(db ?? Store.defaultPath)
        } catch {
            printError("harrow: \(error)")
            throw ExitStatus.configuration
        }
    }

    /// The store, for a command that records something. Only a sweep or an import creates it (`create`); the
    /// others need the runs it holds, so a store that is not there is a mistyped path.
    func openForWriting(create: Bool = false) throws -> Store {
        let path = db ?? Store.defaultPath
        guard create || FileManager.default.fileExists(atPath: path) else {
            printError("harrow: no store at \(path)")
            throw ExitStatus.configuration
        }
        do {
            return try Store(path: path)
        } catch {
            printError("harrow: \(error)")
            throw ExitStatus.configuration
        }
    }
}

extension Store {
    /// The run a user named (id, unique prefix or tag), or the error every command gives: exit 2.
    func requireRun(_ id: String) throws -> Run {
        let found: Run?
        do { found = try run(id) } catch {
            // A prefix of several runs is a usage error like any other name that names no one run.
            printError("harrow: \(error) (in \(path))")
            throw ExitStatus.configuration
        }
        guard let run = found else {
            printError("harrow: no run '\(id)' in \(path)")
            throw ExitStatus.configuration
        }
        return run
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `3m 05s`, `1h 02m`.
func formatDuration(_ seconds: Double?) -> String {
    guard let seconds, seconds.isFinite, seconds >= 0 else { return "-" }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
    return String(format: "%dh %02dm", s / 3600, (s % 3600) / 60)
}

func formatNumber(_ v: Double?) -> String {
    guard let v else { return "-" }
    return String(format: "%.4g", v)
}

func isoText(_ d: Date) -> String { ISO8601DateFormatter().string(from: d) }
