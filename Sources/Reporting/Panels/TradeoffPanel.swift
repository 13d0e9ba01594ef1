import HarrowCore

/// The trade-off fine-tuners face: what training gained in-domain (`y`, default `gain`: the 3H total over the
/// starting model's; `total` when no gain is known) against forgetting on the general set (`x`, default
/// `forgetting`: general score minus the starting model's), both better when higher, each with its 95% interval
/// from the paired test against the starting model. A run whose gain is within noise of zero did not learn: it
/// is drawn apart and kept off the front, where forgetting nothing would otherwise put it. The runs no other
/// run beats on both form the Pareto front, drawn and labelled.
public struct TradeoffPanel: Sendable, Equatable {
    public var title: String?
    public var x: String?
    public var y: String?
}

extension TradeoffPanel: PanelKind {
    static let name = "tradeoff"
    static let options = ["x", "y"]
    init(_ o: Panel.Options) { self.init(title: o.title, x: o.x, y: o.y) }
    var panel: Panel { .tradeoff(self) }

    func render(in page: PanelContext) throws -> String {
        let renderer = page.renderer, prefix = page.prefix
        let x = self.x ?? "forgetting"
        let y = self.y ?? (page.scope.runs.contains { $0.value("gain") != nil } ? "gain" : "total")
        let runs = page.scope.runs.filter { $0.value(x) != nil && $0.value(y) != nil }
        var html = page.heading(self, "\(y) against \(x): the trade-off")
        guard !runs.isEmpty else {
            return html
                + page.note(
                    "needs runs evaluated on both: an in-domain evalset (\(HTML.escape(y))) "
                        + "and the general set (\(HTML.escape(x)))")
        }
        // Gains are tested against the starting model; a gain within noise of zero (or below it) learnt nothing.
        let learnt = runs.map { r -> Bool in
            guard y.hasPrefix("gain"), let t = r.againstStart[y] else { return true }
            return t.significant && t.delta > 0
        }
        let xs = runs.map { $0.value(x)! }, ys = runs.map { $0.value(y)! }
        let candidates = runs.indices.filter { learnt[$0] }
        let front = Pareto.front(x: candidates.map { xs[$0] }, y: candidates.map { ys[$0] }).map { candidates[$0] }
        func halfWidth(_ r: ReportRun, _ name: String) -> Double { r.againstStart[name].map { ($0.high - $0.low) / 2 } ?? 0 }
        var c = page.chart(self, "\(y) against \(x)")
        c.xLabel = x + (x == "forgetting" ? " (general score − starting model; right: less forgotten)" : "")
        c.yLabel = y + (y == "gain" ? " (3H total − starting model; up: learnt more)" : "")
        // The front sits at the top right, where a legend inside the chart would hide it.
        c.keyOutside = true
        let learning = runs.indices.filter { learnt[$0] }, idle = runs.indices.filter { !learnt[$0] }
        c.elements.append(
            .points(
                title: "runs (bars: 95% interval)", x: learning.map { xs[$0] }, y: learning.map { ys[$0] }, color: 0,
                yError: learning.map { halfWidth(runs[$0], y) }, size: 0.8))
        if !idle.isEmpty {
            c.elements.append(
                .points(
                    title: "did not learn (gain within noise)", x: idle.map { xs[$0] }, y: idle.map { ys[$0] }, color: 9,
                    yError: idle.map { halfWidth(runs[$0], y) }, size: 0.8))
        }
        if !front.isEmpty {
            c.elements.append(.line(title: "Pareto front", x: front.map { xs[$0] }, y: front.map { ys[$0] }, color: 2))
            c.elements.append(.points(title: "", x: front.map { xs[$0] }, y: front.map { ys[$0] }, color: 2, size: 1.2))
            // Each name just above its point.
            let lift = ((ys.max() ?? 0) - (ys.min() ?? 0)) * 0.06
            c.elements.append(.labels(x: front.map { xs[$0] }, y: front.map { ys[$0] + lift }, text: front.map { runs[$0].id }))
        }
        html += page.note(
            "\(front.count) of \(runs.count) runs on the front: none of the others beats them on both"
                + (front.isEmpty ? "" : "; " + front.map { renderer.link(runs[$0], prefix: prefix) }.joined(separator: ", ")))
        if !idle.isEmpty {
            html += page.note(
                "did not learn (\(HTML.escape(y)) within noise of the starting model, kept off the front): "
                    + idle.map { renderer.link(runs[$0], prefix: prefix) }.joined(separator: ", "))
        }
        return html + (try renderer.figure(c, prefix: prefix))
    }
}
