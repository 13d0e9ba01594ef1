import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import HarrowCore
import Testing
import Tracking
@testable import Reporting

/// Sizes and values of the worked example: four sizes, three seeds each, val loss falling with records.
private let sizes: [Double] = [12, 12, 12, 24, 24, 24, 48, 48, 48, 95, 95, 95]
private let losses = [1.62, 1.55, 1.70, 1.31, 1.38, 1.27, 1.12, 1.05, 1.15, 0.93, 0.90, 0.97]

private func fitted(_ n: [Double], _ y: [Double]) throws -> PowerLaw.Fitted {
    switch PowerLaw.fit(sizes: n, values: y) {
    case .success(let f): return f
    case .failure(let refusal): throw refusal
    }
}

private func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9) -> Bool { abs(a - b) <= tolerance * max(1, abs(b)) }

@Suite("power law")
struct PowerLawTests {
    /// scipy 1.17.1: `[t.ppf(0.975, d) for d in (1, 2, 3, 5, 10, 30)]`, `t.ppf(0.05, 4)`, `t.cdf(-1.3, 7)`, `t.cdf(2.5, 2.5)`.
    @Test("Student t quantiles and distribution function match scipy")
    func studentT() {
        let ppf: [(Double, Double)] = [
            (1, 12.706204736174694), (2, 4.302652729749462), (3, 3.1824463052837078), (5, 2.5705818356363146),
            (10, 2.228138851986274), (30, 2.0422724563012378)
        ]
        for (df, q) in ppf { #expect(close(StudentT.quantile(0.975, degreesOfFreedom: df), q), "df \(df)") }
        #expect(close(StudentT.quantile(0.05, degreesOfFreedom: 4), -2.131846786326651))
        #expect(close(StudentT.cdf(-1.3, degreesOfFreedom: 7), 0.11738391769618862))
        #expect(close(StudentT.cdf(2.5, degreesOfFreedom: 2.5), 0.9477150184609223))
    }

    /// numpy 2.4.6 / scipy 1.17.1 on the worked example:
    /// `r = linregress(log(n), log(y)); t = t.ppf(0.975, 10)` → slope −0.2661327734776398, intercept 1.1353161189051908,
    /// interval r.slope ∓ t·r.stderr = −0.299440816045514 … −0.23282473090976566; residual sd 0.03994921271174191;
    /// the line's band at n = 200, exp(ŷ ∓ t·s·√(1/12 + (log 200 − mean)²/Sxx)) = 0.7123085738463193 … 0.810393390431043;
    /// the line reaches 0.6 at exp((log 0.6 − intercept)/slope) = 485.6146226074243, and the band's edges cross 0.6
    /// (brentq on each edge) at 356.184160512349 and 720.6470827199125.
    @Test("the fit, its intervals and the records for a target match numpy and scipy")
    func workedExample() throws {
        let f = try fitted(sizes, losses)
        let law = f.law
        #expect(f.leftOut == 0 && law.points == 12 && law.sizes == 4 && law.degreesOfFreedom == 10)
        #expect(close(law.exponent, -0.2661327734776398))
        #expect(close(law.intercept, 1.1353161189051908))
        #expect(close(law.low, -0.299440816045514) && close(law.high, -0.23282473090976566))
        #expect(close(law.residualSD, 0.03994921271174191))
        #expect(law.isTrend && !law.isFlat)
        let band = law.band(at: 200)
        #expect(close(band.low, 0.7123085738463193) && close(band.high, 0.810393390431043))
        let reach = try #require(law.reach(0.6))
        #expect(close(reach.size, 485.6146226074243))
        let low = try #require(reach.low), high = try #require(reach.high)
        #expect(close(low, 356.184160512349, 1e-8) && close(high, 720.6470827199125, 1e-8))
    }

    /// scipy 1.17.1: linregress of log y on log n for n = (10, 20, 40, 40), y = (1.0, 0.7, 1.1, 0.8) gives slope
    /// −0.003518230962047551 and the interval −0.94822772964113 … 0.941191267717035 (t.ppf(0.975, 2)).
    @Test("an exponent within noise of 0 says so, and its target's interval is unbounded")
    func noTrend() throws {
        let law = try fitted([10, 20, 40, 40], [1.0, 0.7, 1.1, 0.8]).law
        #expect(close(law.exponent, -0.003518230962047551, 1e-8))
        #expect(close(law.low, -0.94822772964113, 1e-8) && close(law.high, 0.941191267717035, 1e-8))
        #expect(!law.isTrend)
        let reach = try #require(law.reach(0.5))
        #expect(reach.low == nil && reach.high == nil)
        #expect(
            ScalingPanel.describe(law, shown: "val/loss", leftOut: 0)
                == "val/loss ∝ records^−0.0035 (95% interval −0.95 … 0.94) over 4 runs at 3 sizes; the interval includes 0: no trend beyond the scatter about the line "
                + "(only 2 degrees of freedom, so the interval is wide)")
    }

    /// numpy 2.4.6 / scipy 1.17.1, splitting the residual sum of squares of log y on log n into pure error (repeats
    /// about their size's mean) and lack of fit: the worked example gives F = 0.2579691658964766,
    /// `f.sf(F, 2, 8)` = 0.7788071260465536; an error that falls then rises again (1 − the honest scores of
    /// experiments/scaling.yaml, seeds 1–3) gives F = 237.54759962276842, p = 7.520194291013866e-08.
    @Test("the lack-of-fit test tells a power law from a curve that turns back")
    func lackOfFit() throws {
        let fine = try #require(try fitted(sizes, losses).law.lackOfFit)
        #expect(close(fine.f, 0.2579691658964766, 1e-8) && close(fine.p, 0.7788071260465536, 1e-8))
        let honest = [0.70, 0.708, 0.715, 0.446, 0.438, 0.477, 0.177, 0.208, 0.3, 0.631, 0.638, 0.6]
        let law = try fitted(sizes, honest.map { 1 - $0 }).law
        let turned = try #require(law.lackOfFit)
        #expect(close(turned.f, 237.54759962276842, 1e-8) && close(turned.p, 7.520194291013866e-08, 1e-6))
        #expect(
            ScalingPanel.describe(law, shown: "1 − honest", leftOut: 0).contains(
                "the sizes' means stray from a power law beyond the seeds' scatter (lack-of-fit F test, p &lt; 0.001)"))
        // Without repeats there is no pure error to test against.
        #expect(try fitted([10, 30, 100, 300], [1, 0.8, 0.7, 0.5]).law.lackOfFit == nil)
    }

    @Test("fewer than three sizes is no fit, counted after the values a logarithm cannot take")
    func tooFewSizes() {
        #expect(PowerLaw.fit(sizes: [10, 10, 20, 20], values: [1, 0.9, 0.8, 0.7]) == .failure(.tooFewSizes(sizes: 2, leftOut: 0)))
        // The only positive value at 40 is 0: two sizes remain.
        #expect(PowerLaw.fit(sizes: [10, 20, 40], values: [1, 0.9, 0]) == .failure(.tooFewSizes(sizes: 2, leftOut: 1)))
        #expect(PowerLaw.fit(sizes: [], values: []) == .failure(.tooFewSizes(sizes: 0, leftOut: 0)))
    }

    @Test("values of 0 or below, and sizes that are not positive, are left out and counted")
    func nonPositive() throws {
        let f = try fitted(sizes + [48, 48, 0, .nan], losses + [0, -1, 1.2, 1.0])
        #expect(f.leftOut == 4)
        #expect(f.law == (try fitted(sizes, losses)).law, "the usable points fit as they do alone")
    }

    @Test("identical values fit a flat line that reaches no other target")
    func flat() throws {
        let law = try fitted([12, 24, 48, 95], [0.5, 0.5, 0.5, 0.5]).law
        #expect(law.exponent == 0 && law.low == 0 && law.high == 0 && law.isFlat && !law.isTrend)
        #expect(law.reach(0.4) == nil)
        #expect(close(law.value(at: 1000), 0.5))
    }

    @Test("an exact power law comes back exactly, and reaches its own values where it should")
    func exact() throws {
        let n: [Double] = [10, 30, 100, 300]
        let law = try fitted(n, n.map { 2 * pow($0, -0.5) }).law
        #expect(close(law.exponent, -0.5, 1e-12) && close(law.scale, 2, 1e-12))
        #expect(abs(law.high - law.low) < 1e-9)
        let reach = try #require(law.reach(0.2))
        let low = try #require(reach.low), high = try #require(reach.high)
        #expect(close(reach.size, 100, 1e-9) && close(low, 100, 1e-6) && close(high, 100, 1e-6))
    }

    @Test("predicted records are said to two significant figures")
    func records() {
        #expect(ScalingPanel.records(485.6) == "490")
        #expect(ScalingPanel.records(12_345) == "12,000")
        #expect(ScalingPanel.records(1_234_567) == "1,200,000")
        #expect(ScalingPanel.records(47.4) == "47")
        #expect(ScalingPanel.records(3.2e9) == "3.2e+09")
        #expect(ScalingPanel.exponent(-0.2661) == "−0.27" && ScalingPanel.exponent(0.004) == "0.004")
    }
}

/// A sweep over `max_samples` recorded through the store's API as harrow would: each size over `seeds` seeds, val
/// loss falling as 2.4 · n^−0.3 with a seed's wobble, and 3H scores whose error falls with n.
func makeScalingStore(in dir: URL, sizes: [Int] = [12, 24, 48, 96], seeds: Int = 2, axis: String = "max_samples") throws -> (
    store: Store, runs: [Run]
) {
    let store = try Store(path: dir.appendingPathComponent("harrow.db").path)
    var trials: [TrialRecord] = []
    var points: [(n: Int, seed: Int)] = []
    for n in sizes { for seed in 1...seeds { points.append((n, seed)) } }
    for (i, p) in points.enumerated() {
        trials.append(
            TrialRecord(
                identity: TrialIdentity(paramsKey: String(format: "%064x", i + 1)),
                paramsJSON: "{\"\(axis)\": \(p.n), \"seed\": \(p.seed), \"lr\": 0.003}", command: ["harrow-train", "sft"]))
    }
    let runs = try store.register(
        sweep: "scaling", file: "scaling.yaml", method: "grid", spec: "", trials: trials,
        runsRoot: dir.appendingPathComponent("runs").path
    ).runs
    for (i, run) in runs.enumerated() {
        _ = try store.claim(run: run.rowID, from: [.queued], owner: Owner())
        let n = Double(points[i].n), wobble = 1 + 0.03 * (Double(points[i].seed) - 1.5) * (i % 3 == 0 ? -1 : 1)
        let best = 2.4 * pow(n, -0.3) * wobble
        var lines = "{\"event\": \"start\", \"total_steps\": 40, \"steps_per_epoch\": 4, \"warmup_steps\": 0}\n"
        for step in stride(from: 5, through: 40, by: 5) {
            lines +=
                "{\"step\": \(step), \"train/loss\": \(best * 2 - Double(step) * 0.01), \"val/loss\": \(best + Double(40 - step) * 0.01)}\n"
        }
        lines += "{\"event\": \"done\", \"checkpoint\": \"checkpoint\"}\n"
        try store.ingest([MetricsUpdate(run: run.rowID, offset: Int64(lines.utf8.count), batch: MetricsLines.parse(Data(lines.utf8)))])
        try store.finish(run: run.rowID, attempt: 1, status: .succeeded, exitCode: 0, signal: nil, stderrTail: nil)
        let acc = [
            "helpful": 1 - 0.95 * pow(n, -0.15) * wobble, "honest": 1 - 0.6 * pow(n, -0.2) * wobble,
            "harmless": 1 - 0.3 * pow(n, -0.1) * wobble
        ]
        let groups = acc.map {
            StoredEval.Group(dimension: $0.key, taskType: "", n: 40, acc: $0.value, accStderr: 0.05, accNorm: $0.value, accNormStderr: 0.05)
        }
        try store.save(
            StoredEval(
                evalset: "domain-3h", status: "succeeded", total: acc.values.reduce(0, +) / 3, totalStderr: 0.03, totalNorm: nil,
                seconds: 1, error: nil, groups: groups, items: []), run: run.rowID)
    }
    return (store, try store.runs(sweep: "scaling"))
}

@Suite("scaling panel")
struct ScalingPanelTests {
    func report(_ dir: URL, _ store: Store, _ runs: [Run], index: Dashboard) throws -> String {
        let request = ReportRequest(
            title: "sweep scaling", runs: runs, index: index, runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        _ = try Report.write(request, store: store)
        return try String(contentsOf: dir.appendingPathComponent("report/index.html"), encoding: .utf8)
    }

    /// The part of the page the scaling panel wrote.
    func section(_ index: String) throws -> String {
        let start = try #require(index.range(of: "<h2>Data scaling"))
        return index[start.lowerBound...].components(separatedBy: "</section>")[0]
    }

    @Test("a sweep over max_samples gets the scaling panel: a chart and a sentence per metric, with the records each target needs")
    func shippedDashboardOnAScalingSweep() throws {
        let dir = temporaryDirectory("scaling")
        let (store, runs) = try makeScalingStore(in: dir)
        let index = try report(dir, store, runs, index: try shippedDashboard("sweep"))
        let panel = try section(index)
        // Each sentence carries the fit's own numbers, computed here from the same runs.
        let snapshots = try store.snapshots(runs)
        let n = snapshots.map { $0.value("max_samples")! }
        func law(_ name: String, error: Bool = false) throws -> PowerLaw {
            try fitted(n, snapshots.map { error ? 1 - $0.value(name)! : $0.value(name)! }).law
        }
        func said(_ r: PowerLaw.Reach) -> String {
            "about \(ScalingPanel.records(r.size)) records (interval \(ScalingPanel.records(r.low!)) … \(ScalingPanel.records(r.high!)))"
        }
        let loss = try law("val/loss")
        #expect(loss.isTrend && loss.high < 0, "val loss falls with records beyond its scatter")
        #expect(
            panel.contains(
                "val/loss ∝ records^\(ScalingPanel.exponent(loss.exponent)) (95% interval \(ScalingPanel.exponent(loss.low)) … "
                    + "\(ScalingPanel.exponent(loss.high))) over 8 runs at 4 sizes"), "\(panel)")
        // The dashboard's goals lie past the largest size: the records are predicted with their interval.
        let lossReach = try #require(loss.reach(0.3))
        #expect(lossReach.size > 96)
        #expect(panel.contains("the trend reaches val/loss 0.3 at \(said(lossReach)), "), "\(panel)")
        let helpful = try #require(try law("helpful", error: true).reach(1 - 0.6))
        #expect(helpful.size > 96)
        #expect(panel.contains("the trend reaches helpful 0.6 at \(said(helpful)), "), "\(panel)")
        // honest has no goal in the dashboard: the release gate's minimum, 0.6, which every size already meets.
        #expect(panel.contains("the trend is past honest 0.6 at every size run"), "\(panel)")
        for dim in ValueNames.dimensions { #expect(panel.contains("1 − \(dim) ∝ records^−"), "\(dim)") }
        #expect(panel.contains("3H scores are fitted as their error, 1 − score"))
        #expect(panel.contains("targets from the panel's target and the thresholds of gates/release.yaml"))
        let charts = try imageSources(dir.appendingPathComponent("report/index.html")).filter { $0.lastPathComponent.hasPrefix("index-3-") }
        #expect(charts.count == 4, "val loss and three dimensions")
        for chart in charts {
            let svg = try String(contentsOf: chart, encoding: .utf8)
            #expect(XMLParser(data: Data(svg.utf8)).parse(), "\(chart.lastPathComponent) parses")
            #expect(svg.contains("power law, 95% band") && svg.contains("runs"), "\(chart.lastPathComponent) has its legend")
        }
    }

    @Test("a sweep that does not vary the records shows no scaling panel")
    func absentWithoutRecords() throws {
        let dir = temporaryDirectory("no-scaling")
        let (store, runs) = try makeSweepStore(in: dir)
        let index = try report(dir, store, runs, index: try shippedDashboard("sweep"))
        #expect(!index.contains("Data scaling"))
        #expect(!index.contains("<section>\n\n</section>"), "no empty section")
    }

    @Test("train_records is read as the records axis; a dashboard's target replaces the gate's")
    func trainRecordsAndTarget() throws {
        let dir = temporaryDirectory("train-records")
        let (store, runs) = try makeScalingStore(in: dir, axis: "train_records")
        let dashboard = try Dashboard.parse(
            yaml: "title: t\npanels:\n  - type: scaling\n    metrics: [val/loss]\n    target: {val/loss: 0.6}\n", file: "d.yaml")
        #expect((dashboard.panels[0].kind as? ScalingPanel)?.targets == ["val/loss": 0.6])
        let panel = try section(try report(dir, store, runs, index: dashboard))
        let snapshots = try store.snapshots(runs)
        let law = try fitted(snapshots.map { $0.value("train_records")! }, snapshots.map { $0.value("val/loss")! }).law
        let reach = try #require(law.reach(0.6))
        #expect(panel.contains("the trend reaches val/loss 0.6 at about \(ScalingPanel.records(reach.size)) records"), "\(panel)")
        #expect(panel.contains("targets from the panel's target"))
        #expect(!panel.contains("helpful"), "only the metrics named")
    }

    @Test("two sizes are no fit, said plainly")
    func twoSizes() throws {
        let dir = temporaryDirectory("two-sizes")
        let (store, runs) = try makeScalingStore(in: dir, sizes: [12, 24])
        let panel = try section(try report(dir, store, runs, index: try shippedDashboard("sweep")))
        #expect(
            panel.contains("val/loss: no fit: 2 sizes of max_samples with a positive val/loss (12, 24); a power law needs at least 3"),
            "\(panel)")
    }

    @Test("a target that is not a mapping of numbers is an error at its line")
    func badTarget() {
        #expect(throws: DashboardError.self) {
            try Dashboard.parse(yaml: "title: t\npanels:\n  - type: scaling\n    target: 0.3\n", file: "d.yaml")
        }
        let error = #expect(throws: DashboardError.self) {
            try Dashboard.parse(yaml: "title: t\npanels:\n  - type: scaling\n    target: {val/loss: low}\n", file: "d.yaml")
        }
        #expect(error?.problems == ["d.yaml:4:24: error: the target of val/loss is a number"])
    }
}
