/// One run's evaluations: each evalset's total (against the starting checkpoint when known), then its scores by
/// dimension and task type.
public struct ScoresPanel: Sendable, Equatable {
    public var title: String?
}

extension ScoresPanel: PanelKind {
    static let name = "scores"
    static let options: [String] = []
    init(_ o: Panel.Options) { self.init(title: o.title) }
    var panel: Panel { .scores(self) }

    func render(in page: PanelContext) -> String {
        let one = page.one
        var html = page.heading(self, "Eval scores")
        guard !one.evals.isEmpty else {
            return html + page.note("not evaluated: <code>harrow eval \(HTML.escape(one.id)) --evalset evalsets/…</code>")
        }
        for e in one.evals {
            var line = "<h3>\(HTML.escape(e.evalset)) · \(HTML.escape(e.status))"
            if let t = e.total {
                line += " · total \(Format.number(t, digits: 3))" + (e.totalStderr.map { " ± \(Format.number($0, digits: 2))" } ?? "")
            }
            if let t = e.total, let b = e.baseline {
                let d = t - b
                line +=
                    " · <span class=\"\(d < 0 ? "fail" : "pass")\">\(d >= 0 ? "+" : "")\(Format.number(d, digits: 3))"
                    + " vs starting checkpoint</span>"
            }
            html += line + "</h3>\n"
            if let err = e.error { html += "<pre>\(HTML.escape(err))</pre>\n" }
            html += HTML.table(
                header: ["dimension", "task_type", "n", "acc", "± stderr", "acc_norm"],
                rows: e.groups.map { g in
                    [
                        .text(g.dimension), .text(g.taskType.isEmpty ? "(all)" : g.taskType), .number(Double(g.n)),
                        .number(g.acc, digits: 3),
                        .number(g.accStderr, digits: 2), .number(g.accNorm, digits: 3)
                    ]
                })
        }
        return html
    }
}
