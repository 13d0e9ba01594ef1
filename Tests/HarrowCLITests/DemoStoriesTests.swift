import Foundation
import Testing

/// The stories `make demo` tells, checked on the store it wrote (`make check-demo` sets HARROW_DEMO_DB; CI runs it
/// right after `make demo`, so the sweep runs once) and on its report (HARROW_DEMO_REPORT, else reports/demo). Each story is stated with its statistics: a verdict, or a
/// difference with a paired test on the same items, never a strict ordering of numbers that another CPU could flip.
/// `scripts/demo-seeds.sh` runs the same checks' evidence for other seeds and slot counts.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HARROW_DEMO_DB"] != nil, "set HARROW_DEMO_DB to a store `make demo` wrote"))
struct DemoStoriesTests {
    static var store: String { ProcessInfo.processInfo.environment["HARROW_DEMO_DB"] ?? "" }

    func rows() throws -> [Story] {
        let out = try Harrow.run("ablation", "--sweep", "demo", "--db", Self.store, "--json")
        try #require(out.status == 0, "harrow ablation exited \(out.status): \(out.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 11, "the demo plans 11 trials; the store holds \(rows.count)")
        return rows.map(Story.init)
    }

    /// The run that changes only `name` to `value` from the baseline (or the baseline itself), besides the parameters
    /// `derived` from it in the experiment (the demo's warmup follows its epochs, about 1% per epoch).
    func story(_ rows: [Story], _ name: String?, _ value: String? = nil, derived: Set<String> = []) throws -> Story {
        let row = rows.first { row in
            guard let name else { return row.isBaseline }
            return row.changes.contains { $0["name"] == name && $0["to"] == value }
                && row.changes.allSatisfy { $0["name"] == name || derived.contains($0["name"] ?? "") }
        }
        return try #require(row, "no run changes only \(name ?? "nothing") to \(value ?? "-")")
    }

    @Test func theCurvesTellTheirStories() throws {
        let rows = try rows()
        #expect(rows.allSatisfy { $0.status == "succeeded" }, "\(rows.filter { $0.status != "succeeded" })")
        let baseline = try story(rows, nil)
        #expect(baseline.verdict == "good_fit", "\(baseline)")

        // Over-fits: val ends above its minimum while train keeps falling past it.
        let overfit = try story(rows, "epochs", "60")
        #expect(overfit.verdict == "overfitting", "\(overfit)")
        #expect(overfit.metric("train/loss", "min_step") > overfit.metric("val/loss", "min_step"), "\(overfit)")

        let short = try story(rows, "epochs", "3", derived: ["warmup_ratio"])
        #expect(short.verdict == "under_trained", "\(short)")

        // Learning rates: too high says lower it, too low says raise it.
        let high = try story(rows, "lr", "0.1")
        #expect(["unstable", "diverged"].contains(high.verdict), "\(high)")
        #expect(high.advice.contains("lower the learning rate"), "\(high)")
        let low = try story(rows, "lr", "3e-05")
        #expect(low.verdict == "under_trained", "\(low)")
        #expect(low.advice.contains("raise the learning rate") && !low.advice.contains("lower"), "\(low)")
    }

    @Test func fineTuningTeachesWhatTheEvaluationAsks() throws {
        let baseline = try story(try rows(), nil)
        #expect(baseline.against == "start")
        let helpful = try #require(baseline.test("helpful"), "no paired Helpful result against the starting model: \(baseline)")
        // More Helpful items right than the chat model it started from, beyond noise (McNemar p < 0.01). The size is
        // not asserted: +0.19 to +0.22 on the shipped models over trainer seeds 1–3, +0.14 on models made with seed 2.
        #expect(helpful.delta > 0 && helpful.p < 0.01, "helpful \(helpful)")
    }

    @Test func mixingAndTheStartingModelLimitForgetting() throws {
        let rows = try rows()
        // Each forgetting value is compared with the baseline's through the items both starting models answered.
        let base = try #require(try story(rows, "base_model", "base").forgetting)
        #expect(base.delta > 0 && base.p < 0.05, "SFT on the base model forgets less than on the chat model: \(base)")

        // Forgetting shrinks as mix_ratio grows. 0.3 → 0.6 and the whole span 0 → 0.6 are beyond noise on every seed
        // tried; 0 → 0.3 was on 2 of 3 (Δ −0.066, −0.032, −0.068 on 500 general items, p 0.008, 0.19, 0.007), so of
        // that step only this is asserted: no mixing never forgets significantly less than 30%.
        let noneRow = try story(rows, "mix_ratio", "0.0"), moreRow = try story(rows, "mix_ratio", "0.6")
        let more = try #require(moreRow.forgetting)
        #expect(more.delta > 0 && more.p < 0.05, "60% general data forgets less than 30%: \(more)")
        let none = try #require(noneRow.forgetting)
        #expect(!(none.delta > 0 && none.p < 0.05), "no general data forgot significantly less than 30%: \(none)")
        let out = try Harrow.run("compare", noneRow.id, moreRow.id, "--db", Self.store, "--json")
        try #require(out.status == 0, "\(out.stderr)")
        let compare = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let against = Story(["evidence": (compare["evidence"] as? [String: Any])?[moreRow.id] ?? [:]])
        let span = try #require(against.forgetting, "\(compare)")
        #expect(span.delta > 0 && span.p < 0.05, "mix_ratio 0.6 forgets less than 0: \(span)")
    }

    /// experiments/vendor.yaml: our domain file against a vendor's at mix_ratio 0. The vendor's file asks each fact
    /// twice and answers harmful requests, so Harmless collapses (0.92 → 0 on the shipped models) and the gate refuses
    /// it. Helpful rose (+0.085, p = 0.02 on the shipped models), but that size is one seed's: only "not worse beyond
    /// noise" is asserted. The judged replies' usability is read, not asserted: this small model's free replies rarely
    /// refuse or comply, so the judged set cannot see the cost the choice items see.
    @Test func theVendorsFileCostsHarmlessAndTheGateRefusesIt() throws {
        let out = try Harrow.run("runs", "--sweep", "vendor", "--db", Self.store, "--json")
        try #require(out.status == 0, "\(out.stderr)")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        let byFile = Dictionary(runs.map { (($0["params"] as? [String: Any])?["dataset"] as? String ?? "", $0["id"] as? String ?? "") }) {
            a, _ in a
        }
        let ours = try #require(byFile["datasets/domain/train.jsonl"]), vendor = try #require(byFile["datasets/domain/train-vendor.jsonl"])
        let compared = try Harrow.run("compare", ours, vendor, "--db", Self.store, "--json")
        try #require(compared.status == 0, "\(compared.stderr)")
        let compare = try #require(try JSONSerialization.jsonObject(with: Data(compared.stdout.utf8)) as? [String: Any])
        let against = Story(["evidence": (compare["evidence"] as? [String: Any])?[vendor] ?? [:]])
        let harmless = try #require(against.test("harmless"), "\(compare)")
        #expect(harmless.delta < -0.5 && harmless.p < 0.001, "the vendor's run refuses far less: \(harmless)")
        let helpful = try #require(against.test("helpful"))
        #expect(!(helpful.delta < 0 && helpful.p < 0.05), "the vendor's run is not less helpful beyond noise: \(helpful)")
        #expect(against.test("usable") != nil && against.test("harmless/usable") != nil, "the judged replies are compared too")
        let gate = try Harrow.run(
            "gate", vendor, "--gate", Harrow.packageRoot + "/gates/vendor.yaml", "--baseline", ours, "--db", Self.store)
        #expect(gate.status == 1 && gate.stdout.contains("no drop in harmless") && gate.stdout.contains("REFUSED"), "\(gate.stdout)")
    }

    @Test func theReportWasWritten() throws {
        let report = ProcessInfo.processInfo.environment["HARROW_DEMO_REPORT"] ?? Harrow.packageRoot + "/reports/demo/index.html"
        let html = try #require(FileManager.default.contents(atPath: report), "make demo writes \(report)")
        #expect(String(decoding: html, as: UTF8.self).contains("demo"))
    }
}

/// One row of `harrow ablation --json`.
struct Story: CustomStringConvertible {
    struct Comparison: CustomStringConvertible {
        var delta: Double, p: Double
        var description: String { String(format: "Δ %+.3f, p = %.4f", delta, p) }
    }
    let row: [String: Any]
    init(_ row: [String: Any]) { self.row = row }

    var id: String { row["id"] as? String ?? "" }
    var isBaseline: Bool { row["baseline"] as? Bool == true }
    var changes: [[String: String]] { row["changes"] as? [[String: String]] ?? [] }
    var status: String { row["status"] as? String ?? "-" }
    var verdict: String { (row["verdict"] as? [String: Any])?["verdict"] as? String ?? "-" }
    var advice: String { (row["verdict"] as? [String: Any])?["advice"] as? String ?? "" }
    func metric(_ key: String, _ field: String) -> Double {
        (((row["metrics"] as? [String: Any])?[key] as? [String: Any])?[field] as? NSNumber)?.doubleValue ?? .nan
    }
    var evidence: [String: Any] { row["evidence"] as? [String: Any] ?? [:] }
    var against: String? { evidence["against"] as? String }
    /// The paired test under a value name (a dimension, `general`, `total`, `forgetting`): the change from the compared
    /// model to this run.
    func test(_ name: String) -> Comparison? {
        guard let t = (evidence["tests"] as? [String: Any])?[name] as? [String: Any],
            let delta = (t["delta"] as? NSNumber)?.doubleValue, let p = (t["p"] as? NSNumber)?.doubleValue
        else { return nil }
        return Comparison(delta: delta, p: p)
    }
    /// The paired bootstrap of this run's forgetting minus the baseline's.
    var forgetting: Comparison? { test("forgetting") }
    var description: String { "\(row["id"] ?? "?") \(changes): \(verdict) — \(advice) \(evidence)" }
}
