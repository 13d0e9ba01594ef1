import HarrowCore
import Sweep

/// Series against step, a line per run (the best `top` on the index, mean ± sd bands for seed repeats), thinned for
/// drawing, with the best step of a val series marked.
public struct CurvesPanel: Sendable, Equatable {
    public var title: String?
    /// The series drawn; a name ending in `*` stands for every matching series of the runs shown.
    public var metrics: [String]?
    public var top: Int?
    /// Points per line after thinning (default 400).
    public var points: Int?

    /// What a curves panel draws when it names no metrics.
    static let defaultMetrics = [TrainerContract.Metric.trainLoss, TrainerContract.Metric.valLoss]

    /// The series the panel asks for, patterns unexpanded: the report reads these from the store up front.
    var asked: [String] { metrics ?? Self.defaultMetrics }
}

extension CurvesPanel: PanelKind {
    static let name = "curves"
    static let options = ["metrics", "top", "points"]
    init(_ o: Panel.Options) { self.init(title: o.title, metrics: o.metrics, top: o.top, points: o.points) }
    var panel: Panel { .curves(self) }

    func render(in page: PanelContext) throws -> String {
        let scope = page.scope
        let all = page.groups
        // A key ending in `*` stands for every matching curve of the runs shown (`val/loss@*`: per task type).
        let asked = self.asked
        let keys = asked.flatMap { pattern -> [String] in
            guard pattern.hasSuffix("*") else { return [pattern] }
            let prefix = pattern.dropLast()
            return Set(all.flatMap { $0.members.flatMap { $0.curves.keys.filter { $0.hasPrefix(prefix) } } }).sorted()
        }
        let shown: [RunGroup]
        switch scope {
        case .index: shown = Array(all.prefix(top ?? 8))
        default: shown = all
        }
        let single = shown.count == 1
        var c = page.chart(self, asked.joined(separator: " and "))
        c.xLabel = "step"
        c.yLabel = keys.count == 1 ? keys[0] : "loss"
        c.keyOutside = !single
        if !single { c.width = 760 }
        let points = self.points ?? 400
        var drawn = 0, bestMarked = false
        var yLow = Double.infinity, yHigh = -Double.infinity
        for (gi, g) in shown.enumerated() {
            for (ki, key) in keys.enumerated() {
                let raw = g.members.compactMap { $0.curves[key] }
                guard !raw.isEmpty else { continue }
                let color = single ? ki : gi
                // Several runs: one key entry each (on the last series); line style tells the series apart.
                let title = single ? key : ki == keys.count - 1 ? g.label : ""
                let dashed = !single && ki < keys.count - 1
                var steps: [Double], mean: [Double]
                if raw.count > 1 {
                    let m = SeedGroups.meanCurve(raw)
                    steps = m.steps.map(Double.init)
                    mean = m.mean
                    let keep = Downsample.lttb(x: steps, y: mean, threshold: points)
                    c.elements.append(
                        .band(
                            x: keep.map { steps[$0] }, low: keep.map { mean[$0] - m.sd[$0] },
                            high: keep.map { mean[$0] + m.sd[$0] }, color: color))
                } else {
                    steps = raw[0].steps.map(Double.init)
                    mean = raw[0].values
                }
                let keep = Downsample.lttb(x: steps, y: mean, threshold: points)
                c.elements.append(.line(title: title, x: keep.map { steps[$0] }, y: keep.map { mean[$0] }, color: color, dashed: dashed))
                drawn += 1
                // The first tenth of a loss curve is the fall from initialisation; it sets no upper bound, so the
                // part that tells fits apart fills the plot.
                let settled = mean.dropFirst(mean.count / 10).filter(\.isFinite)
                yLow = min(yLow, settled.min() ?? yLow)
                yHigh = max(yHigh, settled.max() ?? yHigh)
                // The best step: where val loss was lowest, the earliest of equals; one run's val/loss marks the
                // run's best step (`RunSnapshot.bestStep`), the step its diagnosis and `runs` name.
                if key.hasPrefix("val/"), Metric.lowerIsBetter(key), var at = mean.indices.min(by: { mean[$0] < mean[$1] }) {
                    if raw.count == 1, key == TrainerContract.Metric.valLoss, let best = g.lead.bestStep,
                        let i = raw[0].steps.firstIndex(of: best)
                    {
                        at = i
                    }
                    c.elements.append(.points(title: bestMarked ? "" : "best step", x: [steps[at]], y: [mean[at]], color: color, size: 1.4))
                    bestMarked = true
                }
            }
        }
        var html = page.heading(self, asked.joined(separator: " and "))
        if case .index = scope, shown.count < all.count {
            html += page.note(
                "the best \(shown.count) of \(all.count) configurations by \(HTML.escape(page.metric)); "
                    + "every run has its own page")
        }
        if drawn == 0 { return html + page.note("no \(HTML.escape(asked.joined(separator: " or "))) logged") }
        if keys.allSatisfy(Metric.lowerIsBetter), yHigh > yLow {
            let pad = (yHigh - yLow) * 0.12
            c.yRange = (max(0, yLow - pad), yHigh + pad)
        }
        if shown.contains(where: { $0.members.count > 1 }) { html += page.note("seed repeats: mean line, ± sd band") }
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
