import HarrowCore

/// A metric against a parameter (or another metric), a point per configuration (mean ± sd of seed repeats),
/// coloured by a third parameter; a learning-rate-like span on a log axis.
public struct ScatterPanel: Sendable, Equatable {
    public var title: String?
    public var x: String?
    public var y: String?
    public var color: String?
    /// Log x axis: nil decides from the data (positive values spanning 20× or more).
    public var logX: Bool?
}

extension ScatterPanel: PanelKind {
    static let name = "scatter"
    static let options = ["x", "y", "color", "log_x"]
    static let required = ["x", "y"]
    init(_ o: Panel.Options) { self.init(title: o.title, x: o.x, y: o.y, color: o.color, logX: o.logX) }
    var panel: Panel { .scatter(self) }

    func render(in page: PanelContext) throws -> String {
        let x = self.x!, y = self.y!
        let gs = page.groups
        var c = page.chart(self, "\(y) against \(x)")
        c.xLabel = x
        c.yLabel = y
        let numericX = gs.allSatisfy { g in g.lead.params[x].map { $0.plotted != nil } ?? (g.spread(x) != nil) }
        var xLevels: [ParamValue?] = []
        if !numericX {
            xLevels = page.levels(x, gs)
            c.xTics = xLevels.enumerated().map { (page.label($0.element), Double($0.offset)) }
            c.xRange = (-0.5, Double(xLevels.count) - 0.5)
        }
        let colorLevels: [ParamValue?] = color.map { page.levels($0, gs) } ?? [nil]
        var xs: [Double] = []
        for (ci, level) in colorLevels.enumerated() {
            var px: [Double] = [], py: [Double] = [], pe: [Double] = []
            for g in gs where color.map({ g.lead.params[$0]?.level == level }) ?? true {
                guard let s = g.spread(y) else { continue }
                // A parameter or metric as a number for plotting (`ReportRun.value`'s rule).
                let xv = numericX ? g.spread(x)?.mean : xLevels.firstIndex(of: g.lead.params[x]?.level).map(Double.init)
                guard let xv else { continue }
                px.append(xv)
                py.append(s.mean)
                pe.append(s.sd)
            }
            guard !px.isEmpty else { continue }
            xs += px
            let title = color.map { "\($0) = \(page.label(level))" } ?? y
            c.elements.append(.points(title: title, x: px, y: py, color: ci, yError: pe.contains { $0 > 0 } ? pe : nil, size: 1.0))
        }
        // A span of 20× or more is read on a log axis (a learning-rate grid); `log_x` in the dashboard decides otherwise.
        if let logX {
            c.logX = logX && numericX
        } else if numericX, let lo = xs.min(), let hi = xs.max(), lo > 0 {
            c.logX = hi / lo >= 20
        }
        if numericX, c.logX, let lo = xs.min(), let hi = xs.max() {
            c.xRange = (lo / 1.5, hi * 1.5)
        } else if numericX, let lo = xs.min(), let hi = xs.max() {
            let pad = max((hi - lo) * 0.08, abs(hi) * 0.05, 1e-12)
            c.xRange = (lo - pad, hi + pad)
        }
        c.keyOutside = colorLevels.count > 1
        c.dense = xs.count > 40
        var html = page.heading(self, "\(y) against \(x)")
        if xs.isEmpty { return html + page.note("no run has both \(HTML.escape(x)) and \(HTML.escape(y))") }
        if gs.contains(where: { $0.members.count > 1 }) { html += page.note("seed repeats: mean with ± sd bars") }
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
