import HarrowCore
import Sweep
import Tracking

/// One panel on one page: the runs it shows and what every kind of panel draws with.
struct PanelContext {
    let renderer: Renderer
    let scope: Scope
    let prefix: String
    let chartBase: String

    var metric: String { renderer.metric }

    func heading(_ p: some PanelKind, _ fallback: String) -> String { "<h2>\(HTML.escape(p.title ?? fallback))</h2>\n" }
    func note(_ text: String) -> String { "<p class=\"note\">\(text)</p>\n" }
    func chart(_ p: some PanelKind, _ title: String, suffix: String = "") -> Chart {
        Chart(output: "\(chartBase)\(suffix).svg", title: p.title ?? title)
    }

    /// Rows or lines of the page: seed repeats folded together on the index (best first), each run alone elsewhere.
    let groups: [RunGroup]

    static func groups(_ scope: Scope, metric: String, lowerIsBetter: Bool) -> [RunGroup] {
        switch scope {
        case .index(let runs): return Metric.rank(Renderer.groups(runs), lowerIsBetter: lowerIsBetter) { $0.spread(metric)?.mean }
        case .compare(let runs): return runs.map { RunGroup(members: [$0]) }
        case .run(let run): return [RunGroup(members: [run])]
        }
    }

    var isIndex: Bool { if case .index = scope { return true } else { return false } }

    /// The run of a run page.
    var one: ReportRun { scope.runs[0] }

    /// Parameters whose values differ between the runs (seed aside on the index, where repeats are folded).
    func varyingParams(_ runs: [ReportRun]) -> [String] {
        RunSnapshot.differingParams(runs).filter { !(isIndex && $0 == SeedGroups.seedKey) }
    }

    /// A parameter's value in a table cell, sorting as a number when it is one.
    func cellFor(param: ParamValue?) -> HTML.Cell {
        guard let param else { return .number(nil) }
        if let n = param.number { return HTML.Cell(html: HTML.escape(param.display), sortValue: n, cls: "num") }
        return .text(param.display)
    }

    /// Distinct values of a parameter (`nil` where a run lacks it), numbers in numeric order, then text.
    func levels(_ name: String, _ gs: [RunGroup]) -> [ParamValue?] {
        let values = Set(gs.map { $0.lead.params[name]?.level })
        return values.sorted { a, b in
            switch (a?.number, b?.number) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return (a?.display ?? "–") < (b?.display ?? "–")
            }
        }
    }

    func label(_ level: ParamValue?) -> String { level?.display ?? "–" }
}
