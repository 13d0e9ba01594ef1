import HarrowCore
import Sweep

/// Which parameter mattered: a sentence naming it, then a small chart per parameter (strongest first, `top` of
/// them, default 6) of the metric's mean ± standard error at each of its values. A one-change-at-a-time design is
/// read against its baseline instead.
public struct EffectsPanel: Sendable, Equatable {
    public var title: String?
    public var params: [String]?
    /// Parameters drawn (default 6).
    public var top: Int?
}

extension EffectsPanel: PanelKind {
    static let name = "effects"
    static let options = ["params", "top"]
    init(_ o: Panel.Options) { self.init(title: o.title, params: o.params, top: o.top) }
    var panel: Panel { .effects(self) }

    func render(in page: PanelContext) throws -> String {
        let metric = page.metric, renderer = page.renderer
        if let reading = Ablation.oneAtATime(page.scope.runs.map { $0.params.mapValues(\.plain) }) { return try oneAtATime(reading, page) }
        let runs = page.scope.runs.filter { $0.value(metric) != nil }
        let names = params ?? page.varyingParams(runs)
        var html = page.heading(self, "Which parameter mattered")
        let rows = runs.map { r in (params: r.params, value: r.value(metric)!) }
        let grid = renderer.grid
        let analysis = Effects.analyze(rows, parameters: names, metric: metric, grid: grid)
        guard runs.count >= 3, let sentence = Effects.sentence(analysis, lowerIsBetter: renderer.lowerIsBetter) else {
            return html + page.note("too few runs with \(HTML.escape(metric)) and a varying parameter to tell")
        }
        html += "<p class=\"answer\">\(HTML.escape(sentence)).</p>\n"
        let share =
            grid
            ? "share of variance from a one-way ANOVA per parameter"
            : "share: squared Spearman rank correlation (η² for categories)"
        html += page.note(share + " over \(analysis.runs) runs; points are means over the other parameters, bars one standard error")
        html += "<div class=\"multiples\">"
        for (i, e) in analysis.effects.prefix(top ?? 6).enumerated() {
            var c = page.chart(self, e.parameter, suffix: "-\(i)")
            c.title = "\(e.parameter): \(Int((e.share * 100).rounded()))%"
            c.width = 300
            c.height = 220
            c.xLabel = e.parameter
            c.yLabel = metric
            c.xTics = e.levels.enumerated().map { (page.label($0.element.value), Double($0.offset)) }
            c.xRange = (-0.5, Double(e.levels.count) - 0.5)
            c.elements.append(
                .points(
                    title: "", x: e.levels.indices.map(Double.init), y: e.levels.map(\.mean), color: 0,
                    yError: e.levels.map { $0.stderr ?? 0 }, size: 1.0))
            html += try renderer.figure(c, prefix: page.prefix)
        }
        return html + "</div>"
    }

    /// Which change mattered in a one-change-at-a-time design: each run against the baseline, the change it made,
    /// its effect on the metric, and its effect on the 3H total with the 95% interval of a paired bootstrap over the
    /// items both answered (when their items were read), said beyond or within noise. Shares of variance would mix
    /// the baseline with the extremes of other axes.
    private func oneAtATime(_ reading: Ablation.Reading, _ page: PanelContext) throws -> String {
        let metric = page.metric, renderer = page.renderer
        let runs = page.scope.runs, base = runs[reading.baseline]
        var html = page.heading(self, "Which change mattered")
        func outcomes(_ r: ReportRun) -> ItemOutcomes? {
            guard let e = (r.evalItems ?? []).first(where: { $0.status == "succeeded" && $0.isMain }) else { return nil }
            return ItemOutcomes(e.items, of: e)
        }
        let baseItems = outcomes(base)
        struct Row { var index: Int; var label: String; var delta: Double?; var total: PairedSummary? }
        let rows = reading.order.filter { $0 != reading.baseline && !reading.changes[$0].isEmpty }.map { i -> Row in
            let label = reading.changes[i].map { "\($0.name) \($0.from) → \($0.to)" }.joined(separator: ", ")
            let delta = runs[i].value(metric).flatMap { v in base.value(metric).map { v - $0 } }
            let total = baseItems.flatMap { b in outcomes(runs[i]).flatMap { Paired.weightedTotal(from: b, to: $0)?.summary } }
            return Row(index: i, label: label, delta: delta, total: total)
        }
        guard !rows.isEmpty else { return html + page.note("no run changes anything from the baseline") }
        // The sentence: the largest effect on the metric, then the changes whose effect on the total is beyond noise.
        let better = { (d: Double) in renderer.lowerIsBetter ? d < 0 : d > 0 }
        var sentence = "One change at a time from the baseline \(base.id)"
        if let top = rows.filter({ $0.delta != nil }).max(by: { abs($0.delta!) < abs($1.delta!) }) {
            sentence += ": \(top.label) moved \(metric) most (\(Format.signed(top.delta!)), \(better(top.delta!) ? "better" : "worse"))"
        }
        let beyond = rows.filter { $0.total?.significant == true }
        if rows.contains(where: { $0.total != nil }) {
            sentence +=
                beyond.isEmpty
                ? "; no change moved the 3H total beyond noise"
                : "; beyond noise on the 3H total: "
                    + beyond.map { "\($0.label) (\(Format.signed($0.total!.delta)))" }.joined(separator: ", ")
        }
        html += "<p class=\"answer\">\(HTML.escape(sentence)).</p>\n"
        html += page.note(
            "each run against the baseline; the total's 95% interval is a paired bootstrap over the items both answered. "
                + "\(HTML.escape(metric)) has one run per change, so no interval: repeat seeds to measure its noise")
        html +=
            "<table><thead><tr><th>change</th><th>run</th><th>Δ \(HTML.escape(metric))</th>"
            + "<th>Δ 3H total (95%)</th><th></th></tr></thead><tbody>\n"
        for r in rows {
            let t = r.total
            let interval = t.map { "\(Format.signed($0.delta)) [\(Format.signed($0.low)), \(Format.signed($0.high))]" } ?? "–"
            let word = t.map { $0.significant ? "beyond noise (\(Paired.formatP($0.p)))" : "within noise" } ?? ""
            html +=
                "<tr><td>\(HTML.escape(r.label))</td><td>\(renderer.link(runs[r.index], prefix: page.prefix))</td>"
                + "<td>\(r.delta.map(Format.signed) ?? "–")</td><td>\(interval)</td><td>\(HTML.escape(word))</td></tr>\n"
        }
        html += "</tbody></table>\n"
        // The total's effects as points with their intervals, one column per change.
        let charted = rows.filter { $0.total != nil }
        if !charted.isEmpty {
            var c = page.chart(self, "effect on the 3H total against the baseline")
            c.width = 980
            c.height = 400
            c.yLabel = "Δ 3H total (95% interval)"
            c.xTics = charted.enumerated().map { ($0.element.label, Double($0.offset)) }
            c.xRange = (-0.5, Double(charted.count) - 0.5)
            c.elements.append(.line(title: "", x: [-0.5, Double(charted.count) - 0.5], y: [0, 0], color: 9, dashed: true))
            c.elements.append(
                .points(
                    title: "", x: charted.indices.map(Double.init), y: charted.map { $0.total!.delta },
                    color: 0, yError: charted.map { ($0.total!.high - $0.total!.low) / 2 }, size: 1.0))
            html += try renderer.figure(c, prefix: page.prefix)
        }
        return html
    }
}
