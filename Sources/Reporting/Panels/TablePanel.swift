import HarrowCore
import Sweep

/// The runs with status, verdict, parameters and metrics, sortable by any column; on the index seed repeats are
/// folded to mean ± sd, with a filter and "show all" past the best `indexRows`; on the compare page, deltas against
/// the first run.
public struct TablePanel: Sendable, Equatable {
    public var title: String?
    public var params: [String]?
    public var metrics: [String]?
    public var top: Int?

    /// Rows the index's run table shows before "show all".
    static let indexRows = 25
}

extension TablePanel: PanelKind {
    static let name = "table"
    static let options = ["params", "metrics", "top"]
    init(_ o: Panel.Options) { self.init(title: o.title, params: o.params, metrics: o.metrics, top: o.top) }
    var panel: Panel { .table(self) }

    func render(in page: PanelContext) -> String {
        let scope = page.scope, metric = page.metric
        let all = page.groups
        let shown = Array(all.prefix(top ?? all.count))
        let runs = scope.runs
        let params = self.params ?? page.varyingParams(runs)
        let candidates = [metric, "train/loss:last"] + ValueNames.dimensions + ["total", "general", "forgetting"]
        var metrics = self.metrics ?? candidates.filter { m in runs.contains { $0.value(m) != nil } }
        if self.metrics == nil { metrics = metrics.reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
        let reference = shown.first
        var rows: [[HTML.Cell]] = []
        for (i, g) in shown.enumerated() {
            var row: [HTML.Cell] = [HTML.Cell(html: runLinks(g, page), sortValue: nil, cls: nil)]
            let statuses = Dictionary(grouping: g.members, by: { $0.run.status.rawValue })
            row.append(
                g.members.count == 1
                    ? .text(g.lead.run.status.rawValue, cls: g.lead.run.status.rawValue)
                    : .text(statuses.map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")))
            let verdicts = g.members.compactMap { $0.diagnosis?.verdict }
            let verdict = Set(verdicts).sorted().joined(separator: ", ")
            row.append(.text(verdict.isEmpty ? "–" : verdict, cls: Set(verdicts).count == 1 ? verdicts[0] : nil))
            for k in params { row.append(page.cellFor(param: g.lead.params[k])) }
            for m in metrics {
                guard let s = g.spread(m) else { row.append(.number(nil)); continue }
                var html = Format.number(s.mean)
                if s.n > 1 {
                    html += " ± " + Format.number(s.sd, digits: 2)
                } else if let e = g.lead.stderr(m), e > 0 {
                    html += "<small> ± \(Format.number(e, digits: 2))</small>"
                }
                if case .compare = scope, i > 0, let r = reference?.spread(m) {
                    let d = s.mean - r.mean
                    let better = Metric.lowerIsBetter(m) ? d < 0 : d > 0
                    let cls = d == 0 ? "" : better ? "pass" : "fail"
                    html += " <small class=\"\(cls)\">(\(d >= 0 ? "+" : "")\(Format.number(d, digits: 3)))</small>"
                }
                row.append(HTML.Cell(html: html, sortValue: s.mean, cls: "num"))
            }
            rows.append(row)
        }
        var html = page.heading(self, "Runs")
        let folded = all.filter { $0.members.count > 1 }.count
        var notes: [String] = []
        // On the index every row is written, the best `indexRows` shown: a filter and a toggle show the rest.
        let folds = page.isIndex && top == nil && shown.count > Self.indexRows
        if shown.count < all.count { notes.append("the best \(shown.count) of \(all.count) by \(HTML.escape(metric))") }
        if folds { notes.append("the best \(Self.indexRows) of \(shown.count) by \(HTML.escape(metric)) shown") }
        if folded > 0 { notes.append("\(folded) configurations repeated over seeds: mean ± sd, members one click away") }
        if case .compare = scope { notes.append("deltas against the first run") }
        if !notes.isEmpty { html += page.note(notes.joined(separator: "; ")) }
        guard page.isIndex else { return html + HTML.table(header: ["run", "status", "verdict"] + params + metrics, rows: rows) }
        html += "<p><input type=\"search\" class=\"filter\" data-table=\"runs\" placeholder=\"filter: run, parameter, verdict\">"
        if folds {
            html +=
                "<button class=\"all\" data-table=\"runs\" data-more=\"show all \(shown.count)\" "
                + "data-less=\"show the best \(Self.indexRows)\">show all \(shown.count)</button>"
        }
        html += "<span class=\"count\" data-table=\"runs\"></span></p>"
        return html
            + HTML.table(
                header: ["run", "status", "verdict"] + params + metrics, rows: rows, id: "runs",
                rowClass: { folds && $0 >= Self.indexRows ? "more" : nil })
    }

    /// A row's run: its link and tags, or the seed repeats folded under the first.
    private func runLinks(_ g: RunGroup, _ page: PanelContext) -> String {
        let renderer = page.renderer, prefix = page.prefix
        guard g.members.count > 1 else {
            return renderer.link(g.lead, prefix: prefix) + g.lead.tags.map { " <small>\(HTML.escape($0))</small>" }.joined()
        }
        let members = g.members.map { r in
            renderer.link(r, prefix: prefix) + (r.params[SeedGroups.seedKey].map { " seed \(HTML.escape($0.display))" } ?? "")
        }
        return "<details><summary>\(renderer.link(g.lead, prefix: prefix)) ×\(g.members.count)</summary>"
            + "\(members.joined(separator: "<br>"))</details>"
    }
}
