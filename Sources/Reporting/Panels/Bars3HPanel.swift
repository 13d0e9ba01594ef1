import HarrowCore

/// Helpful, honest and harmless per run (mean ± sd of seed repeats, else ± stderr), with a gate's thresholds drawn.
public struct Bars3HPanel: Sendable, Equatable {
    public var title: String?
    /// The dimensions drawn (default the three).
    public var metrics: [String]?
    /// A gate file whose thresholds on these dimensions are drawn.
    public var gate: String?
    public var top: Int?
}

extension Bars3HPanel: PanelKind {
    static let name = "bars3h"
    static let options = ["metrics", "gate", "top"]
    init(_ o: Panel.Options) { self.init(title: o.title, metrics: o.metrics, gate: o.gate, top: o.top) }
    var panel: Panel { .bars3h(self) }

    func render(in page: PanelContext) throws -> String {
        let dims = metrics ?? ValueNames.dimensions
        var shown = page.groups.filter { g in dims.contains { g.spread($0) != nil } }
        if case .index = page.scope { shown = Array(shown.prefix(top ?? 6)) }
        var html = page.heading(self, "3H scores")
        guard !shown.isEmpty else {
            if page.scope.runs.contains(where: { $0.evals.contains { $0.isJudged && $0.status == "succeeded" } }) {
                return html + page.note("no choice or check evalset scored: the judged replies are in the usability panel")
            }
            return html
                + page.note(
                    "no evals yet: <code>harrow eval RUN --evalset evalsets/…</code> "
                        + "or an <code>eval:</code> block in the experiment")
        }
        var c = page.chart(self, "3H scores" + (gate.map { " with \($0) thresholds" } ?? ""))
        c.xTics = dims.enumerated().map { ($0.element, Double($0.offset)) }
        c.xRange = (-0.5, Double(dims.count) - 0.5)
        c.yRange = (0, 1.08)
        c.yLabel = "accuracy"
        c.keyOutside = shown.count > 1
        let n = Double(shown.count), width = 0.8 / n
        for (j, g) in shown.enumerated() {
            var xs: [Double] = [], ys: [Double] = [], es: [Double] = []
            for (d, dim) in dims.enumerated() {
                guard let s = g.spread(dim) else { continue }
                xs.append(Double(d) + (Double(j) - (n - 1) / 2) * width)
                ys.append(s.mean)
                es.append(s.n > 1 ? s.sd : g.lead.stderr(dim) ?? 0)
            }
            c.elements.append(
                .boxes(
                    title: shown.count == 1 ? "score ± stderr" : g.label, x: xs, y: ys, width: width * 0.92, color: j,
                    yError: es))
        }
        if let path = gate, let rules = try page.renderer.gate(path) {
            for t in rules.thresholds {
                guard let d = dims.firstIndex(of: t.metric) else { continue }
                for (bound, word) in [(t.min, "min"), (t.max, "max")] {
                    guard let b = bound else { continue }
                    c.segments.append(
                        Chart.Segment(
                            x1: Double(d) - 0.46, y1: b, x2: Double(d) + 0.46, y2: b, color: "#c62828",
                            label: "\(word) \(Format.number(b))"))
                }
            }
            html += page.note("dashed lines: the thresholds of \(HTML.escape(path))")
        }
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
