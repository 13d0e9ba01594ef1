import Foundation
import Testing
import Tracking
@testable import Reporting

/// The run page names the run's best step, the one its plot marks and `runs` shows.
@Suite("best step on the run page")
struct BestStepPageTests {
    @Test("a diagnosis stored with another best step is shown with the run's own, and a note")
    func theRunPageShowsTheRunsBestStep() throws {
        let dir = temporaryDirectory("best-step")
        let (store, runs) = try makeSweepStore(in: dir)
        // An over-fitting run whose diagnosis was stored with step 110, before its val minimum.
        let run = runs[5]
        let snapshot = try store.snapshot(run)
        let best = try #require(snapshot.bestStep)
        let curve = try store.curve(run: run.rowID, key: "val/loss")
        let lowest = curve.values.min()!
        #expect(best == curve.steps[curve.values.firstIndex(of: lowest)!] && best != 110, "\(best)")
        #expect(snapshot.values["val_loss_best"]?.value == lowest)
        let request = ReportRequest(
            title: "one", runs: [run], index: try shippedDashboard("sweep"), runPage: try shippedDashboard("run"),
            comparePage: try shippedDashboard("compare"), out: dir.appendingPathComponent("report"), baseDirectory: projectRoot)
        _ = try Report.write(request, store: store)
        let page = try String(contentsOf: dir.appendingPathComponent("report/runs/\(run.id).html"), encoding: .utf8)
        #expect(page.contains("· best step \(best)</p>") && !page.contains("best step 110</p>"), "\(page)")
        #expect(page.contains("stored with step 110 as the best; the run's best step is \(best)"))
    }
}
