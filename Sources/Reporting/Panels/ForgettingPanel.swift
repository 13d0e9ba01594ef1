/// The general-score change against the starting checkpoint, by one parameter (`by`, default `base_model`) and
/// along another (`x`, default `mix_ratio`), points averaging the runs at each setting.
public struct ForgettingPanel: Sendable, Equatable {
    public var title: String?
    public var x: String?
    public var by: String?
}

extension ForgettingPanel: PanelKind {
    static let name = "forgetting"
    static let options = ["x", "by"]
    init(_ o: Panel.Options) { self.init(title: o.title, x: o.x, by: o.by) }
    var panel: Panel { .forgetting(self) }

    func render(in page: PanelContext) throws -> String {
        let x = self.x ?? "mix_ratio", by = self.by ?? "base_model"
        let runs = page.scope.runs.filter { $0.value("forgetting") != nil }
        var html = page.heading(self, "Forgetting: general-score change by \(by) and \(x)")
        guard !runs.isEmpty else {
            return html + page.note("no general-set scores: evaluate on the general set (eval: [general]) to see forgetting")
        }
        var c = page.chart(self, "general-score change by \(by) and \(x)")
        c.xLabel = x
        c.yLabel = "general − starting checkpoint"
        let byLevels = page.levels(by, runs.map { RunGroup(members: [$0]) })
        var xs: [Double] = []
        for (bi, level) in byLevels.enumerated() {
            let members = runs.filter { $0.params[by]?.level == level }
            let points = Dictionary(grouping: members, by: { $0.params[x]?.plotted ?? 0 })
                .compactMap { key, rs in Spread(rs.compactMap { $0.value("forgetting") }).map { (key, $0) } }.sorted { $0.0 < $1.0 }
            guard !points.isEmpty else { continue }
            xs += points.map(\.0)
            c.elements.append(.line(title: "\(by) = \(page.label(level))", x: points.map(\.0), y: points.map(\.1.mean), color: bi))
            c.elements.append(
                .points(
                    title: "", x: points.map(\.0), y: points.map(\.1.mean), color: bi,
                    yError: points.map(\.1.sd), size: 1.0))
        }
        if let lo = xs.min(), let hi = xs.max() {
            let pad = max((hi - lo) * 0.08, 0.02)
            c.xRange = (lo - pad, hi + pad)
            c.segments.append(Chart.Segment(x1: lo - pad, y1: 0, x2: hi + pad, y2: 0, color: "#888888", label: nil))
        }
        let ys = runs.compactMap { $0.value("forgetting") }
        if let lo = ys.min(), let hi = ys.max() {
            let pad = max((max(hi, 0) - min(lo, 0)) * 0.1, 0.01)
            c.yRange = (min(lo, 0) - pad, max(hi, 0) + pad)
        }
        html += page.note(
            "below zero: the run scores worse on general data than the checkpoint it started from; "
                + "points average the runs at that setting (± sd)")
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
