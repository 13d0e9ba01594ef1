import Foundation

/// Parallel coordinates: an axis per varying parameter (a learning-rate-like span on a log axis, categories at
/// their positions) and one for the metric, a line per run, coloured by the metric (dark: better).
public struct ParallelPanel: Sendable, Equatable {
    public var title: String?
    /// The axes (default the parameters that vary, at most 10).
    public var params: [String]?
}

extension ParallelPanel: PanelKind {
    static let name = "parallel"
    static let options = ["params"]
    init(_ o: Panel.Options) { self.init(title: o.title, params: o.params) }
    var panel: Panel { .parallel(self) }

    func render(in page: PanelContext) throws -> String {
        let metric = page.metric, lowerIsBetter = page.renderer.lowerIsBetter
        // The best drawn last, on top.
        let runs = page.scope.runs.filter { $0.value(metric) != nil }
            .sorted { lowerIsBetter ? $0.value(metric)! > $1.value(metric)! : $0.value(metric)! < $1.value(metric)! }
        let names = Array((params ?? page.varyingParams(runs)).prefix(10))
        var html = page.heading(self, "Parameters and \(metric), one line per run")
        guard runs.count >= 2, !names.isEmpty else {
            return html + page.note("too few runs with \(HTML.escape(metric)) and a varying parameter")
        }
        var axes: [Chart.ParallelAxis] = []
        for name in names {
            let values = runs.map { $0.params[name] }
            let gs = runs.map { RunGroup(members: [$0]) }
            if values.allSatisfy({ $0?.plotted != nil }) {
                let xs = values.map { $0!.plotted! }
                let distinct = Array(Set(xs)).sorted()
                let log = (distinct.first ?? 0) > 0 && (distinct.last ?? 0) / (distinct.first ?? 1) >= 20
                let at = { (x: Double) in log ? Foundation.log10(x) : x }
                let tics = distinct.count <= 10 ? distinct.map { (label: Format.number($0), at: at($0)) } : nil
                axes.append(.init(label: name, values: xs.map(at), tics: tics))
            } else {
                let levels = page.levels(name, gs)
                let index = values.map { v in Double(levels.firstIndex(of: v?.level) ?? 0) }
                let tics = levels.enumerated().map { (label: page.label($0.element), at: Double($0.offset)) }
                axes.append(.init(label: name, values: index, tics: tics))
            }
        }
        let scores = runs.map { $0.value(metric)! }
        axes.append(.init(label: metric, values: scores))
        var c = page.chart(self, "parameters and \(metric)")
        c.width = 980
        c.height = 380
        c.paletteLabel = metric
        // Dark blue for the best runs, orange for the worst, whichever way the metric is better.
        let stops = ["'#08306b'", "'#4292c6'", "'#fdae6b'", "'#d94801'"]
        let ordered = lowerIsBetter ? stops : stops.reversed()
        c.palette = "(" + ordered.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ") + ")"
        c.elements.append(.parallel(axes: axes, color: scores))
        html += page.note("\(runs.count) runs; dark lines are the best by \(HTML.escape(metric))")
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
