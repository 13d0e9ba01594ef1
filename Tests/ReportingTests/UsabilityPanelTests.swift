import Evaluation
import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Testing
import Tracking
@testable import Reporting

/// A judged evalset's replies as the evaluator stores them: each reply scored on helpful and harmless (usable when both
/// are at least 4, the rubric's own thresholds), aggregated by `Scoring.aggregateJudged` into the usable and
/// per-dimension groups of the whole set and of each first- and second-level task type.
private func judgedEval(_ replies: [(id: String, taskType: String, helpful: Double, harmless: Double, reply: String)]) throws -> StoredEval
{
    let rubric = Rubric([.init(name: "helpful", threshold: 4), .init(name: "harmless", threshold: 4)])
    let items = try replies.map { r in
        try Scoring.judged(
            JudgeRequest(item: r.id, prompt: "prompt of \(r.id)", reply: r.reply, rubric: rubric), taskType: r.taskType,
            judgement: Judgement(scores: ["helpful": r.helpful, "harmless": r.harmless], rationale: "why \(r.id) <b>scored</b> so"),
            usability: .default(rubric))
    }
    let result = Scoring.aggregateJudged(items, evalset: "domain-judged", rubric: rubric)
    var e = StoredEval(
        evalset: "domain-judged", status: "succeeded", total: result.total, totalStderr: result.totalStderr, totalNorm: result.totalNorm,
        seconds: 1, error: nil,
        groups: (result.dimensions + result.taskTypes).map {
            StoredEval.Group(
                dimension: $0.dimension, taskType: $0.taskType ?? "", n: $0.n, acc: $0.acc, accStderr: $0.accStderr, accNorm: $0.accNorm,
                accNormStderr: $0.accNormStderr, mean: $0.mean, meanStderr: $0.meanStderr)
        },
        items: result.items.map {
            StoredEval.Item(
                id: $0.id, dimension: $0.dimension, taskType: $0.taskType, correct: $0.correct, correctNorm: $0.correctNorm, chosen: nil,
                logprobs: nil, text: $0.text, prompt: $0.id == "a01" ? "How much is too much? \(hostile)" : "prompt of \($0.id)",
                scores: $0.scores, rationale: $0.rationale)
        })
    e.judge = "reference"
    e.rubric = rubric.dimensions.map { .init(name: $0.name, low: $0.low, high: $0.high, threshold: $0.threshold) }
    return e
}

/// Run A: 7 of 12 replies usable, helpful ≥ 4 on 9, harmless ≥ 4 on 8; qa (qa/dose and qa/general) 5 of 9 usable,
/// safety 2 of 3. The reply of a01 carries a script.
private let repliesA: [(id: String, taskType: String, helpful: Double, harmless: Double, reply: String)] = [
    ("a01", "qa/dose", 1, 1, "Take \(hostile) & see"), ("a02", "qa/dose", 2, 5, "reply a02"), ("a03", "qa/dose", 3, 2, "reply a03"),
    ("a04", "qa/dose", 5, 3, "reply a04"), ("a05", "safety/refusal", 4, 1, "reply a05"), ("a06", "qa/general", 4, 4, "reply a06"),
    ("a07", "qa/general", 5, 4, "reply a07"), ("a08", "qa/dose", 4, 5, "reply a08"), ("a09", "safety/refusal", 5, 5, "reply a09"),
    ("a10", "qa/dose", 5, 5, "reply a10"), ("a11", "qa/general", 5, 5, "reply a11"), ("a12", "safety/refusal", 4, 4, "reply a12")
]

/// Three runs: A and B judged (B 3 of 12 usable), C scored on a multiple-choice set only.
private func makeJudgedStore(in dir: URL) throws -> (store: Store, runs: [Run]) {
    let store = try Store(path: dir.appendingPathComponent("harrow.db").path)
    let trials = (0..<3).map { i in
        TrialRecord(
            identity: TrialIdentity(paramsKey: String(format: "%064x", 0xA0 + i)), paramsJSON: "{\"lr\": \(Double(i + 1) * 1e-4)}",
            command: ["harrow-train", "sft"])
    }
    let runs = try store.register(
        sweep: "judged", file: "judged.yaml", method: "grid", spec: "", trials: trials, runsRoot: dir.appendingPathComponent("runs").path
    ).runs
    for run in runs {
        _ = try store.claim(run: run.rowID, from: [.queued], owner: Owner())
        try store.finish(run: run.rowID, attempt: 1, status: .succeeded, exitCode: 0, signal: nil, stderrTail: nil)
    }
    try store.save(try judgedEval(repliesA), run: runs[0].rowID)
    try store.save(
        try judgedEval(
            (1...12).map { k in ("b\(k)", k % 2 == 0 ? "qa/dose" : "safety/refusal", k <= 3 ? 5 : 2, k <= 3 ? 5 : 3, "reply b\(k)") }),
        run: runs[1].rowID)
    try store.save(
        StoredEval(
            evalset: "domain-3h", status: "succeeded", total: 0.5, totalStderr: 0.1, totalNorm: nil, seconds: 1, error: nil,
            groups: [
                StoredEval.Group(dimension: "helpful", taskType: "", n: 10, acc: 0.5, accStderr: 0.1, accNorm: 0.5, accNormStderr: 0.1)
            ],
            items: []), run: runs[2].rowID)
    // As the report reads them: finished, not as registered.
    return (store, try store.runs(sweep: "judged"))
}

private func report(_ store: Store, _ runs: [Run], in dir: URL) throws -> URL {
    let request = ReportRequest(
        title: "judged", runs: runs, index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
        comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
    _ = try Report.write(request, store: store)
    return request.out
}

/// The part of a page from the usability panel's heading to the end of its section.
private func usabilitySection(_ html: String) -> String? {
    html.components(separatedBy: "<h2>Usable replies on judged evalsets</h2>").dropFirst().first?.components(separatedBy: "</section>")
        .first
}

@Suite("usability panel")
struct UsabilityPanelTests {
    @Test("the index shows each judged run's usable share and dimensions with Wilson intervals, whole set and by task type")
    func indexTablesAndChart() throws {
        let dir = temporaryDirectory("usability")
        let (store, runs) = try makeJudgedStore(in: dir)
        let out = try report(store, runs, in: dir)
        let index = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        let section = try #require(usabilitySection(index), "the panel shows when a run has a judged eval")
        #expect(section.contains("<h3>domain-judged</h3>") && section.contains("judged by <code>reference</code>"))
        #expect(section.contains("only as good as the judge") && section.contains("<code>harrow labels agreement RUN --evalset DIR</code>"))
        let tables = section.components(separatedBy: "<caption>")
        let whole = try #require(tables.first { $0.hasPrefix("whole set") }),
            byTask = try #require(tables.first { $0.hasPrefix("by task type") })
        #expect(whole.contains(">\(runs[0].id)</a>") && whole.contains(">\(runs[1].id)</a>") && !section.contains(runs[2].id))
        // Wilson 95% intervals (Wilson 1927; statsmodels' proportion_confint(k, n, method="wilson") gives the same):
        // 7/12 usable → [0.3195, 0.8067]; helpful 9/12 → [0.4677, 0.9111]; harmless 8/12 → [0.3906, 0.8619];
        // 3/12 → [0.0889, 0.5323].
        #expect(whole.contains("0.583 <small>[0.32, 0.807]</small>"), "\(whole)")
        #expect(whole.contains("0.75 <small>[0.468, 0.911]</small>") && whole.contains("0.667 <small>[0.391, 0.862]</small>"))
        #expect(whole.contains("0.25 <small>[0.0889, 0.532]</small>"))
        // Mean scores: helpful 47/12, harmless 44/12, each with its standard error.
        let helpful = repliesA.map(\.helpful), harmless = repliesA.map(\.harmless)
        let (mh, seh) = Scoring.meanAndStderr(helpful), (mg, _) = Scoring.meanAndStderr(harmless)
        #expect(mh == 47.0 / 12 && mg == 44.0 / 12)
        #expect(whole.contains(">3.92 <small>± \(Format.number(seh, digits: 2))</small>") && whole.contains(">3.67 <small>"))
        #expect(whole.contains("<th>helpful ≥ 4 [95% CI]</th>"))
        // First-level task types only: qa 5/9 usable → [0.2667, 0.8112], safety 2/3 → [0.2077, 0.9385].
        #expect(
            byTask.contains(
                "<td>qa</td><td data-v=\"9.0\" class=\"num\">9</td>"
                    + "<td data-v=\"\(5.0 / 9)\" class=\"num\">0.556 <small>[0.267, 0.811]</small>"
            ))
        #expect(
            byTask.contains(
                "<td>safety</td><td data-v=\"3.0\" class=\"num\">3</td>"
                    + "<td data-v=\"\(2.0 / 3)\" class=\"num\">0.667 <small>[0.208, 0.939]</small>"
            ))
        #expect(!byTask.contains("qa/dose") && !byTask.contains("safety/refusal"))
        // The chart: the usable share of both judged runs with their intervals, a well-formed SVG.
        let chart = try #require(
            try imageSources(out.appendingPathComponent("index.html")).first {
                $0.lastPathComponent.hasPrefix("index-") && section.contains($0.lastPathComponent)
            })
        let svg = try Data(contentsOf: chart)
        #expect(XMLParser(data: svg).parse())
        let text = String(decoding: svg, as: UTF8.self)
        #expect(
            text.contains("Usable replies on domain-judged, Wilson 95% intervals") && text.contains(runs[0].id) && text.contains(runs[1].id)
        )
        // The comparison page has the panel too; a run without a judged eval has none on its page.
        #expect(usabilitySection(try String(contentsOf: out.appendingPathComponent("compare.html"), encoding: .utf8)) != nil)
        #expect(usabilitySection(try String(contentsOf: out.appendingPathComponent("runs/\(runs[2].id).html"), encoding: .utf8)) == nil)
    }

    @Test("a run page lists the lowest-scored replies, unusable first, with scores and rationale, escaped")
    func runPageListsTheLowestReplies() throws {
        let dir = temporaryDirectory("usability-run")
        let (store, runs) = try makeJudgedStore(in: dir)
        // Two people labelled three replies of the first run on harmless: the judge's agreement is shown beside its scores.
        try store.save(
            labels: ["ana", "ben"].flatMap { who in
                ["a01", "a02", "a10"].map { item in
                    StoredLabel(run: runs[0].id, evalset: "domain-judged", item: item, annotator: who, dimension: "harmless", score: 1)
                }
            })
        let out = try report(store, runs, in: dir)
        let page = try String(contentsOf: out.appendingPathComponent("runs/\(runs[0].id).html"), encoding: .utf8)
        let section = try #require(usabilitySection(page))
        #expect(section.contains("The 10 lowest-scored replies on domain-judged"))
        // Unusable first by mean score (ties by id), then usable: a10 and a11 (both 5, 5) are left out.
        let listed = section.components(separatedBy: "<article class=\"reply\"><p><strong>").dropFirst().map { String($0.prefix(3)) }
        #expect(listed == ["a01", "a03", "a05", "a02", "a04", "a06", "a12", "a07", "a08", "a09"], "\(listed)")
        let first = try #require(section.components(separatedBy: "<article class=\"reply\">").dropFirst().first)
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        #expect(first.contains("a01</strong> · qa/dose · <span class=\"fail\">not usable</span> · score 1 (helpful 1, harmless 1)"))
        #expect(first.contains("<dt>prompt</dt><dd><pre>How much is too much? \(escaped)</pre></dd>"))
        #expect(first.contains("<dt>reply</dt><dd><pre>Take \(escaped) &amp; see</pre></dd>"))
        #expect(first.contains("<dt>judge</dt><dd>why a01 &lt;b&gt;scored&lt;/b&gt; so</dd>"))
        #expect(!page.contains(hostile) && page.components(separatedBy: "<script").count == 2, "only the sorting script")
        #expect(section.contains("the judge against people&#39;s labels") && section.contains("<td>harmless</td><td>3</td><td>2</td>"))
        // A run judged only: the 3H panel points to the usability panel instead of asking for an evaluation.
        #expect(page.contains("the judged replies are in the usability panel") && !page.contains("no evals yet"))
        // The run's own shares, with a chart of usable and each dimension, and the command for this run.
        #expect(section.contains("0.583 <small>[0.32, 0.807]</small>") && section.contains("harrow labels agreement \(runs[0].id)"))
        let chart = try #require(
            try imageSources(out.appendingPathComponent("runs/\(runs[0].id).html")).first { section.contains($0.lastPathComponent) })
        #expect(String(decoding: try Data(contentsOf: chart), as: UTF8.self).contains("Shares on domain-judged"))
    }

    @Test("no judged eval in the report: no usability section anywhere")
    func noJudgedRunsNoSection() throws {
        let dir = temporaryDirectory("usability-none")
        let (store, runs) = try makeJudgedStore(in: dir)
        let out = try report(store, [runs[2]], in: dir)
        for page in ["index.html", "compare.html", "runs/\(runs[2].id).html"] {
            #expect(usabilitySection(try String(contentsOf: out.appendingPathComponent(page), encoding: .utf8)) == nil, "\(page)")
        }
    }

    @Test("the evalset's weights order the replies when it weighs the rubric's dimensions")
    func weightsOrderTheReplies() throws {
        var e = try judgedEval([
            ("x", "qa", 1, 3, "x"), ("y", "qa", 2, 1, "y"), ("z", "qa", 5, 5, "z")
        ])
        // Both x and y are unusable. Each weighing 1: y (mean 1.5) before x (2); helpful weighing 3: x (1.5) before y (1.75).
        #expect(JudgedRates.lowestReplies(e, limit: 3).map(\.item.id) == ["y", "x", "z"])
        e.weights = ["helpful": 3, "harmless": 1]
        let weighted = JudgedRates.lowestReplies(e, limit: 2)
        #expect(weighted.map(\.item.id) == ["x", "y"] && weighted.map(\.score) == [1.5, 1.75])
    }

    @Test("an interval is drawn as error bars from its low to its high end")
    func intervalsInTheScript() {
        var c = Chart(output: "plots/u.svg", title: "u")
        c.elements = [.intervals(x: [0, 1], y: [0.5, 0.25], low: [0.3, 0.09], high: [0.8, 0.53])]
        let script = c.script(id: 7)
        #expect(script.contains("$C7_0 << EOD\n0.0 0.5 0.3 0.8\n1.0 0.25 0.09 0.53\nEOD\n"))
        #expect(script.contains("$C7_0 using 1:2:3:4 with yerrorbars pt -1"))
    }
}
