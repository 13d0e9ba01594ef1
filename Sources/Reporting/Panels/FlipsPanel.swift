import Tracking

/// Eval items whose result changed between the first run and each other (the two best on the index): counts by
/// evalset, dimension and task type, then the items, pass→fail first.
public struct FlipsPanel: Sendable, Equatable {
    public var title: String?
    /// Items listed per pair of runs (default 20).
    public var limit: Int?
}

extension FlipsPanel: PanelKind {
    static let name = "flips"
    static let options = ["limit"]
    init(_ o: Panel.Options) { self.init(title: o.title, limit: o.limit) }
    var panel: Panel { .flips(self) }

    func render(in page: PanelContext) -> String {
        let renderer = page.renderer, prefix = page.prefix
        let runs: [ReportRun]
        switch page.scope {
        case .index(let r): runs = Array(r.prefix(2))
        case .compare(let r): runs = r
        case .run: runs = []
        }
        var html = page.heading(self, "Eval items that flipped")
        guard runs.count > 1 else { return html + page.note("flips need two runs") }
        let limit = self.limit ?? 20
        let reference = runs[0].evalItems ?? []
        for other in runs.dropFirst() {
            let flips = EvalFlip.between(reference, other.evalItems ?? [])
            let lost = flips.filter(\.before).count
            html +=
                "<h3>\(renderer.link(runs[0], prefix: prefix)) → \(renderer.link(other, prefix: prefix)): "
                + "<span class=\"fail\">\(lost) pass→fail</span>, <span class=\"pass\">\(flips.count - lost) fail→pass</span></h3>\n"
            guard !flips.isEmpty else {
                html += page.note(reference.isEmpty ? "the reference run has no per-item results" : "no item changed")
                continue
            }
            let byGroup = Dictionary(grouping: flips, by: { "\($0.evalset)\u{1}\($0.dimension)\u{1}\($0.taskType)" })
            let groupRows: [[HTML.Cell]] = byGroup.keys.sorted().map { k in
                let parts = k.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init)
                let list = byGroup[k]!
                let l = list.filter(\.before).count
                return [.text(parts[0]), .text(parts[1]), .text(parts[2]), .number(Double(l)), .number(Double(list.count - l))]
            }
            html += HTML.table(header: ["evalset", "dimension", "task_type", "pass→fail", "fail→pass"], rows: groupRows)
            let items = flips.sorted { $0.before && !$1.before }.prefix(limit)
            html += HTML.table(
                header: ["change", "item", "dimension", "task_type", "prompt"],
                rows: items.map { f in
                    let prompt = f.prompt.map { $0.count > 220 ? String($0.prefix(220)) + "…" : $0 } ?? ""
                    return [
                        .text(f.change, cls: f.before ? "fail" : "pass"), .text(f.item), .text(f.dimension), .text(f.taskType),
                        .text(prompt)
                    ]
                })
            if flips.count > limit {
                let command = "harrow compare \(HTML.escape(runs[0].id)) \(HTML.escape(other.id))"
                html += page.note("\(flips.count - limit) more: <code>\(command)</code>")
            }
        }
        return html
    }
}
