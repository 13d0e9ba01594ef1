import Benchmark
import Foundation
import Reporting
import Tracking

// Target (issue): a store with 1,000 runs × 2 curves × 1,000 points, filled through the store's API,
// renders in under 15 s on 2 cores.

/// 1,000 succeeded runs over lr × rank × seed, each with 1,000 train and 1,000 val points.
let filled: (store: Store, runs: [Run]) = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-report-bench-\(UUID().uuidString)")
    let store = try! Store(path: dir.appendingPathComponent("harrow.db").path)
    let lrs = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
    let trials = (0..<1000).map { i in
        TrialRecord(identity: TrialIdentity(paramsKey: (0..<4).map { String(format: "%016llx", (UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15) &+ UInt64($0)) }.joined()),
                    paramsJSON: "{\"lr\": \(lrs[i % 10]), \"lora_r\": \([4, 8, 16, 32, 64][i / 10 % 5]), \"seed\": \(i / 50)}", command: ["t"])
    }
    let runs = try! store.register(sweep: "bench", file: "b.yaml", method: "grid", spec: "", trials: trials, runsRoot: dir.appendingPathComponent("runs").path).runs
    for chunk in stride(from: 0, to: runs.count, by: 50) {
        var updates: [MetricsUpdate] = []
        for (i, run) in runs[chunk..<min(chunk + 50, runs.count)].enumerated() {
            _ = try! store.claim(run: run.rowID, from: [.queued], owner: Owner())
            var text = ""
            let k = Double(chunk + i)
            for step in 1...1000 {
                let t = Double(step)
                text += "{\"step\": \(step), \"train/loss\": \(0.3 + 2.5 * exp(-t / (50 + k.truncatingRemainder(dividingBy: 97))) + 0.01 * sin(t))}\n"
                text += "{\"step\": \(step), \"val/loss\": \(0.4 + 2.4 * exp(-t / (60 + k.truncatingRemainder(dividingBy: 89))) + max(0, t - 700) * 0.0002)}\n"
            }
            updates.append(MetricsUpdate(run: run.rowID, offset: Int64(text.utf8.count), batch: MetricsLines.parse(Data(text.utf8))))
        }
        try! store.ingest(updates)
        for u in updates { try! store.finish(run: u.run, attempt: 1, status: .succeeded, exitCode: 0, signal: nil, stderrTail: nil) }
    }
    return (store, try! store.runs(sweep: "bench"))
}()

func dashboard(_ name: String) -> Dashboard { try! Dashboard.parse(yaml: Dashboard.builtIn[name]!, file: name) }

let benchmarks: @Sendable () -> Void = {
    Benchmark("report: 1,000 runs × 2 curves × 1,000 points (index, compare and 1,000 run pages)",
              configuration: .init(metrics: [.wallClock, .custom("plots", useScalingFactor: false)], timeUnits: .milliseconds,
                                   warmupIterations: 1, maxDuration: .seconds(120), maxIterations: 3)) { benchmark in
        // The store is filled once, before the first (warm-up) iteration measures anything.
        _ = filled.runs.count
        for _ in benchmark.scaledIterations {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-report-bench-out-\(UUID().uuidString)")
            let request = ReportRequest(title: "sweep bench", runs: filled.runs, index: dashboard("sweep"), runPage: dashboard("run"),
                                        comparePage: dashboard("compare"), out: out)
            let summary = try! Report.write(request, store: filled.store)
            benchmark.measurement(.custom("plots", useScalingFactor: false), summary.charts)
            try? FileManager.default.removeItem(at: out)
        }
    }
}
