import Foundation
import Tracking

let hostile = "<script>alert(1)</script>"

func temporaryDirectory(_ name: String) -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-report-\(name)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A small sweep recorded through the store's API as harrow would: six configurations over lr and rank,
/// one of them repeated over three seeds, one failed run, a run whose parameter value is hostile HTML,
/// curves that over-fit and that still fall, diagnoses, and 3H + general evals with per-item results.
func makeSweepStore(in dir: URL, sweep: String = "night") throws -> (store: Store, runs: [Run]) {
    let store = try Store(path: dir.appendingPathComponent("harrow.db").path)
    var trials: [TrialRecord] = []
    let configs: [(lr: Double, r: Int, seed: Int, note: String, base: String, mix: Double)] = [
        (1e-4, 8, 1, "plain", "chat", 0), (3e-4, 8, 1, "plain", "base", 0.15), (1e-3, 8, 1, "plain", "chat", 0.15),
        (1e-3, 8, 2, "plain", "chat", 0.15), (1e-3, 8, 3, "plain", "chat", 0.15),
        (3e-3, 16, 1, "plain", "base", 0.3), (1e-2, 16, 1, hostile, "chat", 0.3), (3e-2, 16, 1, "plain", "base", 0)
    ]
    for (i, c) in configs.enumerated() {
        let params =
            "{\"lr\": \(c.lr), \"lora_r\": \(c.r), \"seed\": \(c.seed), \"note\": \"\(c.note.replacingOccurrences(of: "/", with: "\\/"))\", \"base_model\": \"\(c.base)\", \"mix_ratio\": \(c.mix)}"
        let key = (0..<4).map { String(format: "%016llx", (UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15) &+ UInt64($0)) }.joined()
        trials.append(TrialRecord(identity: TrialIdentity(paramsKey: key), paramsJSON: params, command: ["harrow-train", "sft"]))
    }
    let runs = try store.register(
        sweep: sweep, file: "night.yaml", method: "grid", spec: "", trials: trials, runsRoot: dir.appendingPathComponent("runs").path
    ).runs
    for (i, run) in runs.enumerated() {
        _ = try store.claim(run: run.rowID, from: [.queued], owner: Owner())
        let failed = i == configs.count - 1
        var lines = "{\"event\": \"start\", \"total_steps\": 200, \"steps_per_epoch\": 50, \"warmup_steps\": 4}\n"
        let overfits = i >= 5
        for step in stride(from: 1, through: failed ? 60 : 200, by: 1) {
            let t = Double(step)
            let train = 0.4 + 2.4 * exp(-t / (20 + Double(i) * 6)) + 0.01 * Double((step * 7 + i) % 5) + 0.002 * Double(configs[i].seed)
            lines += "{\"step\": \(step), \"train/loss\": \(train), \"lr\": \(configs[i].lr * min(1, t / 4) * (1 - t / 201))}\n"
            if step % 10 == 0 {
                let val =
                    0.55 + 2.3 * exp(-t / (22 + Double(i) * 6)) + (overfits ? max(0, t - 110) * 0.004 : 0) + 0.003 * Double(configs[i].seed)
                // The first run also logs val loss per task type: qa/dose turns up from step 100, safety/refusal keeps falling.
                let channels =
                    i == 0
                    ? ", \"val/loss@qa/dose\": \(val + max(0, t - 100) * 0.01), \"val/loss@safety/refusal\": \(val + 0.5 - t * 0.002)" : ""
                lines += "{\"step\": \(step), \"val/loss\": \(val)\(channels)}\n"
            }
        }
        if !failed { lines += "{\"event\": \"done\", \"checkpoint\": \"checkpoint\", \"best_checkpoint\": \"checkpoint-best\"}\n" }
        try store.ingest([MetricsUpdate(run: run.rowID, offset: Int64(lines.utf8.count), batch: MetricsLines.parse(Data(lines.utf8)))])
        try store.finish(
            run: run.rowID, attempt: 1, status: failed ? .failed : .succeeded, exitCode: failed ? 1 : 0, signal: nil,
            stderrTail: failed ? "RuntimeError: diverged at step 60 \(hostile)" : nil)
        guard !failed else { continue }
        try store.save(
            StoredDiagnosis(
                verdict: overfits ? "overfitting" : "good_fit", confidence: 0.8, bestStep: overfits ? 110 : 200,
                evidenceJSON:
                    "{\"valRisePercent\": \(overfits ? 12.5 : 0), \"note\": \"\(hostile.replacingOccurrences(of: "/", with: "\\/"))\"}",
                advice: overfits ? "stop at the val minimum" : ""), run: run.rowID)
        // Item results: the run index decides which items pass, so neighbouring runs flip some.
        func items(_ dimension: String, _ taskType: String, _ n: Int) -> [StoredEval.Item] {
            (0..<n).map { k in
                StoredEval.Item(
                    id: "\(dimension)-\(k)", dimension: dimension, taskType: taskType, correct: (k * 3 + i) % (3 + i % 4) != 0,
                    correctNorm: true,
                    chosen: 0, logprobs: nil, text: nil, prompt: k == 0 ? "Is \(hostile) safe?" : "Question \(k) about \(dimension)")
            }
        }
        let main = items("helpful", "qa/dose", 12) + items("honest", "honesty/unknown", 8) + items("harmless", "safety/refusal", 8)
        func acc(_ d: String) -> Double {
            let xs = main.filter { $0.dimension == d }; return Double(xs.filter(\.correct).count) / Double(xs.count)
        }
        let groups = ["helpful": "qa/dose", "honest": "honesty/unknown", "harmless": "safety/refusal"].flatMap { d, t in
            [
                StoredEval.Group(dimension: d, taskType: "", n: 8, acc: acc(d), accStderr: 0.05, accNorm: acc(d), accNormStderr: 0.05),
                StoredEval.Group(dimension: d, taskType: t, n: 8, acc: acc(d), accStderr: 0.05, accNorm: acc(d), accNormStderr: 0.05)
            ]
        }
        try store.save(
            StoredEval(
                evalset: "domain-3h", status: "succeeded", total: (acc("helpful") + acc("honest") + acc("harmless")) / 3,
                totalStderr: 0.03, totalNorm: nil, seconds: 1, error: nil, groups: groups, items: main), run: run.rowID)
        try store.save(
            StoredEval(
                evalset: "general", status: "succeeded", total: 0.5 - 0.02 * Double(i), totalStderr: 0.03, totalNorm: nil,
                baseline: 0.5, seconds: 1, error: nil,
                groups: [
                    StoredEval.Group(
                        dimension: "general", taskType: "", n: 10, acc: 0.5 - 0.02 * Double(i), accStderr: 0.03, accNorm: 0.5,
                        accNormStderr: 0.03)
                ],
                items: []), run: run.rowID)
    }
    return (store, try store.runs(sweep: sweep))
}

/// A night at overnight scale, recorded through the store's API: a full grid of `lr` × `lora_r` × `epochs` ×
/// `base_model` × `mix_ratio` (5 × 4 × 5 × 2 × 5 = 1,000 runs), 40 train and 8 val points each, shaped by the
/// parameters (the learning rate matters most), diagnosed by that shape, and `queued` more that never started.
func makeOvernightStore(in dir: URL, queued: Int = 0) throws -> (store: Store, runs: [Run]) {
    let store = try Store(path: dir.appendingPathComponent("harrow.db").path)
    var trials: [TrialRecord] = []
    var params: [(lr: Double, r: Int, epochs: Int, base: String, mix: Double)] = []
    for lr in [1e-5, 3e-5, 1e-4, 3e-4, 1e-3] {
        for r in [4, 8, 16, 32] {
            for epochs in [1, 2, 3, 4, 6] {
                for base in ["base", "chat"] {
                    for mix in [0.0, 0.1, 0.2, 0.3, 0.4] { params.append((lr, r, epochs, base, mix)) }
                }
            }
        }
    }
    for (i, p) in params.enumerated() + (0..<queued).map({ (params.count + $0, (0.01, 64, 9, "chat", 0.5)) }) {
        let json = "{\"lr\": \(p.lr), \"lora_r\": \(p.r), \"epochs\": \(p.epochs), \"base_model\": \"\(p.base)\", \"mix_ratio\": \(p.mix)}"
        trials.append(
            TrialRecord(
                identity: TrialIdentity(paramsKey: String(format: "%064x", i + 1)), paramsJSON: json, command: ["harrow-train", "sft"]))
    }
    let runs = try store.register(
        sweep: "overnight", file: "overnight.yaml", method: "grid", spec: "", trials: trials,
        runsRoot: dir.appendingPathComponent("runs").path
    ).runs
    var updates: [MetricsUpdate] = []
    for (i, run) in runs.prefix(params.count).enumerated() {
        _ = try store.claim(run: run.rowID, from: [.queued], owner: Owner())
        let p = params[i]
        let speed = p.lr / 1e-4 * (1 + 0.05 * log2(Double(p.r) / 4)) * Double(p.epochs) / 3
        var lines = "{\"event\": \"start\", \"total_steps\": 40, \"steps_per_epoch\": \(40 / p.epochs), \"warmup_steps\": 0}\n"
        for step in 1...40 {
            let t = Double(step) / 40 * speed
            lines += "{\"step\": \(step), \"train/loss\": \(0.8 + 0.1 * p.mix + 1.5 * exp(-t) + 0.01 * Double((step * 7 + i) % 3))}\n"
            if step % 5 == 0 { lines += "{\"step\": \(step), \"val/loss\": \(0.9 + 0.1 * p.mix + 1.5 * exp(-t) + max(0, t - 4) * 0.05)}\n" }
        }
        updates.append(MetricsUpdate(run: run.rowID, offset: Int64(lines.utf8.count), batch: MetricsLines.parse(Data(lines.utf8))))
    }
    try store.ingest(updates)
    for (i, run) in runs.prefix(params.count).enumerated() {
        let p = params[i]
        let speed = p.lr / 1e-4 * Double(p.epochs) / 3
        try store.finish(run: run.rowID, attempt: 1, status: .succeeded, exitCode: 0, signal: nil, stderrTail: nil)
        let verdict = speed > 4 ? "overfitting" : speed < 0.6 ? "under_trained" : "good_fit"
        try store.save(StoredDiagnosis(verdict: verdict, confidence: 0.8, bestStep: 40, evidenceJSON: "{}", advice: ""), run: run.rowID)
    }
    return (store, try store.runs(sweep: "overnight"))
}
