import HarrowCore
import Foundation
import Sweep
import Tracking

/// One panel on one page.
struct PanelContext {
    let renderer: Renderer
    let scope: Scope
    let prefix: String
    let chartBase: String

    var metric: String { renderer.metric }

    func render(_ p: Panel) throws -> String {
        switch p.kind {
        case .table: return table(p)
        case .curves: return try curves(p)
        case .scatter: return try scatter(p)
        case .heatmap: return try heatmap(p)
        case .bars3h: return try bars3h(p)
        case .forgetting: return try forgetting(p)
        case .flips: return try flips(p)
        case .effects: return try effects(p)
        case .parallel: return try parallel(p)
        case .tradeoff: return try tradeoff(p)
        case .progress: return try progress(p)
        case .scaling: return try scaling(p)
        case .overview: return try overview(p)
        case .params: return params(p)
        case .verdict: return verdict(p)
        case .scores: return scores(p)
        case .artifacts: return try artifacts(p)
        }
    }

    // MARK: Helpers

    func heading(_ p: Panel, _ fallback: String) -> String { "<h2>\(HTML.escape(p.title ?? fallback))</h2>\n" }
    func note(_ text: String) -> String { "<p class=\"note\">\(text)</p>\n" }
    func chart(_ p: Panel, _ title: String, suffix: String = "") -> Chart { Chart(output: "\(chartBase)\(suffix).svg", title: p.title ?? title) }

    /// Rows or lines of the page: seed repeats folded together on the index (best first), each run alone elsewhere.
    let groups: [RunGroup]

    static func groups(_ scope: Scope, metric: String, lowerIsBetter: Bool) -> [RunGroup] {
        switch scope {
        case .index(let runs): return Metric.rank(Renderer.groups(runs), lowerIsBetter: lowerIsBetter) { $0.spread(metric)?.mean }
        case .compare(let runs): return runs.map { RunGroup(members: [$0]) }
        case .run(let run): return [RunGroup(members: [run])]
        }
    }

    var isIndex: Bool { if case .index = scope { return true } else { return false } }

    /// Parameters whose values differ between the runs (seed aside on the index, where repeats are folded).
    func varyingParams(_ runs: [ReportRun]) -> [String] {
        RunSnapshot.differingParams(runs).filter { !(isIndex && $0 == SeedGroups.seedKey) }
    }

    /// A parameter or metric as a number for plotting (`ReportRun.value`'s rule); nil when neither.
    func coordinate(_ name: String, _ g: RunGroup) -> Double? { g.spread(name)?.mean }

    func runLinks(_ g: RunGroup) -> String {
        guard g.members.count > 1 else {
            return renderer.link(g.lead, prefix: prefix) + g.lead.tags.map { " <small>\(HTML.escape($0))</small>" }.joined()
        }
        let members = g.members.map { r in renderer.link(r, prefix: prefix) + (r.params[SeedGroups.seedKey].map { " seed \(HTML.escape($0.display))" } ?? "") }
        return "<details><summary>\(renderer.link(g.lead, prefix: prefix)) ×\(g.members.count)</summary>\(members.joined(separator: "<br>"))</details>"
    }

    // MARK: Table

    func table(_ p: Panel) -> String {
        let all = groups
        let shown = Array(all.prefix(p.top ?? all.count))
        let runs = scope.runs
        let params = p.params ?? varyingParams(runs)
        let candidates = [metric, "train/loss:last"] + ValueNames.dimensions + ["total", "general", "forgetting"]
        var metrics = p.metrics ?? candidates.filter { m in runs.contains { $0.value(m) != nil } }
        if p.metrics == nil { metrics = metrics.reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
        let reference = shown.first
        var rows: [[HTML.Cell]] = []
        for (i, g) in shown.enumerated() {
            var row: [HTML.Cell] = [HTML.Cell(html: runLinks(g), sortValue: nil, cls: nil)]
            let statuses = Dictionary(grouping: g.members, by: { $0.run.status.rawValue })
            row.append(g.members.count == 1 ? .text(g.lead.run.status.rawValue, cls: g.lead.run.status.rawValue)
                       : .text(statuses.map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")))
            let verdicts = g.members.compactMap { $0.diagnosis?.verdict }
            let verdict = Set(verdicts).sorted().joined(separator: ", ")
            row.append(.text(verdict.isEmpty ? "–" : verdict, cls: Set(verdicts).count == 1 ? verdicts[0] : nil))
            for k in params { row.append(cellFor(param: g.lead.params[k])) }
            for m in metrics {
                guard let s = g.spread(m) else { row.append(.number(nil)); continue }
                var html = Format.number(s.mean)
                if s.n > 1 { html += " ± " + Format.number(s.sd, digits: 2) }
                else if let e = g.lead.stderr(m), e > 0 { html += "<small> ± \(Format.number(e, digits: 2))</small>" }
                if case .compare = scope, i > 0, let r = reference?.spread(m) {
                    let d = s.mean - r.mean
                    let better = Metric.lowerIsBetter(m) ? d < 0 : d > 0
                    html += " <small class=\"\(d == 0 ? "" : better ? "pass" : "fail")\">(\(d >= 0 ? "+" : "")\(Format.number(d, digits: 3)))</small>"
                }
                row.append(HTML.Cell(html: html, sortValue: s.mean, cls: "num"))
            }
            rows.append(row)
        }
        var html = heading(p, "Runs")
        let folded = all.filter { $0.members.count > 1 }.count
        var notes: [String] = []
        // On the index every row is written, the best `indexRows` shown: a filter and a toggle show the rest.
        let folds = isIndex && p.top == nil && shown.count > Self.indexRows
        if shown.count < all.count { notes.append("the best \(shown.count) of \(all.count) by \(HTML.escape(metric))") }
        if folds { notes.append("the best \(Self.indexRows) of \(shown.count) by \(HTML.escape(metric)) shown") }
        if folded > 0 { notes.append("\(folded) configurations repeated over seeds: mean ± sd, members one click away") }
        if case .compare = scope { notes.append("deltas against the first run") }
        if !notes.isEmpty { html += note(notes.joined(separator: "; ")) }
        guard isIndex else { return html + HTML.table(header: ["run", "status", "verdict"] + params + metrics, rows: rows) }
        html += "<p><input type=\"search\" class=\"filter\" data-table=\"runs\" placeholder=\"filter: run, parameter, verdict\">"
        if folds {
            html += "<button class=\"all\" data-table=\"runs\" data-more=\"show all \(shown.count)\" data-less=\"show the best \(Self.indexRows)\">"
                + "show all \(shown.count)</button>"
        }
        html += "<span class=\"count\" data-table=\"runs\"></span></p>"
        return html + HTML.table(header: ["run", "status", "verdict"] + params + metrics, rows: rows, id: "runs",
                                 rowClass: { folds && $0 >= Self.indexRows ? "more" : nil })
    }

    /// Rows the index's run table shows before "show all".
    static let indexRows = 25

    func cellFor(param: ParamValue?) -> HTML.Cell {
        guard let param else { return .number(nil) }
        if let n = param.number { return HTML.Cell(html: HTML.escape(param.display), sortValue: n, cls: "num") }
        return .text(param.display)
    }

    // MARK: Curves

    func curves(_ p: Panel) throws -> String {
        let all = groups
        // A key ending in `*` stands for every matching curve of the runs shown (`val/loss@*`: per task type).
        let asked = p.metrics ?? Panel.defaultCurves
        let keys = asked.flatMap { pattern -> [String] in
            guard pattern.hasSuffix("*") else { return [pattern] }
            let prefix = pattern.dropLast()
            return Set(all.flatMap { $0.members.flatMap { $0.curves.keys.filter { $0.hasPrefix(prefix) } } }).sorted()
        }
        let shown: [RunGroup]
        switch scope {
        case .index: shown = Array(all.prefix(p.top ?? 8))
        default: shown = all
        }
        let single = shown.count == 1
        var c = chart(p, asked.joined(separator: " and "))
        c.xLabel = "step"
        c.yLabel = keys.count == 1 ? keys[0] : "loss"
        c.keyOutside = !single
        if !single { c.width = 760 }
        let points = p.points ?? 400
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
                    c.elements.append(.band(x: keep.map { steps[$0] }, low: keep.map { mean[$0] - m.sd[$0] }, high: keep.map { mean[$0] + m.sd[$0] }, color: color))
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
                    if raw.count == 1, key == TrainerContract.Metric.valLoss, let best = g.lead.bestStep, let i = raw[0].steps.firstIndex(of: best) { at = i }
                    c.elements.append(.points(title: bestMarked ? "" : "best step", x: [steps[at]], y: [mean[at]], color: color, size: 1.4))
                    bestMarked = true
                }
            }
        }
        var html = heading(p, asked.joined(separator: " and "))
        if case .index = scope, shown.count < all.count {
            html += note("the best \(shown.count) of \(all.count) configurations by \(HTML.escape(metric)); every run has its own page")
        }
        if drawn == 0 { return html + note("no \(HTML.escape(asked.joined(separator: " or "))) logged") }
        if keys.allSatisfy(Metric.lowerIsBetter), yHigh > yLow {
            let pad = (yHigh - yLow) * 0.12
            c.yRange = (max(0, yLow - pad), yHigh + pad)
        }
        if shown.contains(where: { $0.members.count > 1 }) { html += note("seed repeats: mean line, ± sd band") }
        return html + (try renderer.figure(c, prefix: prefix))
    }

    // MARK: Scatter and heatmap

    /// Distinct values of a parameter (`nil` where a run lacks it), numbers in numeric order, then text.
    func levels(_ name: String, _ gs: [RunGroup]) -> [ParamValue?] {
        let values = Set(gs.map { $0.lead.params[name]?.level })
        return values.sorted { a, b in
            switch (a?.number, b?.number) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return (a?.display ?? "–") < (b?.display ?? "–")
            }
        }
    }

    func label(_ level: ParamValue?) -> String { level?.display ?? "–" }

    func scatter(_ p: Panel) throws -> String {
        let x = p.x!, y = p.y!
        let gs = groups
        var c = chart(p, "\(y) against \(x)")
        c.xLabel = x
        c.yLabel = y
        let numericX = gs.allSatisfy { g in g.lead.params[x].map { $0.plotted != nil } ?? (g.spread(x) != nil) }
        var xLevels: [ParamValue?] = []
        if !numericX {
            xLevels = levels(x, gs)
            c.xTics = xLevels.enumerated().map { (label($0.element), Double($0.offset)) }
            c.xRange = (-0.5, Double(xLevels.count) - 0.5)
        }
        let colorLevels: [ParamValue?] = p.color.map { levels($0, gs) } ?? [nil]
        var xs: [Double] = []
        for (ci, level) in colorLevels.enumerated() {
            var px: [Double] = [], py: [Double] = [], pe: [Double] = []
            for g in gs where p.color.map({ g.lead.params[$0]?.level == level }) ?? true {
                guard let s = g.spread(y) else { continue }
                let xv = numericX ? coordinate(x, g) : xLevels.firstIndex(of: g.lead.params[x]?.level).map(Double.init)
                guard let xv else { continue }
                px.append(xv)
                py.append(s.mean)
                pe.append(s.sd)
            }
            guard !px.isEmpty else { continue }
            xs += px
            let title = p.color.map { "\($0) = \(label(level))" } ?? y
            c.elements.append(.points(title: title, x: px, y: py, color: ci, yError: pe.contains { $0 > 0 } ? pe : nil, size: 1.0))
        }
        // A span of 20× or more is read on a log axis (a learning-rate grid); `log_x` in the dashboard decides otherwise.
        if let logX = p.logX { c.logX = logX && numericX } else if numericX, let lo = xs.min(), let hi = xs.max(), lo > 0 {
            c.logX = hi / lo >= 20
        }
        if numericX, c.logX, let lo = xs.min(), let hi = xs.max() { c.xRange = (lo / 1.5, hi * 1.5) }
        else if numericX, let lo = xs.min(), let hi = xs.max() { let pad = max((hi - lo) * 0.08, abs(hi) * 0.05, 1e-12); c.xRange = (lo - pad, hi + pad) }
        c.keyOutside = colorLevels.count > 1
        c.dense = xs.count > 40
        var html = heading(p, "\(y) against \(x)")
        if xs.isEmpty { return html + note("no run has both \(HTML.escape(x)) and \(HTML.escape(y))") }
        if gs.contains(where: { $0.members.count > 1 }) { html += note("seed repeats: mean with ± sd bars") }
        return html + (try renderer.figure(c, prefix: prefix))
    }

    /// Main effects: a sentence naming the parameter that mattered, then one small chart per parameter (strongest
    /// first, `top` of them, default 6) of the metric's mean ± standard error at each of its values.
    func effects(_ p: Panel) throws -> String {
        if let reading = Ablation.oneAtATime(scope.runs.map { $0.params.mapValues(\.plain) }) { return try oneAtATime(p, reading) }
        let runs = scope.runs.filter { $0.value(metric) != nil }
        let names = p.params ?? varyingParams(runs)
        var html = heading(p, "Which parameter mattered")
        let rows = runs.map { r in (params: r.params, value: r.value(metric)!) }
        let grid = renderer.grid
        let analysis = Effects.analyze(rows, parameters: names, metric: metric, grid: grid)
        guard runs.count >= 3, let sentence = Effects.sentence(analysis, lowerIsBetter: renderer.lowerIsBetter) else {
            return html + note("too few runs with \(HTML.escape(metric)) and a varying parameter to tell")
        }
        html += "<p class=\"answer\">\(HTML.escape(sentence)).</p>\n"
        html += note((grid ? "share of variance from a one-way ANOVA per parameter" : "share: squared Spearman rank correlation (η² for categories)")
                     + " over \(analysis.runs) runs; points are means over the other parameters, bars one standard error")
        html += "<div class=\"multiples\">"
        for (i, e) in analysis.effects.prefix(p.top ?? 6).enumerated() {
            var c = chart(p, e.parameter, suffix: "-\(i)")
            c.title = "\(e.parameter): \(Int((e.share * 100).rounded()))%"
            c.width = 300
            c.height = 220
            c.xLabel = e.parameter
            c.yLabel = metric
            c.xTics = e.levels.enumerated().map { (label($0.element.value), Double($0.offset)) }
            c.xRange = (-0.5, Double(e.levels.count) - 0.5)
            c.elements.append(.points(title: "", x: e.levels.indices.map(Double.init), y: e.levels.map(\.mean), color: 0,
                                      yError: e.levels.map { $0.stderr ?? 0 }, size: 1.0))
            html += try renderer.figure(c, prefix: prefix)
        }
        return html + "</div>"
    }

    /// Which change mattered in a one-change-at-a-time design: each run against the baseline, the change it made,
    /// its effect on the metric, and its effect on the 3H total with the 95% interval of a paired bootstrap over the
    /// items both answered (when their items were read), said beyond or within noise. Shares of variance would mix
    /// the baseline with the extremes of other axes.
    func oneAtATime(_ p: Panel, _ reading: Ablation.Reading) throws -> String {
        let runs = scope.runs, base = runs[reading.baseline]
        var html = heading(p, "Which change mattered")
        func outcomes(_ r: ReportRun) -> ItemOutcomes? {
            guard let e = (r.evalItems ?? []).first(where: { $0.status == "succeeded" && $0.evalset != "general" }) else { return nil }
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
        guard !rows.isEmpty else { return html + note("no run changes anything from the baseline") }
        // The sentence: the largest effect on the metric, then the changes whose effect on the total is beyond noise.
        let better = { (d: Double) in renderer.lowerIsBetter ? d < 0 : d > 0 }
        var sentence = "One change at a time from the baseline \(base.id)"
        if let top = rows.filter({ $0.delta != nil }).max(by: { abs($0.delta!) < abs($1.delta!) }) {
            sentence += ": \(top.label) moved \(metric) most (\(Format.signed(top.delta!)), \(better(top.delta!) ? "better" : "worse"))"
        }
        let beyond = rows.filter { $0.total?.significant == true }
        if rows.contains(where: { $0.total != nil }) {
            sentence += beyond.isEmpty ? "; no change moved the 3H total beyond noise"
                : "; beyond noise on the 3H total: " + beyond.map { "\($0.label) (\(Format.signed($0.total!.delta)))" }.joined(separator: ", ")
        }
        html += "<p class=\"answer\">\(HTML.escape(sentence)).</p>\n"
        html += note("each run against the baseline; the total's 95% interval is a paired bootstrap over the items both answered. "
                     + "\(HTML.escape(metric)) has one run per change, so no interval: repeat seeds to measure its noise")
        html += "<table><thead><tr><th>change</th><th>run</th><th>Δ \(HTML.escape(metric))</th><th>Δ 3H total (95%)</th><th></th></tr></thead><tbody>\n"
        for r in rows {
            let t = r.total
            let interval = t.map { "\(Format.signed($0.delta)) [\(Format.signed($0.low)), \(Format.signed($0.high))]" } ?? "–"
            let word = t.map { $0.significant ? "beyond noise (\(Paired.formatP($0.p)))" : "within noise" } ?? ""
            html += "<tr><td>\(HTML.escape(r.label))</td><td>\(renderer.link(runs[r.index], prefix: prefix))</td>"
                + "<td>\(r.delta.map(Format.signed) ?? "–")</td><td>\(interval)</td><td>\(HTML.escape(word))</td></tr>\n"
        }
        html += "</tbody></table>\n"
        // The total's effects as points with their intervals, one column per change.
        let charted = rows.filter { $0.total != nil }
        if !charted.isEmpty {
            var c = chart(p, "effect on the 3H total against the baseline")
            c.width = 980
            c.height = 400
            c.yLabel = "Δ 3H total (95% interval)"
            c.xTics = charted.enumerated().map { ($0.element.label, Double($0.offset)) }
            c.xRange = (-0.5, Double(charted.count) - 0.5)
            c.elements.append(.line(title: "", x: [-0.5, Double(charted.count) - 0.5], y: [0, 0], color: 9, dashed: true))
            c.elements.append(.points(title: "", x: charted.indices.map(Double.init), y: charted.map { $0.total!.delta },
                                      color: 0, yError: charted.map { ($0.total!.high - $0.total!.low) / 2 }, size: 1.0))
            html += try renderer.figure(c, prefix: prefix)
        }
        return html
    }

    /// Parallel coordinates: an axis per varying parameter (a learning-rate-like span on a log axis, categories at
    /// their positions) and one for the metric, a line per run, coloured by the metric (dark: better).
    func parallel(_ p: Panel) throws -> String {
        // The best drawn last, on top.
        let runs = scope.runs.filter { $0.value(metric) != nil }
            .sorted { renderer.lowerIsBetter ? $0.value(metric)! > $1.value(metric)! : $0.value(metric)! < $1.value(metric)! }
        let names = Array((p.params ?? varyingParams(runs)).prefix(10))
        var html = heading(p, "Parameters and \(metric), one line per run")
        guard runs.count >= 2, !names.isEmpty else { return html + note("too few runs with \(HTML.escape(metric)) and a varying parameter") }
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
                let levels = levels(name, gs)
                let index = values.map { v in Double(levels.firstIndex(of: v?.level) ?? 0) }
                axes.append(.init(label: name, values: index, tics: levels.enumerated().map { (label($0.element), Double($0.offset)) }))
            }
        }
        let scores = runs.map { $0.value(metric)! }
        axes.append(.init(label: metric, values: scores))
        var c = chart(p, "parameters and \(metric)")
        c.width = 980
        c.height = 380
        c.paletteLabel = metric
        // Dark blue for the best runs, orange for the worst, whichever way the metric is better.
        let stops = ["'#08306b'", "'#4292c6'", "'#fdae6b'", "'#d94801'"]
        c.palette = "(" + (renderer.lowerIsBetter ? stops : stops.reversed()).enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ") + ")"
        c.elements.append(.parallel(axes: axes, color: scores))
        html += note("\(runs.count) runs; dark lines are the best by \(HTML.escape(metric))")
        return html + (try renderer.figure(c, prefix: prefix))
    }

    /// The trade-off fine-tuners face: what training gained in-domain (`y`, default `gain`: the 3H total over the
    /// starting model's; `total` when no gain is known) against forgetting on the general set (`x`, default
    /// `forgetting`: general score minus the starting model's), both better when higher, each with its 95% interval
    /// from the paired test against the starting model. A run whose gain is within noise of zero did not learn: it
    /// is drawn apart and kept off the front, where forgetting nothing would otherwise put it. The runs no other
    /// run beats on both form the Pareto front, drawn and labelled.
    func tradeoff(_ p: Panel) throws -> String {
        let x = p.x ?? "forgetting"
        let y = p.y ?? (scope.runs.contains { $0.value("gain") != nil } ? "gain" : "total")
        let runs = scope.runs.filter { $0.value(x) != nil && $0.value(y) != nil }
        var html = heading(p, "\(y) against \(x): the trade-off")
        guard !runs.isEmpty else {
            return html + note("needs runs evaluated on both: an in-domain evalset (\(HTML.escape(y))) and the general set (\(HTML.escape(x)))")
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
        var c = chart(p, "\(y) against \(x)")
        c.xLabel = x + (x == "forgetting" ? " (general score − starting model; right: less forgotten)" : "")
        c.yLabel = y + (y == "gain" ? " (3H total − starting model; up: learnt more)" : "")
        // The front sits at the top right, where a legend inside the chart would hide it.
        c.keyOutside = true
        let learning = runs.indices.filter { learnt[$0] }, idle = runs.indices.filter { !learnt[$0] }
        c.elements.append(.points(title: "runs (bars: 95% interval)", x: learning.map { xs[$0] }, y: learning.map { ys[$0] }, color: 0,
                                  yError: learning.map { halfWidth(runs[$0], y) }, size: 0.8))
        if !idle.isEmpty {
            c.elements.append(.points(title: "did not learn (gain within noise)", x: idle.map { xs[$0] }, y: idle.map { ys[$0] }, color: 9,
                                      yError: idle.map { halfWidth(runs[$0], y) }, size: 0.8))
        }
        if !front.isEmpty {
            c.elements.append(.line(title: "Pareto front", x: front.map { xs[$0] }, y: front.map { ys[$0] }, color: 2))
            c.elements.append(.points(title: "", x: front.map { xs[$0] }, y: front.map { ys[$0] }, color: 2, size: 1.2))
            // Each name just above its point.
            let lift = ((ys.max() ?? 0) - (ys.min() ?? 0)) * 0.06
            c.elements.append(.labels(x: front.map { xs[$0] }, y: front.map { ys[$0] + lift }, text: front.map { runs[$0].id }))
        }
        html += note("\(front.count) of \(runs.count) runs on the front: none of the others beats them on both"
                     + (front.isEmpty ? "" : "; " + front.map { renderer.link(runs[$0], prefix: prefix) }.joined(separator: ", ")))
        if !idle.isEmpty {
            html += note("did not learn (\(HTML.escape(y)) within noise of the starting model, kept off the front): "
                         + idle.map { renderer.link(runs[$0], prefix: prefix) }.joined(separator: ", "))
        }
        return html + (try renderer.figure(c, prefix: prefix))
    }

    /// How the search went: the metric of each run against its trial number (runs in the order they started) and
    /// the best so far as a step line, so a bayes or tpe search shows whether it was still finding better trials.
    func progress(_ p: Panel) throws -> String {
        let y = p.y ?? metric
        let runs = scope.runs.filter { $0.value(y) != nil }
            .sorted { ($0.run.startedAt ?? .distantFuture, $0.run.id) < ($1.run.startedAt ?? .distantFuture, $1.run.id) }
        var html = heading(p, "\(y) by trial: the search's progress")
        guard runs.count >= 2 else { return html + note("needs at least two runs with \(HTML.escape(y))") }
        let xs = runs.indices.map { Double($0 + 1) }, ys = runs.map { $0.value(y)! }
        var best: [Double] = [], improved: [Int] = []
        for (i, v) in ys.enumerated() {
            let better = best.last.map { renderer.lowerIsBetter ? v < $0 : v > $0 } ?? true
            best.append(better ? v : best.last!)
            if better { improved.append(i) }
        }
        var c = chart(p, "\(y) by trial")
        c.xLabel = "trial (in the order runs started)"
        c.yLabel = y
        c.keyOutside = runs.count > 40
        c.elements.append(.points(title: "runs", x: xs, y: ys, color: 0, size: 0.7))
        // A step line: the best holds until the trial that beats it.
        let stepX = xs.indices.flatMap { i in i == 0 ? [xs[0]] : [xs[i], xs[i]] }
        let stepY = best.indices.flatMap { i in i == 0 ? [best[0]] : [best[i - 1], best[i]] }
        c.elements.append(.line(title: "best so far", x: stepX, y: stepY, color: 2))
        let last = improved.last!
        html += note("\(improved.count) of \(runs.count) trials improved on the best; the last at trial \(last + 1) ("
                     + renderer.link(runs[last], prefix: prefix) + ", \(Format.number(ys[last])))"
                     + (runs.count - last - 1 >= max(10, runs.count / 3) ? "; the \(runs.count - last - 1) since found nothing better" : ""))
        return html + (try renderer.figure(c, prefix: prefix))
    }

    func heatmap(_ p: Panel) throws -> String {
        let x = p.x!, y = p.y!, v = p.value!
        let runs = scope.runs.filter { $0.value(v) != nil }
        var html = heading(p, "\(v) by \(x) and \(y)")
        guard !runs.isEmpty else { return html + note("no run has \(HTML.escape(v))") }
        let gs = runs.map { RunGroup(members: [$0]) }
        let xl = levels(x, gs), yl = levels(y, gs)
        struct Cell: Hashable { var x: ParamValue?, y: ParamValue? }
        var cells: [Cell: [Double]] = [:]
        for r in runs { cells[Cell(x: r.params[x]?.level, y: r.params[y]?.level), default: []].append(r.value(v)!) }
        var c = chart(p, "\(v) by \(x) and \(y)")
        c.xLabel = x
        c.yLabel = y
        c.paletteLabel = v
        c.xTics = xl.enumerated().map { (label($0.element), Double($0.offset)) }
        c.yTics = yl.enumerated().map { (label($0.element), Double($0.offset)) }
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
        html += note("each cell: mean over its runs (count in brackets when more than one); empty: no run there")
        return html + (try renderer.figure(c, prefix: prefix))
    }

    // MARK: 3H

    func bars3h(_ p: Panel) throws -> String {
        let dims = p.metrics ?? ValueNames.dimensions
        var shown = groups.filter { g in dims.contains { g.spread($0) != nil } }
        if case .index = scope { shown = Array(shown.prefix(p.top ?? 6)) }
        var html = heading(p, "3H scores")
        guard !shown.isEmpty else { return html + note("no evals yet: <code>harrow eval RUN --evalset evalsets/…</code> or an <code>eval:</code> block in the experiment") }
        var c = chart(p, "3H scores" + (p.gate.map { " with \($0) thresholds" } ?? ""))
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
            c.elements.append(.boxes(title: shown.count == 1 ? "score ± stderr" : g.label, x: xs, y: ys, width: width * 0.92, color: j, yError: es))
        }
        if let path = p.gate, let rules = try renderer.gate(path) {
            for t in rules.thresholds {
                guard let d = dims.firstIndex(of: t.metric) else { continue }
                for (bound, word) in [(t.min, "min"), (t.max, "max")] {
                    guard let b = bound else { continue }
                    c.segments.append(Chart.Segment(x1: Double(d) - 0.46, y1: b, x2: Double(d) + 0.46, y2: b, color: "#c62828",
                                                    label: "\(word) \(Format.number(b))"))
                }
            }
            html += note("dashed lines: the thresholds of \(HTML.escape(path))")
        }
        return html + (try renderer.figure(c, prefix: prefix))
    }

    func forgetting(_ p: Panel) throws -> String {
        let x = p.x ?? "mix_ratio", by = p.by ?? "base_model"
        let runs = scope.runs.filter { $0.value("forgetting") != nil }
        var html = heading(p, "Forgetting: general-score change by \(by) and \(x)")
        guard !runs.isEmpty else { return html + note("no general-set scores: evaluate on the general set (eval: [general]) to see forgetting") }
        var c = chart(p, "general-score change by \(by) and \(x)")
        c.xLabel = x
        c.yLabel = "general − starting checkpoint"
        let byLevels = levels(by, runs.map { RunGroup(members: [$0]) })
        var xs: [Double] = []
        for (bi, level) in byLevels.enumerated() {
            let members = runs.filter { $0.params[by]?.level == level }
            let points = Dictionary(grouping: members, by: { $0.params[x]?.plotted ?? 0 })
                .compactMap { key, rs in Spread(rs.compactMap { $0.value("forgetting") }).map { (key, $0) } }.sorted { $0.0 < $1.0 }
            guard !points.isEmpty else { continue }
            xs += points.map(\.0)
            c.elements.append(.line(title: "\(by) = \(label(level))", x: points.map(\.0), y: points.map(\.1.mean), color: bi))
            c.elements.append(.points(title: "", x: points.map(\.0), y: points.map(\.1.mean), color: bi,
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
        html += note("below zero: the run scores worse on general data than the checkpoint it started from; points average the runs at that setting (± sd)")
        return html + (try renderer.figure(c, prefix: prefix))
    }

    // MARK: Flips

    func flips(_ p: Panel) throws -> String {
        let runs: [ReportRun]
        switch scope {
        case .index(let r): runs = Array(r.prefix(2))
        case .compare(let r): runs = r
        case .run: runs = []
        }
        var html = heading(p, "Eval items that flipped")
        guard runs.count > 1 else { return html + note("flips need two runs") }
        let limit = p.limit ?? 20
        let reference = runs[0].evalItems ?? []
        for other in runs.dropFirst() {
            let flips = EvalFlip.between(reference, other.evalItems ?? [])
            let lost = flips.filter(\.before).count
            html += "<h3>\(renderer.link(runs[0], prefix: prefix)) → \(renderer.link(other, prefix: prefix)): "
                + "<span class=\"fail\">\(lost) pass→fail</span>, <span class=\"pass\">\(flips.count - lost) fail→pass</span></h3>\n"
            guard !flips.isEmpty else {
                html += note(reference.isEmpty ? "the reference run has no per-item results" : "no item changed")
                continue
            }
            let byGroup = Dictionary(grouping: flips, by: { "\($0.evalset)\u{1}\($0.dimension)\u{1}\($0.taskType)" })
            html += HTML.table(header: ["evalset", "dimension", "task_type", "pass→fail", "fail→pass"], rows: byGroup.keys.sorted().map { k in
                let parts = k.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init)
                let list = byGroup[k]!
                let l = list.filter(\.before).count
                return [.text(parts[0]), .text(parts[1]), .text(parts[2]), .number(Double(l)), .number(Double(list.count - l))]
            })
            let items = flips.sorted { $0.before && !$1.before }.prefix(limit)
            html += HTML.table(header: ["change", "item", "dimension", "task_type", "prompt"], rows: items.map { f in
                let prompt = f.prompt.map { $0.count > 220 ? String($0.prefix(220)) + "…" : $0 } ?? ""
                return [.text(f.change, cls: f.before ? "fail" : "pass"), .text(f.item), .text(f.dimension), .text(f.taskType), .text(prompt)]
            })
            if flips.count > limit { html += note("\(flips.count - limit) more: <code>harrow compare \(HTML.escape(runs[0].id)) \(HTML.escape(other.id))</code>") }
        }
        return html
    }

    // MARK: One run

    var one: ReportRun { scope.runs[0] }

    func overview(_ p: Panel) throws -> String {
        let r = one.run
        var rows: [(String, String)] = [("status", "<span class=\"\(r.status.rawValue)\">\(r.status.rawValue)</span>" + (r.attempt > 1 ? " (attempt \(r.attempt))" : ""))]
        if let s = r.sweepName { rows.append(("sweep", HTML.escape(s))) }
        if !one.tags.isEmpty { rows.append(("tags", one.tags.map(HTML.escape).joined(separator: ", "))) }
        rows.append(("trial key", "<code>\(HTML.escape(r.trialKey))</code>"))
        if let e = r.earlierRunID {
            rows.append(("earlier run", "<a href=\"\(HTML.escape(Renderer.runFile(e)))\">\(HTML.escape(e))</a> (same parameters; code or data changed since)"))
        }
        if let t = r.startedAt { rows.append(("started", HTML.escape(ISO8601DateFormatter().string(from: t)))) }
        if let d = r.duration { rows.append(("duration", Format.duration(d))) }
        if let e = r.exitCode { rows.append(("exit code", "\(e)")) }
        if let s = r.signal { rows.append(("signal", "\(s)")) }
        if let e = r.error { rows.append(("error", HTML.escape(e))) }
        if let pv = one.provenance {
            var git = pv.commit.map { "<code>\(HTML.escape(String($0.prefix(12))))</code>" } ?? "no commit"
            if let b = pv.branch { git += " on \(HTML.escape(b))" }
            if pv.repository != nil { git += pv.dirty ? " <span class=\"dirty\">dirty</span>" + (pv.diffSHA256.map { " (diff \(HTML.escape(String($0.prefix(12)))))" } ?? "") : " clean" }
            if !pv.untracked.isEmpty { git += ", \(pv.untracked.count) untracked files" }
            if let n = pv.note { git += " — \(HTML.escape(n))" }
            rows.append(("git", git))
        } else {
            rows.append(("git", "not recorded"))
        }
        if !r.command.isEmpty { rows.append(("command", "<code>\(HTML.escape(r.command.joined(separator: " ")))</code>")) }
        if let d = r.runDir { rows.append(("run folder", "<code>\(HTML.escape(d))</code>")) }
        if r.source != "sweep" { rows.append(("source", HTML.escape(r.source))) }
        if r.malformedLines > 0 || r.nonfiniteValues > 0 {
            rows.append(("metrics lines", "\(r.malformedLines) malformed, \(r.nonfiniteValues) non-finite values skipped"))
        }
        var html = heading(p, "Run") + "<dl>" + rows.map { "<dt>\($0.0)</dt><dd>\($0.1)</dd>" }.joined() + "</dl>\n"
        let attempts = one.attempts
        if attempts.count > 1 {
            html += HTML.table(header: ["attempt", "status", "exit", "duration", "then"], rows: attempts.map {
                [.number(Double($0.attempt)), .text($0.status, cls: $0.status), .text($0.exitCode.map { "\($0)" } ?? $0.signal.map { "signal \($0)" } ?? "–"),
                 .text($0.duration.map(Format.duration) ?? "–"), .text($0.note ?? "")]
            }, caption: "attempts")
        }
        if let failure = r.failure {
            html += "<p class=\"failure\"><b>\(HTML.escape(failure.cause.label))</b>, told by:</p><pre>"
                + failure.lines.map(HTML.escape).joined(separator: "\n") + "</pre>\n"
        }
        if let tail = r.stderrTail, !tail.isEmpty, r.status != .succeeded {
            html += "<h3>stderr (last lines)</h3><pre>\(HTML.escape(tail))</pre>\n"
        }
        return html
    }

    func params(_ p: Panel) -> String {
        heading(p, "Parameters") + HTML.table(header: ["parameter", "value"], rows: one.params.sorted { $0.key < $1.key }.map { [.text($0.key), cellFor(param: $0.value)] })
    }

    func verdict(_ p: Panel) -> String {
        var html = heading(p, "Diagnosis")
        guard let d = one.diagnosis else { return html + note("not diagnosed yet: <code>harrow diagnose \(HTML.escape(one.id)) --save</code>") }
        html += "<p><strong class=\"\(HTML.escape(d.verdict))\">\(HTML.escape(d.verdict.replacingOccurrences(of: "_", with: " ")))</strong>"
            + " (confidence \(Format.number(d.confidence, digits: 2)))" + ((one.bestStep ?? d.bestStep).map { " · best step \($0)" } ?? "") + "</p>\n"
        if !d.advice.isEmpty { html += "<p>\(HTML.escape(d.advice))</p>\n" }
        // A diagnosis stored by an older reading may name another step than the run's best: say so, not both.
        if let stored = d.bestStep, let best = one.bestStep, stored != best {
            html += note("this diagnosis was stored with step \(stored) as the best; the run's best step is \(best): "
                         + "<code>harrow diagnose \(HTML.escape(one.id)) --save</code> reads it again")
        }
        if let evidence = (try? JSONSerialization.jsonObject(with: Data(d.evidenceJSON.utf8))) as? [String: Any], !evidence.isEmpty {
            html += "<dl class=\"evidence\">" + evidence.keys.sorted().map { k in "<dt>\(HTML.escape(k))</dt><dd>\(HTML.escape(Self.evidenceText(evidence[k]!)))</dd>" }.joined() + "</dl>\n"
        }
        return html
    }

    static func evidenceText(_ v: Any) -> String {
        switch v {
        case let n as NSNumber: return Format.number(n.doubleValue)
        case let s as String: return s
        case let a as [Any]: return a.map(evidenceText).joined(separator: ", ")
        case let m as [String: Any]: return m.keys.sorted().map { "\($0): \(evidenceText(m[$0]!))" }.joined(separator: ", ")
        default: return "\(v)"
        }
    }

    func scores(_ p: Panel) -> String {
        var html = heading(p, "Eval scores")
        guard !one.evals.isEmpty else { return html + note("not evaluated: <code>harrow eval \(HTML.escape(one.id)) --evalset evalsets/…</code>") }
        for e in one.evals {
            var line = "<h3>\(HTML.escape(e.evalset)) · \(HTML.escape(e.status))"
            if let t = e.total { line += " · total \(Format.number(t, digits: 3))" + (e.totalStderr.map { " ± \(Format.number($0, digits: 2))" } ?? "") }
            if let t = e.total, let b = e.baseline {
                let d = t - b
                line += " · <span class=\"\(d < 0 ? "fail" : "pass")\">\(d >= 0 ? "+" : "")\(Format.number(d, digits: 3)) vs starting checkpoint</span>"
            }
            html += line + "</h3>\n"
            if let err = e.error { html += "<pre>\(HTML.escape(err))</pre>\n" }
            html += HTML.table(header: ["dimension", "task_type", "n", "acc", "± stderr", "acc_norm"], rows: e.groups.map { g in
                [.text(g.dimension), .text(g.taskType.isEmpty ? "(all)" : g.taskType), .number(Double(g.n)), .number(g.acc, digits: 3),
                 .number(g.accStderr, digits: 2), .number(g.accNorm, digits: 3)]
            })
        }
        return html
    }

    func artifacts(_ p: Panel) throws -> String {
        let list = one.artifacts
        var html = heading(p, "Artifacts")
        var rows: [[HTML.Cell]] = list.map { a in
            [.text(a.role), .text(a.path), a.size.map { .number(Double($0)) } ?? .number(nil), .text(a.sha256.map { String($0.prefix(16)) } ?? "–")]
        }
        if list.isEmpty, let dir = one.run.runDir {
            for (role, name) in [("checkpoint", one.run.checkpoint), ("best checkpoint", one.run.bestCheckpoint)] {
                if let name { rows.append([.text(role), .text(dir + "/" + name), .number(nil), .text("–")]) }
            }
        }
        if rows.isEmpty { return html + note("no artifacts recorded") }
        html += HTML.table(header: ["role", "path", "bytes", "sha256"], rows: rows)
        return html
    }
}
