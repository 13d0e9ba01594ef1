import Evaluation
import HarrowCore
import Tracking

/// Judged evalsets (docs/DESIGN.md): per run, the share of usable replies with its Wilson 95% interval, each rubric
/// dimension's share at or above its threshold (with its interval) and mean score, for the whole set and per
/// first-level task type, with a chart of the usable share across runs (on a run page: of usable and each dimension).
/// A run page also lists the lowest-scored replies with the judge's rationale. No section where no run has a
/// judged eval.
public struct UsabilityPanel: Sendable, Equatable {
    public var title: String?
    /// Runs shown on the index, best by the report's metric first (default 12).
    public var top: Int?
    /// Replies listed per judged evalset on a run page (default 10).
    public var limit: Int?
}

extension UsabilityPanel: PanelKind {
    static let name = "usability"
    static let options = ["top", "limit"]
    init(_ o: Panel.Options) { self.init(title: o.title, top: o.top, limit: o.limit) }
    var panel: Panel { .usability(self) }

    func render(in page: PanelContext) throws -> String {
        let judged: [(run: ReportRun, evals: [StoredEval])] = page.scope.runs.compactMap { r in
            let evals = r.evals.filter { $0.isJudged && $0.status == "succeeded" }
            return evals.isEmpty ? nil : (r, evals)
        }
        guard !judged.isEmpty else { return "" }
        let shown = page.isIndex ? Array(judged.prefix(top ?? 12)) : judged
        let isRun: Bool = if case .run = page.scope { true } else { false }
        var html = page.heading(self, "Usable replies on judged evalsets")
        if shown.count < judged.count {
            html += page.note("the best \(shown.count) of \(judged.count) runs with a judged eval, by \(HTML.escape(page.metric))")
        }
        var sets: [String] = []
        for (_, evals) in shown { for e in evals where !sets.contains(e.evalset) { sets.append(e.evalset) } }
        for (k, name) in sets.enumerated() {
            let rows: [(run: ReportRun, eval: StoredEval, rates: [JudgedRates])] = shown.compactMap { r, evals in
                evals.first { $0.evalset == name }.map { (r, $0, JudgedRates.of($0)) }
            }
            var rubric: [StoredEval.RubricDimension] = []
            for row in rows { for d in row.eval.rubric ?? [] where !rubric.contains(where: { $0.name == d.name }) { rubric.append(d) } }
            html += "<h3>\(HTML.escape(name))</h3>\n"
            let judges = rows.reduce(into: [String]()) { out, row in
                if let j = row.eval.judge, !out.contains(j) { out.append(j) }
            }
            if !judges.isEmpty {
                html += page.note(
                    "judged by " + judges.map { "<code>\(HTML.escape($0))</code>" }.joined(separator: ", ")
                        + (judges.count > 1 ? ": scores from different judges do not compare" : ""))
            }
            let header = rubric.flatMap { ["\($0.name) ≥ \(Format.number($0.threshold)) [95% CI]", "\($0.name) mean ± se"] }
            html += HTML.table(
                header: (isRun ? [] : ["run"]) + ["n", "usable [95% CI]"] + header,
                rows: rows.compactMap { row in
                    guard let all = row.rates.first(where: { $0.taskType.isEmpty }) else { return nil }
                    return (isRun ? [] : [HTML.Cell(html: page.renderer.link(row.run, prefix: page.prefix))])
                        + Self.cells(all, rubric)
                },
                caption: "whole set")
            html += try chart(rows.map { ($0.run, $0.rates) }, rubric: rubric, evalset: name, isRun: isRun, index: k, page: page)
            let byTask = rows.flatMap { row in
                row.rates.filter { !$0.taskType.isEmpty && !$0.taskType.contains("/") }.map { (row.run, $0) }
            }
            if !byTask.isEmpty {
                html += HTML.table(
                    header: (isRun ? [] : ["run"]) + ["task_type", "n", "usable [95% CI]"] + header,
                    rows: byTask.map { run, rates in
                        (isRun ? [] : [HTML.Cell(html: page.renderer.link(run, prefix: page.prefix))]) + [.text(rates.taskType)]
                            + Self.cells(rates, rubric)
                    },
                    caption: "by task type")
            }
            if isRun {
                html += agreement(of: page.one, evalset: name, rubric: rubric)
                html += replies(of: page.one, evalset: name, rubric: rubric)
            }
        }
        let command = "harrow labels agreement \(isRun ? HTML.escape(page.one.id) : "RUN") --evalset DIR"
        return html
            + page.note(
                "A judge's scores are only as good as the judge: score a sample of the same replies yourself and see how far "
                    + "the judge agrees with <code>\(command)</code>.")
    }

    /// n, the usable share with its interval, then per dimension its pass share with interval and its mean score.
    static func cells(_ r: JudgedRates, _ rubric: [StoredEval.RubricDimension]) -> [HTML.Cell] {
        [.number(Double(r.usable.n)), cell(r.usable)]
            + rubric.flatMap { d -> [HTML.Cell] in
                guard let x = r.dimensions[d.name] else { return [.number(nil), .number(nil)] }
                guard let mean = x.mean else { return [cell(x.pass), .number(nil)] }
                let se = x.meanStderr.map { " <small>± \(Format.number($0, digits: 2))</small>" } ?? ""
                return [cell(x.pass), HTML.Cell(html: Format.number(mean, digits: 3) + se, sortValue: mean, cls: "num")]
            }
    }

    /// A share with its interval: `0.625 [0.306, 0.863]`, sorting by the share.
    static func cell(_ r: JudgedRates.Rate) -> HTML.Cell {
        HTML.Cell(
            html:
                "\(Format.number(r.share, digits: 3)) <small>[\(Format.number(r.low, digits: 3)), "
                + "\(Format.number(r.high, digits: 3))]</small>",
            sortValue: r.share, cls: "num")
    }

    /// Bars with Wilson intervals: the usable share of each run, or on a run page usable and each dimension's pass share.
    func chart(
        _ rows: [(run: ReportRun, rates: [JudgedRates])], rubric: [StoredEval.RubricDimension], evalset: String, isRun: Bool, index: Int,
        page: PanelContext
    ) throws -> String {
        var bars: [(label: String, rate: JudgedRates.Rate)] = []
        for row in rows {
            guard let all = row.rates.first(where: { $0.taskType.isEmpty }) else { continue }
            if isRun {
                bars.append(("usable", all.usable))
                for d in rubric {
                    if let x = all.dimensions[d.name] { bars.append(("\(d.name) ≥ \(Format.number(d.threshold))", x.pass)) }
                }
            } else {
                bars.append((row.run.id, all.usable))
            }
        }
        guard !bars.isEmpty else { return "" }
        var c = page.chart(
            self, isRun ? "Shares on \(evalset), Wilson 95% intervals" : "Usable replies on \(evalset), Wilson 95% intervals",
            suffix: index == 0 ? "" : "-\(index + 1)")
        c.xTics = bars.enumerated().map { ($0.element.label, Double($0.offset)) }
        c.xRange = (-0.5, Double(bars.count) - 0.5)
        c.yRange = (0, 1.08)
        c.yLabel = isRun ? "share of replies" : "usable share"
        let xs = bars.indices.map(Double.init), ys = bars.map(\.rate.share)
        c.elements = [
            .boxes(title: "", x: xs, y: ys, width: 0.6, color: 0),
            .intervals(x: xs, y: ys, low: bars.map(\.rate.low), high: bars.map(\.rate.high))
        ]
        return try page.renderer.figure(c, prefix: page.prefix)
    }

    /// How far the judge agrees with people who labelled this run's replies (`harrow labels import`), per dimension:
    /// empty when nobody did.
    func agreement(of run: ReportRun, evalset: String, rubric: [StoredEval.RubricDimension]) -> String {
        let labels = (run.labels ?? []).filter { $0.evalset == evalset }
        guard !labels.isEmpty, let e = run.evalItems?.first(where: { $0.evalset == evalset && $0.isJudged }) else { return "" }
        func kappa(_ k: Agreement.Kappa?) -> String {
            guard let k else { return "–" }
            return k.value.map { String(format: "%.2f (%@)", $0, Agreement.landisKoch($0)) } ?? "undefined"
        }
        let rows = rubric.map { d -> [HTML.Cell] in
            var people: [String: [String: Int]] = [:]
            for l in labels where l.dimension == d.name { people[l.item, default: [:]][l.annotator] = Int(l.score) }
            let judge = Dictionary(e.items.compactMap { i in i.scores?[d.name].map { (i.id, Int($0)) } }) { a, _ in a }
            let a = JudgeAgreement.measure(dimension: d.name, labels: people, judge: judge)
            let interval = a.judgeInterval.map { String(format: " [%.2f, %.2f]", $0.low, $0.high) } ?? ""
            return [
                .text(d.name), .text(String(a.items)), .text(String(a.annotators)), .text(kappa(a.betweenPeople)),
                .text(kappa(a.judgeQuadratic) + interval), .text(kappa(a.judgeExact))
            ]
        }
        return HTML.table(
            header: ["dimension", "labelled replies", "people", "among people (Fleiss κ)", "judge vs people (quadratic κ)", "exact κ"],
            rows: rows, caption: "the judge against people's labels")
    }

    /// A run's lowest-scored replies on a judged evalset, each with its prompt, scores and the judge's rationale.
    func replies(of run: ReportRun, evalset: String, rubric: [StoredEval.RubricDimension]) -> String {
        let limit = self.limit ?? 10
        guard let e = run.evalItems?.first(where: { $0.evalset == evalset && $0.isJudged }), e.items.contains(where: { $0.scores != nil })
        else { return "<p class=\"note\">no replies of \(HTML.escape(evalset)) are stored for this run</p>\n" }
        let lowest = JudgedRates.lowestReplies(e, limit: limit)
        let weighted = rubric.contains { (e.weights?[$0.name] ?? 1) != 1 }
        var html =
            "<h3>The \(lowest.count) lowest-scored replies on \(HTML.escape(evalset))</h3>\n"
            + "<p class=\"note\">unusable first, then by the \(weighted ? "weighted mean (the evalset's weights)" : "mean") "
            + "of the scores over the rubric</p>\n"
        for (item, score) in lowest {
            let scores = rubric.compactMap { d in item.scores?[d.name].map { "\(HTML.escape(d.name)) \(Format.number($0))" } }
            html +=
                "<article class=\"reply\"><p><strong>\(HTML.escape(item.id))</strong> · \(HTML.escape(item.taskType)) · "
                + (item.correct ? "<span class=\"pass\">usable</span>" : "<span class=\"fail\">not usable</span>")
                + " · score \(Format.number(score, digits: 3)) (\(scores.joined(separator: ", ")))</p>\n<dl>"
                + "<dt>prompt</dt><dd><pre>\(HTML.escape(Self.clipped(item.prompt ?? "–")))</pre></dd>"
                + "<dt>reply</dt><dd><pre>\(HTML.escape(Self.clipped(item.text ?? "–")))</pre></dd>"
                + "<dt>judge</dt><dd>\(HTML.escape(item.rationale.map { $0.isEmpty ? "(no rationale)" : $0 } ?? "(no rationale)"))</dd>"
                + "</dl></article>\n"
        }
        return html
    }

    /// Long prompts and replies are cut so a run page stays small; `harrow labels export` has them whole.
    static func clipped(_ s: String, _ limit: Int = 4000) -> String { s.count > limit ? String(s.prefix(limit)) + " …" : s }
}

/// A judged evaluation's stored groups for one task type (empty: the whole set) as shares with Wilson 95% intervals
/// (`Paired.wilson`): replies usable, and per rubric dimension at or above its threshold, with the mean score.
struct JudgedRates: Equatable {
    struct Rate: Equatable {
        var share: Double
        var n: Int
        var low: Double
        var high: Double
    }

    struct Dimension: Equatable {
        var pass: Rate
        var mean: Double?
        var meanStderr: Double?
    }

    var taskType: String
    var usable: Rate
    var dimensions: [String: Dimension]

    /// The whole set first, then each task type in order; a task type without a `usable` group is left out.
    static func of(_ e: StoredEval) -> [JudgedRates] {
        let byTask = Dictionary(grouping: e.groups, by: \.taskType)
        return byTask.keys.sorted().compactMap { t in
            let groups = byTask[t]!
            guard let usable = groups.first(where: { $0.dimension == "usable" }) else { return nil }
            var dimensions: [String: Dimension] = [:]
            for g in groups where g.dimension != "usable" {
                dimensions[g.dimension] = Dimension(pass: rate(g), mean: g.mean, meanStderr: g.meanStderr)
            }
            return JudgedRates(taskType: t, usable: rate(usable), dimensions: dimensions)
        }
    }

    /// A group's share with its interval; the stored share times n gives back the count it was taken from.
    static func rate(_ g: StoredEval.Group) -> Rate {
        let (low, high) = Paired.wilson(successes: Int((g.acc * Double(g.n)).rounded()), n: g.n)
        return Rate(share: g.acc, n: g.n, low: low, high: high)
    }

    /// The replies to read first: unusable before usable, then by the weighted mean of their scores over the rubric
    /// (the evalset's weights for the dimensions it weighs, 1 for the others), then by item id.
    static func lowestReplies(_ e: StoredEval, limit: Int) -> [(item: StoredEval.Item, score: Double)] {
        let scored = e.items.filter { $0.scores != nil }
        let names = e.rubric?.map(\.name) ?? Array(Set(scored.flatMap { $0.scores!.keys })).sorted()
        func score(_ scores: [String: Double]) -> Double {
            let present = names.filter { scores[$0] != nil }
            let w = present.map { max(e.weights?[$0] ?? 1, 0) }
            let sum = w.reduce(0, +)
            return sum > 0 ? zip(present, w).map { scores[$0]! * $1 }.reduce(0, +) / sum : 0
        }
        let ranked: [(item: StoredEval.Item, score: Double)] = scored.map { ($0, score($0.scores!)) }
        return ranked.sorted { a, b in
            if a.item.correct != b.item.correct { return !a.item.correct }
            if a.score != b.score { return a.score < b.score }
            return a.item.id < b.item.id
        }.prefix(limit).map { $0 }
    }
}
