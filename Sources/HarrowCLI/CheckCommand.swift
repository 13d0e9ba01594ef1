import ArgumentParser
import Foundation
import Tracking

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check the store: SQLite's integrity, and every curve against its metrics file.",
        discussion: """
            Runs SQLite's integrity check, counts runs and points, and compares every finished run's stored \
            curves point for point with the metrics.jsonl it was read from. Use it after a crash, a full disk \
            or a power cut, or before copying a store.

            Exit status: 0 the store is sound, 1 a problem was found, 2 no store at the path or bad usage.

            Examples:
              harrow check
              harrow check --json --db /shared/harrow.db
            """
    )

    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let c = try store.check()
        if json {
            print(
                jsonText(
                    CheckJSON(
                        ok: c.ok, integrity: c.integrity, points: c.points, curvesChecked: c.curvesChecked,
                        runs: Dictionary(uniqueKeysWithValues: c.runs.map { ($0.key.rawValue, $0.value) }), mismatches: c.mismatches)))
        } else {
            let runs = c.runs.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
            print("integrity  \(c.integrity.joined(separator: "\n           "))")
            print("runs       \(c.runs.values.reduce(0, +))" + (runs.isEmpty ? "" : " (\(runs))"))
            print("points     \(c.points)")
            print("curves     \(c.curvesChecked) runs compared with their metrics files, \(c.mismatches.count) differ")
            for m in c.mismatches.prefix(20) { print("  " + m) }
        }
        if !c.ok { throw ExitCode(1) }
    }
}
