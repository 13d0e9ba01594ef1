import Evaluation
import HarrowCore
import Foundation
import Sweep
import Gate
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
    /// The data check of the sweep's last start (`harrow sweep` keeps it), shown under the answer.
    public var data: DataCheck.Night?

    public init(
        title: String, runs: [Run], compared: [Run] = [], index: Dashboard, runPage: Dashboard, comparePage: Dashboard,
        metric: String? = nil, out: URL, baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) {
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
        for old in (try? fm.contentsOfDirectory(atPath: request.out.appendingPathComponent("plots").path)) ?? [] where old.hasSuffix(".svg")
        {
            try? fm.removeItem(at: request.out.appendingPathComponent("plots/\(old)"))
        }
        // Runs that never started (queued when a deadline stopped the night) get one line, no page and no row.
        let notStarted = request.runs.filter { $0.status == .queued && $0.startedAt == nil }
        var runs = try store.snapshots(request.runs.filter { !($0.status == .queued && $0.startedAt == nil) })
        let metric = request.metric ?? request.index.metric ?? TrainerContract.Metric.valLoss
        // Which way the metric improves: as the sweep declared it, else as the dashboard does, else as its name says.
        let declared =
            request.objective.flatMap { $0.metric == metric ? $0.goal : nil }
            ?? (request.metric == nil || request.metric == request.index.metric ? request.index.goal : nil)
        let lower = (declared ?? Goal.of(metric: metric)).lowerIsBetter
        // Everything the pages show is read here, before rendering: every curve a curves panel names, and the eval
        // items of the runs whose flips are shown (the compared ones, or the best few).
        let curveKeys = Set(
            [request.index, request.runPage, request.comparePage].flatMap(\.panels).flatMap { panel -> [String] in
                if case .curves(let curves) = panel { curves.asked } else { [] }
            })
        var flipsOf = Set(
            (request.compared.isEmpty
                ? Metric.rank(runs, lowerIsBetter: lower) { $0.value(metric) }.prefix(defaultCompared).map(\.run) : request.compared).map(
                    \.rowID))
        // A one-change-at-a-time design's effects pair each run with the baseline item by item.
        if runs.count <= 100, Ablation.oneAtATime(runs.map { $0.params.mapValues(\.plain) }) != nil {
            flipsOf.formUnion(runs.map(\.run.rowID))
        }
        try store.fill(&runs, curves: curveKeys, evalItems: flipsOf)
        let ranked = Metric.rank(runs, lowerIsBetter: lower) { $0.value(metric) }
        let compared =
            request.compared.isEmpty
            ? Array(ranked.prefix(defaultCompared))
            : try request.compared.map { c in
                try runs.first { $0.run.rowID == c.rowID } ?? store.snapshots([c], curves: curveKeys, evalItems: flipsOf)[0]
            }

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

        let gatePath = request.index.panels.lazy.compactMap { panel -> String? in
            if case .bars3h(let bars) = panel { bars.gate } else { nil }
        }.first
        // Which parameter mattered, in one sentence, beside the best run.
        let varying = RunSnapshot.differingParams(runs).filter { $0 != SeedGroups.seedKey }
        let scored = runs.compactMap { r in r.value(metric).map { (params: r.params, value: $0) } }
        let oneAtATime = runs.count <= 100 ? Ablation.oneAtATime(runs.map { $0.params.mapValues(\.plain) }) : nil
        let mattered =
            oneAtATime.flatMap { Effects.largestChange($0, values: runs.map { $0.value(metric) }, metric: metric, lowerIsBetter: lower) }
            ?? (scored.count >= 3
                ? Effects.sentence(Effects.analyze(scored, parameters: varying, metric: metric, grid: renderer.grid), lowerIsBetter: lower)
                : nil)
        var head = try Answer.html(
            best: ranked.first, runs: runs, metric: metric, varying: varying, mattered: mattered,
            gate: gatePath.flatMap { try renderer.gate($0) }, gatePath: gatePath)
        let statuses = Dictionary(grouping: runs, by: { $0.run.status.rawValue }).map { "\($0.value.count) \($0.key)" }.sorted().joined(
            separator: ", ")
        head += "<p class=\"note\">\(runs.count) runs (\(HTML.escape(statuses)))"
        var causes: [FailureCause: Int] = [:]
        for r in runs { if let f = r.run.failure { causes[f.cause, default: 0] += 1 } }
        if !causes.isEmpty {
            head +=
                " · why: "
                + HTML.escape(FailureCause.allCases.compactMap { c in causes[c].map { "\($0) \(c.label)" } }.joined(separator: ", "))
        }
        if !notStarted.isEmpty { head += " · \(notStarted.count) not started: run the sweep again to continue" }
        let reused = runs.filter { r in request.sweep.map { r.run.sweepName != nil && r.run.sweepName != $0 } ?? false }
        if !reused.isEmpty {
            let from = Set(reused.compactMap(\.run.sweepName)).sorted().map(HTML.escape).joined(separator: ", ")
            head += " · \(reused.count) reused from sweep \(from) (same identity, not run again)"
        }
        head += " · ranked by \(HTML.escape(metric))"
        if let best = ranked.first, let v = best.value(metric) {
            head += " · best <a href=\"\(Renderer.runPage(best.id))\">\(HTML.escape(best.id))</a> at \(Format.number(v))"
        }
        head += " · <a href=\"compare.html\">compare the \(compared.count) \(request.compared.isEmpty ? "best" : "chosen") runs</a>"
        head += " · <a href=\"runs.html\">all runs</a></p>"
        if let data = request.data { head += DataSection.html(data) }
        let nav = [("index", "index.html"), ("compare", "compare.html"), ("all runs", "runs.html")]
        let indexBody = try renderer.render(request.index, scope: .index(ranked), prefix: "")
        try write(HTML.page(title: "\(request.title) — \(request.index.title)", nav: nav, body: head + indexBody), to: "index.html")

        // Every run in one table, on a page of its own.
        let all = Panel.table(TablePanel(top: .max))
        let table = try renderer.render(Dashboard(title: "all runs", metric: nil, panels: [all]), scope: .index(ranked), prefix: "")
        try write(HTML.page(title: "\(request.title) — all \(runs.count) runs", nav: nav, body: table), to: "runs.html")

        let compareBody = try renderer.render(request.comparePage, scope: .compare(compared), prefix: "")
        try write(
            HTML.page(
                title: "\(request.comparePage.title): " + compared.map(\.id).joined(separator: " vs "),
                nav: nav, body: compareBody), to: "compare.html")

        let listsReplies = request.runPage.panels.contains { if case .usability = $0 { true } else { false } }
        for (i, run) in runs.enumerated() {
            var run = run
            // A run page lists a judged set's lowest-scored replies: they are read for that page alone, so a night of
            // a thousand runs never holds every reply at once.
            if listsReplies, run.evalItems == nil, run.evals.contains(where: { $0.isJudged && $0.status == "succeeded" }) {
                var one = [run]
                try store.fill(&one, curves: [], evalItems: [run.run.rowID])
                run = one[0]
            }
            // People's labels of its replies, for the judge's agreement with them beside its scores.
            if listsReplies { run.labels = try run.evals.filter(\.isJudged).flatMap { try store.labels(run: run.id, evalset: $0.evalset) } }
            let body = try renderer.render(request.runPage, scope: .run(run), prefix: "../")
            try write(
                HTML.page(
                    title: "run \(run.id)" + (run.run.sweepName.map { " · \($0)" } ?? ""),
                    nav: [("index", "../index.html"), ("compare", "../compare.html")], body: body),
                to: "runs/" + Renderer.runFile(run.id))
            progress?(i + 1, runs.count)
        }
        try gnuplot.finish()
        return ReportSummary(
            index: request.out.appendingPathComponent("index.html"), pages: pages, charts: gnuplot.charts, runs: runs.count,
            seconds: Date().timeIntervalSince(start), warnings: renderer.warnings)
    }
}

/// The top of the index: the best run and why, then the verdict counts, each a filter of the run table.
enum Answer {
    static func html(
        best: ReportRun?, runs: [ReportRun], metric: String, varying: [String], mattered: String?, gate: GateRules?,
        gatePath: String?
    ) -> String {
        var html = "<section class=\"answer\">"
        if let best, let v = best.value(metric) {
            html +=
                "<p class=\"best\">Best run <a href=\"\(Renderer.runPage(best.id))\">\(HTML.escape(best.id))</a>: "
                + "\(HTML.escape(metric)) \(Format.number(v))"
            if let d = best.diagnosis {
                html +=
                    " · <span class=\"\(HTML.escape(d.verdict))\">\(HTML.escape(d.verdict.replacingOccurrences(of: "_", with: " ")))</span>"
                if !d.advice.isEmpty { html += " <small>(\(HTML.escape(d.advice)))</small>" }
            }
            html += "</p>"
            // The parameters the sweep varied (the rest are the same for every run, on the run's page).
            let shown = varying.isEmpty ? best.params.keys.sorted() : varying
            let params = shown.compactMap { k in best.params[k].map { "\(HTML.escape(k)) = \(HTML.escape($0.display))" } }
            if !params.isEmpty { html += "<p class=\"params\">\(params.joined(separator: " · "))</p>" }
            if let gate, let gatePath { html += "<p class=\"gate\">\(thresholds(gate, gatePath, best))</p>" }
        }
        if let mattered { html += "<p class=\"mattered\">\(HTML.escape(mattered)).</p>" }
        let verdicts = Dictionary(grouping: runs.compactMap { $0.diagnosis?.verdict }, by: { $0 })
        if !verdicts.isEmpty {
            html +=
                "<p class=\"verdicts\">"
                + verdicts.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }.map {
                    "<a href=\"#runs\" data-q=\"\(HTML.escape($0.key))\" class=\"\(HTML.escape($0.key))\">\($0.value.count) "
                        + "\(HTML.escape($0.key.replacingOccurrences(of: "_", with: " ")))</a>"
                }.joined(separator: " · ") + " <a href=\"#runs\" data-q=\"\" class=\"clear\">all</a></p>"
        }
        return html + "</section>\n"
    }

    /// The gate's thresholds against the best run: which hold, which do not (the full gate, with its baseline and
    /// provenance checks, is `harrow gate`).
    static func thresholds(_ rules: GateRules, _ path: String, _ run: ReportRun) -> String {
        var failed: [String] = [], missing: [String] = []
        for t in rules.thresholds {
            guard let v = run.value(t.metric) else { missing.append(t.metric); continue }
            if let lo = t.min, v < lo { failed.append("\(t.metric) \(Format.number(v)) < \(Format.number(lo))") }
            if let hi = t.max, v > hi { failed.append("\(t.metric) \(Format.number(v)) > \(Format.number(hi))") }
        }
        let name = HTML.escape(path)
        if !failed.isEmpty {
            return "<span class=\"fail\">fails the thresholds of \(name)</span>: " + HTML.escape(failed.joined(separator: ", "))
        }
        if !missing.isEmpty { return "thresholds of \(name): not evaluated on " + HTML.escape(missing.joined(separator: ", ")) }
        return "<span class=\"pass\">meets the \(rules.thresholds.count) thresholds of \(name)</span>"
    }
}
