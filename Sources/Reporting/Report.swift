import HarrowCore
import Foundation
import Tracking

/// What to report on and where.
public struct ReportRequest: Sendable {
    public var title: String
    /// The runs of the report, in plan order.
    public var runs: [Run]
    /// The runs of the comparison page, the first being the reference; empty: the best few by the metric.
    public var compared: [Run]
    public var index: Dashboard
    public var runPage: Dashboard
    public var comparePage: Dashboard
    /// Overrides the dashboards' ranking metric.
    public var metric: String?
    public var out: URL
    /// Where relative paths in dashboards (gate files) are read from.
    public var baseDirectory: URL
    /// The sweep reported on, if any: its runs that another sweep ran are marked as reused.
    public var sweep: String?
    /// The sweep's stored objective: which way its metric is better, instead of guessing from the name.
    public var objective: Objective?
    /// The sweep's method (`grid`, `random`, `bayes`): how the effects panel measures a parameter's share.
    public var method: String?

    public init(title: String, runs: [Run], compared: [Run] = [], index: Dashboard, runPage: Dashboard, comparePage: Dashboard,
                metric: String? = nil, out: URL, baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
        self.title = title
        self.runs = runs
        self.compared = compared
        self.index = index
        self.runPage = runPage
        self.comparePage = comparePage
        self.metric = metric
        self.out = out
        self.baseDirectory = baseDirectory
    }
}

public struct ReportSummary: Sendable {
    public var index: URL
    public var pages: Int
    public var charts: Int
    public var runs: Int
    public var seconds: Double
    public var warnings: [String]
}

public struct ReportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Report {
    /// Runs compared when none are named: the best few by the metric.
    public static let defaultCompared = 4

    /// Writes `index.html`, `compare.html`, `runs/<id>.html` and `plots/*.svg` into `request.out`.
    /// `progress` is called after each run page with (done, total).
    public static func write(_ request: ReportRequest, store: Store, progress: ((Int, Int) -> Void)? = nil) throws -> ReportSummary {
        let start = Date()
        let fm = FileManager.default
        for dir in ["", "runs", "plots"] {
            do { try fm.createDirectory(at: request.out.appendingPathComponent(dir), withIntermediateDirectories: true) } catch {
                throw ReportError("cannot create \(request.out.appendingPathComponent(dir).path): \(error.localizedDescription)")
            }
        }
        // Plots of an earlier report in the same folder would otherwise linger beside the new ones.
        for old in (try? fm.contentsOfDirectory(atPath: request.out.appendingPathComponent("plots").path)) ?? [] where old.hasSuffix(".svg") {
            try? fm.removeItem(at: request.out.appendingPathComponent("plots/\(old)"))
        }
        var runs = try store.snapshots(request.runs)
        let metric = request.metric ?? request.index.metric ?? TrainerContract.Metric.valLoss
        let lower = request.objective.flatMap { $0.metric == metric ? $0.lowerIsBetter : nil } ?? Metric.lowerIsBetter(metric)
        // Everything the pages show is read here, before rendering: every curve a curves panel names, and the eval
        // items of the runs whose flips are shown (the compared ones, or the best few).
        let curveKeys = Set([request.index, request.runPage, request.comparePage].flatMap(\.panels).filter { $0.kind == .curves }
            .flatMap { $0.metrics ?? Panel.defaultCurves })
        let flipsOf = Set((request.compared.isEmpty
            ? Metric.rank(runs, lowerIsBetter: lower) { $0.value(metric) }.prefix(defaultCompared).map(\.run) : request.compared).map(\.rowID))
        try store.fill(&runs, curves: curveKeys, evalItems: flipsOf)
        let ranked = Metric.rank(runs, lowerIsBetter: lower) { $0.value(metric) }
        let compared = request.compared.isEmpty
            ? Array(ranked.prefix(defaultCompared))
            : try request.compared.map { c in try runs.first { $0.run.rowID == c.rowID } ?? store.snapshots([c], curves: curveKeys, evalItems: flipsOf)[0] }

        let gnuplot = try Gnuplot(directory: request.out)
        let renderer = Renderer(gnuplot: gnuplot, metric: metric, lowerIsBetter: lower, baseDirectory: request.baseDirectory)
        renderer.grid = request.method.map { $0 == "grid" } ?? true
        var pages = 0
        func write(_ html: String, to name: String) throws {
            do { try html.write(to: request.out.appendingPathComponent(name), atomically: true, encoding: .utf8) } catch {
                throw ReportError("cannot write \(request.out.appendingPathComponent(name).path): \(error.localizedDescription)")
            }
            pages += 1
        }

        let statuses = Dictionary(grouping: runs, by: { $0.run.status.rawValue }).map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
        var head = "<p class=\"note\">\(runs.count) runs (\(HTML.escape(statuses)))"
        let verdicts = Dictionary(grouping: runs.compactMap { $0.diagnosis?.verdict }, by: { $0 })
        if !verdicts.isEmpty {
            head += " · " + verdicts.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }
                .map { "<span class=\"\(HTML.escape($0.key))\">\($0.value.count) \(HTML.escape($0.key.replacingOccurrences(of: "_", with: " ")))</span>" }
                .joined(separator: ", ")
        }
        let reused = runs.filter { r in request.sweep.map { r.run.sweepName != nil && r.run.sweepName != $0 } ?? false }
        if !reused.isEmpty {
            let from = Set(reused.compactMap(\.run.sweepName)).sorted().map(HTML.escape).joined(separator: ", ")
            head += " · \(reused.count) reused from sweep \(from) (same identity, not run again)"
        }
        head += " · ranked by \(HTML.escape(metric))"
        if let best = ranked.first, let v = best.value(metric) {
            head += " · best <a href=\"\(Renderer.runPage(best.id))\">\(HTML.escape(best.id))</a> at \(Format.number(v))"
        }
        head += " · <a href=\"compare.html\">compare the \(compared.count) \(request.compared.isEmpty ? "best" : "chosen") runs</a></p>"
        let indexBody = try renderer.render(request.index, scope: .index(ranked), prefix: "")
        try write(HTML.page(title: "\(request.title) — \(request.index.title)",
                            nav: [("index", "index.html"), ("compare", "compare.html")], body: head + indexBody), to: "index.html")

        let compareBody = try renderer.render(request.comparePage, scope: .compare(compared), prefix: "")
        try write(HTML.page(title: "\(request.comparePage.title): " + compared.map(\.id).joined(separator: " vs "),
                            nav: [("index", "index.html"), ("compare", "compare.html")], body: compareBody), to: "compare.html")

        for (i, run) in runs.enumerated() {
            let body = try renderer.render(request.runPage, scope: .run(run), prefix: "../")
            try write(HTML.page(title: "run \(run.id)" + (run.run.sweepName.map { " · \($0)" } ?? ""),
                                nav: [("index", "../index.html"), ("compare", "../compare.html")], body: body),
                      to: "runs/" + Renderer.runFile(run.id))
            progress?(i + 1, runs.count)
        }
        try gnuplot.finish()
        return ReportSummary(index: request.out.appendingPathComponent("index.html"), pages: pages, charts: gnuplot.charts, runs: runs.count,
                             seconds: Date().timeIntervalSince(start), warnings: renderer.warnings)
    }
}
