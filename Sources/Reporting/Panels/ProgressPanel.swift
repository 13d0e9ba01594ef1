import Foundation

/// How the search went: the metric of each run against its trial number (runs in the order they started) and
/// the best so far as a step line, so a bayes or tpe search shows whether it was still finding better trials.
public struct ProgressPanel: Sendable, Equatable {
    public var title: String?
    /// The metric (default the report's).
    public var y: String?
}

extension ProgressPanel: PanelKind {
    static let name = "progress"
    static let options = ["y"]
    init(_ o: Panel.Options) { self.init(title: o.title, y: o.y) }
    var panel: Panel { .progress(self) }

    func render(in page: PanelContext) throws -> String {
        let renderer = page.renderer
        let y = self.y ?? page.metric
        let runs = page.scope.runs.filter { $0.value(y) != nil }
            .sorted { ($0.run.startedAt ?? .distantFuture, $0.run.id) < ($1.run.startedAt ?? .distantFuture, $1.run.id) }
        var html = page.heading(self, "\(y) by trial: the search's progress")
        guard runs.count >= 2 else { return html + page.note("needs at least two runs with \(HTML.escape(y))") }
        let xs = runs.indices.map { Double($0 + 1) }, ys = runs.map { $0.value(y)! }
        var best: [Double] = [], improved: [Int] = []
        for (i, v) in ys.enumerated() {
            let better = best.last.map { renderer.lowerIsBetter ? v < $0 : v > $0 } ?? true
            best.append(better ? v : best.last!)
            if better { improved.append(i) }
        }
        var c = page.chart(self, "\(y) by trial")
        c.xLabel = "trial (in the order runs started)"
        c.yLabel = y
        c.keyOutside = runs.count > 40
        c.elements.append(.points(title: "runs", x: xs, y: ys, color: 0, size: 0.7))
        // A step line: the best holds until the trial that beats it.
        let stepX = xs.indices.flatMap { i in i == 0 ? [xs[0]] : [xs[i], xs[i]] }
        let stepY = best.indices.flatMap { i in i == 0 ? [best[0]] : [best[i - 1], best[i]] }
        c.elements.append(.line(title: "best so far", x: stepX, y: stepY, color: 2))
        let last = improved.last!, since = runs.count - last - 1
        html += page.note(
            "\(improved.count) of \(runs.count) trials improved on the best; the last at trial \(last + 1) ("
                + renderer.link(runs[last], prefix: page.prefix) + ", \(Format.number(ys[last])))"
                + (since >= max(10, runs.count / 3) ? "; the \(since) since found nothing better" : ""))
        return html + (try renderer.figure(c, prefix: page.prefix))
    }
}
