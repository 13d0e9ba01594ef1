import Foundation
import Testing

/// `experiments/demo.yaml` on the real starting models, as `make demo` runs it: the demo is the first thing that
/// shows a newcomer what Harrow is for, so each story it is shipped to tell is checked on every landing.
@Suite struct DemoStoriesTests {
    @Test func theDemoTellsEachStory() throws {
        let root = Harrow.packageRoot
        for model in ["base", "chat"] where !FileManager.default.fileExists(atPath: "\(root)/models/\(model)/model.safetensors") {
            Issue.record("models/\(model) is missing: `make test` builds the starting models first (or run `make models`)")
            return
        }
        let db = try Harrow.temporaryDirectory() + "/harrow.db"
        let sweep = try Harrow.run("sweep", "experiments/demo.yaml", "--db", db)
        try #require(sweep.status == 0, "harrow sweep exited \(sweep.status): \(sweep.stderr.suffix(2000))")
        let out = try Harrow.run("ablation", "--sweep", "demo", "--db", db, "--json")
        try #require(out.status == 0, "\(out.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])

        /// The run that changes only `name` to `value` from the baseline (or the baseline itself).
        func story(_ name: String?, _ value: String? = nil) throws -> Story {
            let row = rows.first { row in
                let changes = row["changes"] as? [[String: String]] ?? []
                guard let name else { return row["baseline"] as? Bool == true }
                return changes.count == 1 && changes[0]["name"] == name && changes[0]["to"] == value
            }
            return Story(try #require(row, "no run changes only \(name ?? "nothing") to \(value ?? "-")"))
        }

        let baseline = try story(nil)
        #expect(baseline.verdict == "good_fit", "\(baseline)")

        // Over-fits: val ends clearly above its minimum while train keeps falling past it.
        let overfit = try story("epochs", "60")
        #expect(overfit.verdict == "overfitting", "\(overfit)")
        #expect(overfit.metric("val/loss", "last") >= 1.05 * overfit.metric("val/loss", "min"), "\(overfit)")
        #expect(overfit.metric("train/loss", "min_step") > overfit.metric("val/loss", "min_step"), "\(overfit)")

        let short = try story("epochs", "3")
        #expect(short.verdict == "under_trained", "\(short)")

        // Learning rates: too high says lower it, too low says raise it.
        let high = try story("lr", "0.1")
        #expect(["unstable", "diverged"].contains(high.verdict), "\(high)")
        #expect(high.advice.contains("lower the learning rate"), "\(high)")
        let low = try story("lr", "3e-05")
        #expect(low.verdict == "under_trained", "\(low)")
        #expect(low.advice.contains("raise the learning rate") && !low.advice.contains("lower"), "\(low)")

        // SFT on the chat model forgets more than on the base model.
        let base = try story("base_model", "base")
        #expect(base.forgetting > baseline.forgetting + 0.05, "base \(base.forgetting) vs chat \(baseline.forgetting)")

        // Blending in general data limits forgetting: less of it as mix_ratio grows.
        let none = try story("mix_ratio", "0.0"), more = try story("mix_ratio", "0.6")
        #expect(none.forgetting < baseline.forgetting && baseline.forgetting < more.forgetting,
                "forgetting at mix_ratio 0, 0.3, 0.6: \(none.forgetting), \(baseline.forgetting), \(more.forgetting)")
    }
}

/// One row of `harrow ablation --json`.
struct Story: CustomStringConvertible {
    let row: [String: Any]
    init(_ row: [String: Any]) { self.row = row }

    var verdict: String { (row["verdict"] as? [String: Any])?["verdict"] as? String ?? "-" }
    var advice: String { (row["verdict"] as? [String: Any])?["advice"] as? String ?? "" }
    var forgetting: Double { ((row["scores"] as? [String: Any])?["forgetting"] as? NSNumber)?.doubleValue ?? .nan }
    func metric(_ key: String, _ field: String) -> Double {
        (((row["metrics"] as? [String: Any])?[key] as? [String: Any])?[field] as? NSNumber)?.doubleValue ?? .nan
    }
    var description: String { "\(row["id"] ?? "?") \(row["changes"] ?? []): \(verdict) — \(advice)" }
}
