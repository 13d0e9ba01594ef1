import HarrowCore

/// A metric by two parameters: a cell per pair of values, coloured and labelled by the mean of its runs.
public struct HeatmapPanel: Sendable, Equatable {
    public var title: String?
    public var x: String?
    public var y: String?
    public var value: String?
}

extension HeatmapPanel: PanelKind {
    static let name = "heatmap"
    static let options = ["x", "y", "value"]
    static let required = ["x", "y", "value"]
    init(_ o: Panel.Options) { self.init(title: o.title, x: o.x, y: o.y, value: o.value) }
    var panel: Panel { .heatmap(self) }

    func render(in page: PanelContext) throws -> String {
        let x = self.x!, y = self.y!, v = value!
        let runs = page.scope.runs.filter { $0.value(v) != nil }
        var html = page.heading(self, "\(v) by \(x) and \(y)")
        guard !runs.isEmpty else { return html + page.note("no run has \(HTML.escape(v))") }
        let gs = runs.map { RunGroup(members: [$0]) }
        let xl = page.levels(x, gs), yl = page.levels(y, gs)
        struct Cell: Hashable { var x: ParamValue?, y: ParamValue? }
        var cells: [Cell: [Double]] = [:]
        for r in runs { cells[Cell(x: r.params[x]?.level, y: r.params[y]?.level), default: []].append(r.value(v)!) }
        var c = page.chart(self, "\(v) by \(x) and \(y)")
        c.xLabel = x
        c.yLabel = y
        c.paletteLabel = v
        c.xTics = xl.enumerated().map { (page.label($0.element), Double($0.offset)) }
        c.yTics = yl.enumerated().map { (page.label($0.element), Double($0.offset)) }
        c.xRange = (-0.5, Double(xl.count) - 0.5)
        c.yRange = (-0.5, Double(yl.count) - 0.5)
        c.width = max(480, min(1100, 160 + 70 * xl.count))
        c.height = max(300, min(900, 120 + 46 * yl.count))
        var cx: [Double] = [], cy: [Double] = [], cv: [Double] = [], labels: [String] = []
        for (i, a) in xl.enumerated() {
            for (j, b) in yl.enumerated() {
                guard let values = cells[Cell(x: a, y: b)], let s = Spread(values) else { continue }
                cx.append(Double(i))
                cy.append(Double(j))
                cv.append(s.mean)
                labels.append(Format.number(s.mean, digits: 3) + (s.n > 1 ? " (\(s.n))" : ""))
            }
        }
        c.elements = [.cells(x: cx, y: cy, value: cv), .labels(x: cx, y: cy, text: labels)]
        html += page.note("each cell: mean over its runs (count in brackets when more than one); empty: no run there")
        return html + (try page.renderer.figure(c, prefix: page.prefix))
    }
}
