import ArgumentParser
import Foundation
import Runner
import Gate
import Reporting
import Tracking

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a static HTML report of a sweep or of chosen runs: tables, curves, 3H bars, flips.",
        discussion: """
            A report is a folder that opens from file:// with no server or network:
              index.html      the dashboard: every run, curves, scatter, heatmap, 3H bars
              compare.html    the best runs (or those named) side by side, with the
                              eval items that flipped
              runs/RUN.html   git state, curves, lr schedule, verdict with evidence,
                              3H scores, artifacts

            Plots are SVG, drawn by one gnuplot process. Dashboards come from \
            dashboards/sweep.yaml, run.yaml and compare.yaml when present (built-in \
            copies otherwise); dashboards/README.md lists the panels.

            Examples:
              harrow report --sweep overnight        writes reports/overnight/
              harrow report --runs k3x9a2pq,production --out reports/candidate
              harrow report --dashboard dashboards/mine.yaml --json
            """)

    @Option(help: "Report on this sweep (default: the latest one).") var sweep: String?
    @Option(
        help: ArgumentHelp(
            "Report on these runs (ids, tags or prefixes, comma-separated); the first is the comparison's reference.",
            valueName: "A,B,…"))
    var runs: String?
    @Option(help: ArgumentHelp("The index page's dashboard.", valueName: "file")) var dashboard: String?
    @Option(help: ArgumentHelp("The dashboard of each run's page.", valueName: "file")) var runDashboard: String?
    @Option(help: ArgumentHelp("The comparison page's dashboard.", valueName: "file")) var compareDashboard: String?
    @Option(help: "Rank runs by this metric (default: the dashboard's, else the sweep's, else val/loss).") var metric: String?
    @Option(help: ArgumentHelp("The report folder (default: reports/SWEEP or reports/runs).", valueName: "dir")) var out: String?
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if sweep != nil, runs != nil { throw ValidationError("give --sweep or --runs, not both") }
    }

    func run() throws {
        let index = try load(dashboard, fallback: "sweep")
        let runPage = try load(runDashboard, fallback: "run")
        let comparePage = try load(compareDashboard, fallback: "compare")
        let store = try storeOptions.open()
        var chosen: [Run] = [], compared: [Run] = []
        let title: String, folder: String
        var reported: String?
        var sweepMetric: String?
        var objective: Objective?
        var method: String?
        if let runs {
            for id in runs.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !id.isEmpty {
                let r = try store.requireRun(id)
                chosen.append(r)
            }
            guard !chosen.isEmpty else { throw ValidationError("--runs needs at least one run") }
            compared = chosen
            title = "runs " + chosen.map(\.id).joined(separator: ", ")
            folder = "reports/runs"
        } else {
            guard let name = try sweep ?? store.sweeps().first?.name else {
                printError("harrow: no sweeps in \(store.path) yet: harrow sweep EXPERIMENT.yaml")
                throw ExitStatus.configuration
            }
            chosen = try store.runs(sweep: name)
            guard !chosen.isEmpty else {
                printError(
                    "harrow: no sweep '\(name)' in \(store.path)"
                        + ((try? store.sweeps().map(\.name)).map { $0.isEmpty ? "" : " (sweeps: \($0.joined(separator: ", ")))" } ?? ""))
                throw ExitStatus.configuration
            }
            title = "sweep \(name)"
            reported = name
            // The sweep's own objective ranks its runs unless a dashboard or --metric says otherwise.
            let stored = try store.sweeps().first { $0.name == name }
            objective = stored?.objective
            method = stored?.method
            sweepMetric = objective?.metric
            folder = "reports/" + safeFileName(name)
        }
        var request = ReportRequest(
            title: title, runs: chosen, compared: compared, index: index, runPage: runPage, comparePage: comparePage,
            metric: metric ?? (index.metric == nil ? sweepMetric : nil), out: URL(fileURLWithPath: out ?? folder))
        request.sweep = reported
        request.objective = objective
        request.method = method
        request.data = reported.flatMap { DataChecks.stored(sweep: $0, in: store) }
        let showProgress = !json && isatty(2) == 1 && chosen.count >= 50
        let started = Date()
        let summary: ReportSummary
        do {
            summary = try Report.write(request, store: store) { done, total in
                guard showProgress, done % max(1, total / 20) == 0 || done == total else { return }
                let elapsed = Date().timeIntervalSince(started)
                let eta = elapsed / Double(done) * Double(total - done)
                FileHandle.standardError.write(Data("\r\u{1B}[Krun pages \(done)/\(total), about \(formatDuration(eta)) left".utf8))
                if done == total { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            }
        } catch let e as GateError {
            printError("\(e)")
            throw ExitStatus.configuration
        } catch {
            printError("harrow: \(error)")
            throw ExitCode(1)
        }
        for w in summary.warnings { printError("warning: \(w)") }
        if json {
            print(
                jsonText(
                    ReportJSON(
                        index: summary.index.path, pages: summary.pages, charts: summary.charts, runs: summary.runs,
                        seconds: summary.seconds, warnings: summary.warnings)))
        } else {
            print(
                "wrote \(summary.index.path): \(summary.pages) pages, \(summary.charts) plots for \(summary.runs) runs in \(String(format: "%.1f", summary.seconds)) s"
            )
        }
    }

    /// A dashboard from the named file, else from dashboards/NAME.yaml here, else the built-in copy.
    func load(_ path: String?, fallback name: String) throws -> Dashboard {
        let file = path ?? "dashboards/\(name).yaml"
        let text: String
        if let t = try? String(contentsOfFile: file, encoding: .utf8) {
            text = t
        } else if path == nil {
            text = Dashboard.builtIn[name]!
        } else {
            printError("\(file):1:1: error: no such dashboard file")
            throw ExitStatus.configuration
        }
        do {
            return try Dashboard.parse(yaml: text, file: file)
        } catch {
            printError(error.description)
            throw ExitStatus.configuration
        }
    }
}
