import Testing
@testable import Sweep

@Suite struct AblationTests {
    @Test func readsEachTrialAsItsChangeFromTheBaseline() throws {
        // A one-factor-at-a-time design: baseline (lr 3e-3, epochs 15), two lr changes, one epochs change.
        let trials: [[String: String]] = [
            ["lr": "0.1", "epochs": "15"],
            ["lr": "0.003", "epochs": "60"],
            ["lr": "0.003", "epochs": "15"],
            ["lr": "3e-05", "epochs": "15"],
        ]
        let r = try #require(Ablation.read(trials))
        #expect(r.baseline == 2)
        #expect(r.changes[0] == [Ablation.Change(name: "lr", from: "0.003", to: "0.1")])
        #expect(r.changes[1] == [Ablation.Change(name: "epochs", from: "15", to: "60")])
        #expect(r.changes[2].isEmpty)
        // Baseline first, then by parameter name, then in the order given.
        #expect(r.order == [2, 1, 0, 3])
    }

    @Test func severalChangesAndMissingParametersReadToo() throws {
        let trials: [[String: String]] = [
            ["a": "1", "b": "x"], ["a": "1", "b": "x"], ["a": "2", "b": "y"], ["a": "1"],
        ]
        let r = try #require(Ablation.read(trials))
        #expect(r.baseline == 0)
        #expect(r.changes[1].isEmpty)
        #expect(r.changes[2].map(\.name) == ["a", "b"])
        #expect(r.changes[3] == [Ablation.Change(name: "b", from: "x", to: "-")])
        #expect(r.order == [0, 1, 3, 2])
        #expect(Ablation.read([]) == nil)
    }
}
