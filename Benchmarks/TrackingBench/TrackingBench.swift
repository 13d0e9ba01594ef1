import Benchmark
import Foundation
import Runner
import Subprocess
import Sweep
import Tracking

// Targets (issue): ingestion ≥ 1,000,000 points/s, a 10,000-point curve < 5 ms, ≤ 32 bytes a stored point,
// the 10 best of 10,000 runs quickly, runner overhead < 5 ms a trial beyond process start.

func temporaryStore() -> Store {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-bench-\(UUID().uuidString)").path
    return try! Store(path: dir + "/harrow.db")
}

func register(_ store: Store, runs: Int) -> [Run] {
    let trials = (0..<runs).map { TrialRecord(identity: TrialIdentity(paramsKey: String(format: "%016lx%048lx", UInt64($0) &* 0x9E3779B97F4A7C15, $0)), paramsJSON: "{\"i\": \($0)}", command: ["t"]) }
    return try! store.register(sweep: "bench", file: "b.yaml", method: "grid", spec: "", trials: trials, runsRoot: "/tmp/r").runs
}

/// 200,000 canonical lines of 5 metrics each: what 10 trainers would write.
let metricsText: [Data] = (0..<10).map { run in
    var s = ""
    for step in 0..<20_000 {
        s += "{\"step\": \(step), \"epoch\": \(Double(step) / 2000), \"train/loss\": \(2.0 / Double(step + 1) + 0.1 * Double(run)), \"lr\": 0.0002, \"grad_norm\": 0.8, \"tokens_per_s\": 15000}\n"
    }
    return Data(s.utf8)
}

let curveStore: (Store, Int64) = {
    let store = temporaryStore()
    let run = register(store, runs: 1)[0].rowID
    var text = ""
    for step in 0..<10_000 { text += "{\"step\": \(step), \"val/loss\": \(1.0 + 1.0 / Double(step + 1))}\n" }
    try! store.ingest([MetricsUpdate(run: run, offset: 0, batch: MetricsLines.parse(Data(text.utf8)))])
    return (store, run)
}()

let manyRuns: Store = {
    let store = temporaryStore()
    let runs = register(store, runs: 10_000)
    var updates: [MetricsUpdate] = []
    for (i, r) in runs.enumerated() {
        let text = (0..<5).map { "{\"step\": \($0 * 10), \"val/loss\": \(1.0 + Double((i * 7919 + $0 * 13) % 10_000) / 10_000)}\n" }.joined()
        updates.append(MetricsUpdate(run: r.rowID, offset: 0, batch: MetricsLines.parse(Data(text.utf8))))
    }
    try! store.ingest(updates)
    return store
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock], timeUnits: .microseconds, maxDuration: .seconds(20), maxIterations: 20)

    Benchmark("ingest 1M metric points (parse + store, batches of 10k lines)",
              configuration: .init(metrics: [.wallClock, .custom("points per second", polarity: .prefersLarger, useScalingFactor: false),
                                             .custom("bytes per stored point", useScalingFactor: false)],
                                   timeUnits: .milliseconds, maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            let store = temporaryStore()
            let runs = register(store, runs: 10)
            benchmark.startMeasurement()
            let start = ContinuousClock.now
            var points = 0
            for part in 0..<20 {
                // Each tick reads a slice of every run's file, as the runner's pump does.
                var updates: [MetricsUpdate] = []
                for (i, run) in runs.enumerated() {
                    let data = metricsText[i]
                    let from = data.count * part / 20, to = data.count * (part + 1) / 20
                    let slice = data[data.index(data.startIndex, offsetBy: from)..<data.index(data.startIndex, offsetBy: to)]
                    // Slices are cut at arbitrary bytes: carry the partial line over, as the pump does with offsets.
                    let start = from == 0 ? slice.startIndex : (slice.firstIndex(of: 0x0A).map { slice.index(after: $0) } ?? slice.endIndex)
                    let end = to == data.count ? slice.endIndex : (data[slice.endIndex...].firstIndex(of: 0x0A).map { data.index(after: $0) } ?? data.endIndex)
                    let batch = MetricsLines.parse(Data(data[start..<end]))
                    points += batch.pointCount
                    updates.append(MetricsUpdate(run: run.rowID, offset: Int64(to), batch: batch))
                }
                try! store.ingest(updates)
            }
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            benchmark.stopMeasurement()
            precondition(points == 1_000_000)
            benchmark.measurement(.custom("points per second", polarity: .prefersLarger, useScalingFactor: false), Int(Double(points) / seconds))
            try! store.checkpoint()
            benchmark.measurement(.custom("bytes per stored point", useScalingFactor: false), store.sizeOnDisk / points)
        }
    }

    Benchmark("fetch a 10,000-point curve") { benchmark in
        let (store, run) = curveStore
        for _ in benchmark.scaledIterations {
            let curve = try! store.curve(run: run, key: "val/loss")
            precondition(curve.steps.count == 10_000)
            blackHole(curve)
        }
    }

    Benchmark("10 best of 10,000 runs by minimum val/loss") { benchmark in
        let store = manyRuns
        for _ in benchmark.scaledIterations {
            let best = try! store.best(metric: "val/loss", limit: 10)
            precondition(best.count == 10)
            blackHole(best)
        }
    }

    Benchmark("runner overhead per trial beyond process start (100 trials of /bin/true)",
              configuration: .init(metrics: [.wallClock, .custom("overhead µs per trial", useScalingFactor: false)],
                                   timeUnits: .milliseconds, maxIterations: 3)) { benchmark in
        for _ in benchmark.scaledIterations {
            let n = 100
            // Bare process starts through the same library, one after another.
            let bareStart = ContinuousClock.now
            for _ in 0..<n { _ = try await Subprocess.run(.path("/bin/true"), output: .discarded) }
            let bare = (ContinuousClock.now - bareStart) / .seconds(1)

            let store = temporaryStore()
            let yaml = "name: overhead\nparameters: {i: {min: 1, max: \(n)}}\ntrainer: {command: [/bin/true]}\n"
            let plan = try Planner.plan(Experiment.parse(yaml: yaml, file: "overhead.yaml"))
            var options = RunnerOptions()
            options.handleSignals = false
            options.parallel = 1
            let sweepStart = ContinuousClock.now
            let outcome = try await SweepRunner(store: store, plan: plan, spec: yaml, options: options).run()
            let swept = (ContinuousClock.now - sweepStart) / .seconds(1)
            precondition(outcome.runs.allSatisfy { $0.status == .succeeded })
            benchmark.measurement(.custom("overhead µs per trial", useScalingFactor: false), Int((swept - bare) / Double(n) * 1e6))
        }
    }
}
