import Foundation
import Testing
import Tracking
@testable import Reporting

@Suite("value by name") struct ValueSourceTests {
    /// A named value, else a parameter, else a metric: the first source that has the name gives the number, and says so.
    @Test func theFirstSourceThatHasTheNameGivesTheNumber() throws {
        let (store, runs) = try makeSweepStore(in: temporaryDirectory("value-source"))
        let run = try store.snapshot(runs[0])
        #expect(run.source(of: "total") == .named && run.value("total") == run.values["total"]?.value)
        // The trainer logs `lr` too: the trial's learning rate wins.
        #expect(run.source(of: "lr") == .parameter && run.value("lr") == 1e-4)
        #expect(run.value("lr", from: .metric) == run.summaries["lr"]?.last && run.summaries["lr"] != nil)
        #expect(run.source(of: "val/loss") == .metric && run.value("val/loss") == run.summaries["val/loss"]?.min)
        #expect(run.value("val/loss:last") == run.summaries["val/loss"]?.last)
        // A text parameter is no number, and a name nothing has has no source.
        #expect(run.source(of: "note") == nil && run.value("note") == nil && run.source(of: "nothing") == nil)
    }
}
