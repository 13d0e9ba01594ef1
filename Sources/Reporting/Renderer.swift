import Foundation
import Gate
import Tracking

/// Which runs a page shows: the whole report (ranked best first), the compared runs (the first is the
/// reference), or one run.
enum Scope {
    case index([ReportRun]), compare([ReportRun]), run(ReportRun)

    var runs: [ReportRun] {
        switch self {
        case .index(let r), .compare(let r): return r
        case .run(let r): return [r]
        }
    }
}

/// A set of runs shown as one row or one line: a single run, or runs that differ only in seed.
struct RunGroup {
    var members: [ReportRun]
    var lead: ReportRun { members[0] }
    var label: String { members.count == 1 ? lead.id : "\(lead.id) ×\(members.count) seeds" }

    func spread(_ metric: String) -> Spread? { Spread(members.compactMap { $0.value(metric) }) }
}

/// A name (a sweep's, a run's) as one file or folder name that stays where it is put: letters, digits
/// and `-_.` are kept, anything else (`/`, NUL, spaces) becomes `_`, and leading dots go, so `..` or
/// `/etc` cannot climb out of the report folder.
public func safeFileName(_ name: String) -> String {
    var out = String(
        String.UnicodeScalarView(
            name.unicodeScalars.map {
                CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) ? $0 : "_"
            }))
    while out.hasPrefix(".") { out.removeFirst() }
    return out.isEmpty ? "_" : String(out.prefix(200))
}

/// Turns dashboard panels into HTML, sending each chart to the report's gnuplot as it is made.
final class Renderer {
    let gnuplot: Gnuplot
    let metric: String
    /// Which way the ranking metric is better (the sweep's goal when it has one).
    let lowerIsBetter: Bool
    let baseDirectory: URL
    /// A grid's runs are a balanced design (ANOVA shares); random and bayes sweeps' are not (rank correlations).
    var grid = true
    private var chartNames = Set<String>()
    private var gates: [String: GateRules] = [:]
    private(set) var warnings: [String] = []

    init(gnuplot: Gnuplot, metric: String, lowerIsBetter: Bool, baseDirectory: URL) {
        self.gnuplot = gnuplot
        self.metric = metric
        self.lowerIsBetter = lowerIsBetter
        self.baseDirectory = baseDirectory
    }

    /// A run page's file name: the id when it is a safe file name (it always is for harrow's own ids).
    static func runFile(_ id: String) -> String {
        let safe =
            id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
            && !id.hasPrefix(".")
        return (safe ? id : "run-" + String(id.unicodeScalars.map { String($0.value, radix: 36) }.joined().prefix(40))) + ".html"
    }

    static func runPage(_ id: String, prefix: String = "") -> String { prefix + "runs/" + runFile(id) }

    func link(_ run: ReportRun, prefix: String) -> String {
        "<a href=\"\(HTML.escape(Self.runPage(run.id, prefix: prefix)))\">\(HTML.escape(run.id))</a>"
    }

    func render(_ dashboard: Dashboard, scope: Scope, prefix: String) throws -> String {
        var html = ""
        let groups = PanelContext.groups(scope, metric: metric, lowerIsBetter: lowerIsBetter)
        for (i, panel) in dashboard.panels.enumerated() {
            let page: String
            switch scope {
            case .index: page = "index"
            case .compare: page = "compare"
            case .run(let r): page = "run-" + Self.runFile(r.id).dropLast(5)
            }
            let context = PanelContext(renderer: self, scope: scope, prefix: prefix, chartBase: "plots/\(page)-\(i + 1)", groups: groups)
            // A panel with nothing to say on these runs (scaling where the records do not vary) leaves no section.
            let body = try panel.kind.render(in: context)
            if !body.isEmpty { html += "<section>\n" + body + "\n</section>\n" }
        }
        return html
    }

    /// Draws a chart and returns the figure that shows it.
    func figure(_ chart: Chart, prefix: String) throws -> String {
        try gnuplot.draw(chart)
        return
            "<figure><img src=\"\(HTML.escape(prefix + chart.output))\" width=\"\(chart.width)\" height=\"\(chart.height)\" alt=\"\(HTML.escape(chart.title))\"></figure>"
    }

    /// A gate file's rules; a missing file is a warning (the bars are drawn without thresholds), a malformed one an error.
    func gate(_ path: String) throws -> GateRules? {
        if let g = gates[path] { return g }
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : baseDirectory.appendingPathComponent(path)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            if !warnings.contains(where: { $0.hasPrefix(path) }) {
                warnings.append("\(path): no such gate file; 3H bars are drawn without its thresholds")
            }
            return nil
        }
        let rules = try GateRules.parse(yaml: text, file: path)
        gates[path] = rules
        return rules
    }

    /// Groups of runs that differ only in seed, in the order of their first member.
    static func groups(_ runs: [ReportRun]) -> [RunGroup] {
        SeedGroups.group(runs) { $0.params.mapValues(\.display) }.map(RunGroup.init(members:))
    }
}
