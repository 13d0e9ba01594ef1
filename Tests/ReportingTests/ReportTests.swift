import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Testing
import Tracking
@testable import Reporting

/// The shipped dashboards, as `harrow report` reads them from a checkout.
func shippedDashboard(_ name: String) throws -> Dashboard {
    try Dashboard.parse(yaml: Dashboard.builtIn[name]!, file: "dashboards/\(name).yaml")
}

/// The project root, where gates/release.yaml lives.
let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func writeReport(_ dir: URL, sweep: String = "night", compared: [Run] = [], metric: String? = nil) throws -> (ReportSummary, [Run]) {
    let (store, runs) = try makeSweepStore(in: dir, sweep: sweep)
    try store.tag(run: runs[1].rowID, as: "candidate \(hostile)")
    let request = ReportRequest(
        title: "sweep night", runs: runs, compared: compared, index: try shippedDashboard("sweep"),
        runPage: try shippedDashboard("run"), comparePage: try shippedDashboard("compare"), metric: metric,
        out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
    return (try Report.write(request, store: store), runs)
}

func pages(_ report: URL) throws -> [URL] {
    let runs = try FileManager.default.contentsOfDirectory(atPath: report.appendingPathComponent("runs").path).sorted()
    return [
        report.appendingPathComponent("index.html"), report.appendingPathComponent("compare.html"),
        report.appendingPathComponent("runs.html")
    ]
        + runs.map { report.appendingPathComponent("runs/\($0)") }
}

/// The `src` of every image on a page, resolved against the page.
func imageSources(_ page: URL) throws -> [URL] {
    let html = try String(contentsOf: page, encoding: .utf8)
    let regex = try NSRegularExpression(pattern: "<img src=\"([^\"]+)\"")
    return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).map { m in
        URL(fileURLWithPath: String(html[Range(m.range(at: 1), in: html)!]), relativeTo: page.deletingLastPathComponent())
            .standardizedFileURL
    }
}

@Suite("report")
struct ReportTests {
    /// The index opens on the answer: the best run with its parameters and verdict, the verdict counts as filters of
    /// the run table, then the panels; every run is on runs.html; runs that never started are one line.
    @Test("the index opens on the best run, and runs that never started stay out of the way")
    func theIndexOpensOnTheAnswer() throws {
        let dir = temporaryDirectory("answer")
        var (store, runs) = try makeSweepStore(in: dir)
        // A night cut short: two more trials registered, never started.
        let more = (0..<2).map { i in
            TrialRecord(
                identity: TrialIdentity(paramsKey: String(repeating: "\(i + 7)", count: 64)),
                paramsJSON: "{\"lr\": 0.5, \"lora_r\": \(i), \"seed\": 1}",
                command: ["harrow-train", "sft"])
        }
        runs += try store.register(
            sweep: "night", file: "night.yaml", method: "grid", spec: "", trials: more,
            runsRoot: dir.appendingPathComponent("runs").path
        ).runs.filter { $0.status == .queued }
        #expect(runs.count == 10)
        let request = ReportRequest(
            title: "sweep night", runs: runs, index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        let summary = try Report.write(request, store: store)
        #expect(summary.runs == 8 && summary.pages == 8 + 3, "no page for a run that never started")
        let index = try String(contentsOf: dir.appendingPathComponent("report/index.html"), encoding: .utf8)
        #expect(index.contains("2 not started: run the sweep again to continue"))
        // The answer comes before any panel: the best run by val/loss (lr 1e-4, the first config), its verdict and parameters.
        let answer = try #require(
            index.components(separatedBy: "<section class=\"answer\">").dropFirst().first?.components(separatedBy: "</section>").first)
        #expect(index.range(of: "<section class=\"answer\">")!.lowerBound < index.range(of: "<h2>")!.lowerBound)
        #expect(answer.contains("Best run <a href=\"runs/\(runs[0].id).html\">\(runs[0].id)</a>"), "\(answer)")
        #expect(answer.contains("lr = 0.0001") && answer.contains("good fit"))
        #expect(
            answer.contains("data-q=\"overfitting\" class=\"overfitting\">2 overfitting</a>") && answer.contains("5 good fit</a>"),
            "\(answer)")
        #expect(answer.contains("thresholds of gates/release.yaml"), "the gate the 3H panel names is read against the best run")
        // The table: a filter and every row; runs.html: every run in one table.
        #expect(index.contains("<input type=\"search\" class=\"filter\" data-table=\"runs\""))
        let all = try String(contentsOf: dir.appendingPathComponent("report/runs.html"), encoding: .utf8)
        for run in runs.prefix(8) { #expect(all.contains(">\(run.id)</a>")) }
        for run in runs.suffix(2) { #expect(!all.contains(run.id) && !index.contains(run.id)) }
    }

    @Test("every page is written, every image it shows exists and every SVG parses as XML")
    func pagesImagesAndSVG() throws {
        let dir = temporaryDirectory("pages")
        let (summary, runs) = try writeReport(dir)
        let report = dir.appendingPathComponent("report")
        let all = try pages(report)
        #expect(all.count == runs.count + 3)
        #expect(summary.pages == runs.count + 3)
        var images = 0
        for page in all {
            for src in try imageSources(page) {
                images += 1
                #expect(FileManager.default.fileExists(atPath: src.path), "\(page.lastPathComponent) shows missing \(src.path)")
                let parser = XMLParser(contentsOf: src)!
                #expect(parser.parse(), "\(src.lastPathComponent) does not parse: \(String(describing: parser.parserError))")
            }
        }
        let svgs = try FileManager.default.contentsOfDirectory(atPath: report.appendingPathComponent("plots").path).filter {
            $0.hasSuffix(".svg")
        }
        #expect(images == svgs.count, "every plot drawn is shown once")
        #expect(summary.charts == svgs.count)
        // Index: table, effects (one chart per varying parameter: lr, lora_r, note, base_model, mix_ratio), parallel,
        // curves, scatter, heatmap, bars3h, forgetting, tradeoff, progress; a run page has losses, lr and 3H bars, and val loss by task type when
        // the run logged it (the first run did, with one curve per task type).
        #expect(try imageSources(report.appendingPathComponent("index.html")).count == 13)
        #expect(try imageSources(report.appendingPathComponent("runs/\(runs[0].id).html")).count == 4)
        #expect(try imageSources(report.appendingPathComponent("runs/\(runs[1].id).html")).count == 3)
        let channelPlot = try #require(
            try imageSources(report.appendingPathComponent("runs/\(runs[0].id).html")).first { src in
                (try? String(contentsOf: src, encoding: .utf8))?.contains("val/loss@qa/dose") == true
            })
        #expect(try String(contentsOf: channelPlot, encoding: .utf8).contains("val/loss@safety/refusal"))
    }

    @Test("hostile run names, parameters, evidence, prompts and stderr are shown as text")
    func escapesUserStrings() throws {
        let dir = temporaryDirectory("xss")
        let (_, runs) = try writeReport(dir, sweep: "night \(hostile)")
        let report = dir.appendingPathComponent("report")
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        var seen = 0
        for page in try pages(report) {
            let html = try String(contentsOf: page, encoding: .utf8)
            #expect(!html.contains(hostile), "\(page.lastPathComponent) carries the raw script")
            #expect(html.components(separatedBy: "<script").count == 2, "\(page.lastPathComponent): only the sorting script")
            if html.contains(escaped) { seen += 1 }
        }
        #expect(seen >= 3)
        let tagged = try String(contentsOf: report.appendingPathComponent("runs/\(runs[1].id).html"), encoding: .utf8)
        #expect(tagged.contains("candidate \(escaped)"))
        #expect(tagged.contains("<title>run \(runs[1].id) · night \(escaped)</title>"))
        let failed = try String(contentsOf: report.appendingPathComponent("runs/\(runs.last!.id).html"), encoding: .utf8)
        #expect(failed.contains("diverged at step 60 \(escaped)"))
        let param = try String(contentsOf: report.appendingPathComponent("runs/\(runs[6].id).html"), encoding: .utf8)
        #expect(param.contains("<td>\(escaped)</td>"))
        // In the plots too: every SVG parses as XML and carries the hostile text (legends, titles) only escaped.
        var svgs = 0
        for svg in try FileManager.default.contentsOfDirectory(at: report.appendingPathComponent("plots"), includingPropertiesForKeys: nil)
        where svg.pathExtension == "svg" {
            let data = try Data(contentsOf: svg)
            let text = String(decoding: data, as: UTF8.self)
            #expect(!text.contains("<script"), "\(svg.lastPathComponent) carries a script")
            #expect(XMLParser(data: data).parse(), "\(svg.lastPathComponent) is not well-formed")
            svgs += 1
        }
        #expect(svgs > 5)
    }

    @Test("runs that differ only in seed are one row with mean ± sd and the members a click away")
    func seedRepeatsAreGrouped() throws {
        let dir = temporaryDirectory("seeds")
        let (_, runs) = try writeReport(dir)
        let html = try String(contentsOf: dir.appendingPathComponent("report/index.html"), encoding: .utf8)
        let repeats = runs[2...4].map(\.id)
        #expect(html.contains("<details><summary><a href=\"runs/\(repeats[0]).html\">\(repeats[0])</a> ×3</summary>"))
        for id in repeats { #expect(html.contains("<a href=\"runs/\(id).html\">\(id)</a> seed")) }
        let table = html.components(separatedBy: "<tbody>")[1].components(separatedBy: "</tbody>")[0]
        #expect(table.components(separatedBy: "<tr>").count - 1 == runs.count - 2, "three seed runs share one row")
        // The row's val loss: mean ± sd of the three members' minimums.
        let store = try Store(path: dir.appendingPathComponent("harrow.db").path)
        let minimums = try runs[2...4].map { try store.summaries(run: $0.rowID)["val/loss"]!.min }
        let spread = Spread(minimums)!
        #expect(spread.n == 3 && spread.sd > 0)
        #expect(
            table.contains("data-v=\"\(spread.mean)\" class=\"num\">\(Format.number(spread.mean)) ± \(Format.number(spread.sd, digits: 2))")
        )
    }

    @Test("the comparison page takes the named runs in order and lists the items that flipped")
    func comparisonAndFlips() throws {
        let dir = temporaryDirectory("compare")
        let (store, runs) = try makeSweepStore(in: dir)
        let request = ReportRequest(
            title: "t", runs: runs, compared: [runs[5], runs[0]], index: try shippedDashboard("sweep"),
            runPage: try shippedDashboard("run"), comparePage: try shippedDashboard("compare"),
            out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        _ = try Report.write(request, store: store)
        let html = try String(contentsOf: dir.appendingPathComponent("report/compare.html"), encoding: .utf8)
        #expect(html.contains("<title>compare: \(runs[5].id) vs \(runs[0].id)</title>"))
        let flips = EvalFlip.between(try store.evals(run: runs[5].rowID, items: true), try store.evals(run: runs[0].rowID, items: true))
        let lost = flips.filter(\.before).count
        #expect(!flips.isEmpty)
        #expect(html.contains("\(lost) pass→fail</span>, <span class=\"pass\">\(flips.count - lost) fail→pass"))
        #expect(html.contains("dashed lines: the thresholds of gates/release.yaml"))
    }

    @Test("a second report into the same folder leaves no plots of the first behind")
    func rewritesCleanly() throws {
        let dir = temporaryDirectory("again")
        _ = try writeReport(dir)
        let stale = dir.appendingPathComponent("report/plots/old-1.svg")
        try "<svg/>".write(to: stale, atomically: true, encoding: .utf8)
        let (store, runs) = (
            try Store(path: dir.appendingPathComponent("harrow.db").path),
            try Store(path: dir.appendingPathComponent("harrow.db").path).runs(sweep: "night")
        )
        let request = ReportRequest(
            title: "t", runs: runs, index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        _ = try Report.write(request, store: store)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
    }

    @Test("a gate file that is not there is a warning and the bars are drawn without it")
    func missingGateWarns() throws {
        let dir = temporaryDirectory("gate")
        let (store, runs) = try makeSweepStore(in: dir)
        let request = ReportRequest(
            title: "t", runs: runs, index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: dir)
        let summary = try Report.write(request, store: store)
        #expect(summary.warnings == ["gates/release.yaml: no such gate file; 3H bars are drawn without its thresholds"])
    }
}

@Suite("report in a browser")
struct ReportBrowserTests {
    @Test("headless Chromium loads every page with no broken image and no script error, and the table sorts")
    func chromiumLoadsThePages() async throws {
        let dir = temporaryDirectory("browser")
        _ = try writeReport(dir)
        let report = dir.appendingPathComponent("report")
        let results = try await BrowserCheck.check(pages: try pages(report), click: "table.sortable th:nth-child(2)")
        #expect(results.count == (try pages(report)).count)
        for r in results {
            #expect(r.problems.isEmpty, "\(r)")
        }
        let index = try #require(results.first { $0.page.lastPathComponent == "index.html" })
        let sort = try #require(index.sort)
        // Rows come ranked by val loss, so the failed run is last; a click on "status" sorts it first.
        #expect(sort.header.hasPrefix("status"))
        #expect(sort.before.last == "failed")
        #expect(
            sort.after == ["3 succeeded", "failed"] + Array(repeating: "succeeded", count: sort.before.count - 2),
            "clicking the status header sorts the rows (numbers inside text in numeric order)")
    }

    /// The morning's first screen, 1400×900: the best run and the verdict counts are on it; typing in the filter and
    /// clicking a verdict count narrow the run table to the matching runs.
    @Test("the first screen holds the answer, and the filter and verdict counts narrow the table")
    func theFirstScreenAnswersAndTheFilterNarrows() async throws {
        let dir = temporaryDirectory("first-screen")
        _ = try writeReport(dir)
        let index = dir.appendingPathComponent("report/index.html")
        let probe = """
            const visible = () => [...doc.querySelectorAll('#runs tbody tr')].filter(r => r.offsetParent !== null).length;
            const bottom = sel => { const e = doc.querySelector(sel); return e ? e.getBoundingClientRect().bottom : -1; };
            const out = {best: bottom('p.best'), verdicts: bottom('p.verdicts'), all: visible()};
            const q = doc.querySelector('input.filter');
            q.value = 'overfitting'; q.dispatchEvent(new Event('input'));
            out.typed = visible();
            q.value = 'good_fit 0.0001'; q.dispatchEvent(new Event('input'));
            out.twoWords = visible();
            doc.querySelector('a[data-q="good_fit"]').click();
            out.clicked = visible();
            doc.querySelector('a.clear').click();
            out.cleared = visible();
            return out;
            """
        let r = try #require(try await BrowserCheck.check(pages: [index], probe: probe).first)
        #expect(r.problems.isEmpty, "\(r)")
        let p = r.probe
        #expect((p["best"] ?? -1) > 0 && (p["best"] ?? 999) <= 900 && (p["verdicts"] ?? -1) > 0 && (p["verdicts"] ?? 999) <= 900, "\(p)")
        // 8 runs, 3 of them seed repeats folded into one row: 6 rows; 2 overfitting, 3 good fit rows (one folded).
        #expect(p["all"] == 6 && p["typed"] == 2 && p["twoWords"] == 1 && p["clicked"] == 3 && p["cleared"] == 6, "\(p)")
    }

    /// The night users open in the morning, at 1,000 runs with 50 more that never started: the report is written
    /// (its time and size are printed), the first screen holds the best run and the verdict counts, the table shows
    /// the best 25 until "show all", the filter and a verdict count narrow it, and every image on the index loads.
    @Test("a 1,000-run night in headless Chromium")
    func aThousandRunNight() async throws {
        let dir = temporaryDirectory("overnight")
        let (store, runs) = try makeOvernightStore(in: dir, queued: 50)
        var request = ReportRequest(
            title: "sweep overnight", runs: runs, index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        request.method = "grid"
        let started = Date()
        let summary = try Report.write(request, store: store)
        let seconds = Date().timeIntervalSince(started)
        let files = FileManager.default.enumerator(atPath: request.out.path)!.compactMap { $0 as? String }
        let bytes = try files.reduce(0) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: request.out.path + "/" + $1)[.size] as? Int) ?? 0)
        }
        print(
            "1,000-run report: \(String(format: "%.1f", seconds)) s, \(bytes / 1_000_000) MB, \(summary.pages) pages, \(summary.charts) charts"
        )
        #expect(summary.runs == 1000 && summary.pages == 1003)
        let index = try String(contentsOf: request.out.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(index.contains("50 not started: run the sweep again to continue"))
        #expect(index.contains("lr explains"), "the learning rate drives these curves")
        let overfit = try store.runs(sweep: "overnight").filter { try store.diagnosis(run: $0.rowID)?.verdict == "overfitting" }.count
        let probe = """
            const visible = () => [...doc.querySelectorAll('#runs tbody tr')].filter(r => r.offsetParent !== null).length;
            const bottom = sel => { const e = doc.querySelector(sel); return e ? e.getBoundingClientRect().bottom : -1; };
            const out = {best: bottom('p.best'), verdicts: bottom('p.verdicts'), first: visible()};
            const all = doc.querySelector('button.all');
            if (all) { all.click(); out.all = visible(); all.click(); out.less = visible(); }
            doc.querySelector('a[data-q="overfitting"]').click();
            out.overfitting = visible();
            return out;
            """
        let results = try await BrowserCheck.check(pages: [request.out.appendingPathComponent("index.html")], probe: probe, timeout: 120)
        let r = try #require(results.first)
        #expect(r.problems.isEmpty, "\(r)")
        let p = r.probe
        #expect((p["best"] ?? 999) <= 900 && (p["verdicts"] ?? 999) <= 900 && (p["best"] ?? -1) > 0, "the first screen answers: \(p)")
        #expect(p["first"] == 25 && p["all"] == 1000 && p["less"] == 25, "\(p)")
        #expect(p["overfitting"] == Double(overfit) && overfit > 0, "\(p) against \(overfit)")
    }
}
