import Testing
@testable import Sweep

@Suite struct AblationTests {
    @Test func readsEachTrialAsItsChangeFromTheBaseline() throws {
        // A one-factor-at-a-time design: baseline (lr 3e-3, epochs 15), two lr changes, one epochs change.
        let trials: [[String: String]] = [
            ["lr": "0.1", "epochs": "15"],
            ["lr": "0.003", "epochs": "60"],
            ["lr": "0.003", "epochs": "15"],
            ["lr": "3e-05", "epochs": "15"]
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
            ["a": "1", "b": "x"], ["a": "1", "b": "x"], ["a": "2", "b": "y"], ["a": "1"]
        ]
        let r = try #require(Ablation.read(trials))
        #expect(r.baseline == 0)
        #expect(r.changes[1].isEmpty)
        #expect(r.changes[2].map(\.name) == ["a", "b"])
        #expect(r.changes[3] == [Ablation.Change(name: "b", from: "x", to: "-")])
        #expect(r.order == [0, 1, 3, 2])
        #expect(Ablation.read([]) == nil)
    }

    /// The demo's design is read as one change at a time (a tied lora_r/lora_alpha pair counting as one change);
    /// grids, even small ones, are not.
    @Test func oneChangeAtATimeIsRecognisedAndGridsAreNot() throws {
        let base = ["epochs": "15", "lr": "0.003", "lora_r": "8", "lora_alpha": "16", "mix_ratio": "0.3"]
        func with(_ changes: [String: String]) -> [String: String] { base.merging(changes) { $1 } }
        let demo = [
            base, with(["epochs": "3"]), with(["epochs": "60"]), with(["lr": "3e-05"]), with(["lr": "0.1"]),
            with(["lora_alpha": "32"]), with(["lora_r": "32", "lora_alpha": "64"]), with(["mix_ratio": "0.0"]), with(["mix_ratio": "0.6"])
        ]
        let r = try #require(Ablation.oneAtATime(demo))
        #expect(r.baseline == 0 && r.changes[6].count == 2)
        // A 2 × 2 grid has 4 trials where one change at a time would have 3.
        let grid = [["a": "1", "b": "x"], ["a": "1", "b": "y"], ["a": "2", "b": "x"], ["a": "2", "b": "y"]]
        #expect(Ablation.oneAtATime(grid) == nil)
        let grid3 = ["1", "2", "3"].flatMap { a in ["x", "y", "z"].map { ["a": a, "b": $0] } }
        #expect(Ablation.oneAtATime(grid3) == nil)
        #expect(Ablation.oneAtATime([base, with(["lr": "0.1"])]) == nil, "two runs are a comparison, not a design")
    }
}
