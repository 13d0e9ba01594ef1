import ArgumentParser
import Foundation
import HarrowCore
import Sweep

/// The benchmark objective as a trainer: writes its val/loss curve as Harrow's metrics lines, one evaluation at a
/// time, so sweeps, hyperband and reports meet it through the real runner.
struct Objective: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the search benchmark's synthetic val/loss curve for a trial (a trainer for testing search methods).",
        discussion: """
            Reads lr, lora_r, base_model, warmup_ratio and epochs from --config (a trial.json) or --params (JSON) and writes \
            four evaluations per epoch to $HARROW_METRICS. With --print it only prints the curve's minimum.
            """)

    @Option(help: "A trial.json: a flat JSON object of parameter names to values.") var config: String?
    @Option(help: "The parameters as one JSON object (instead of --config).") var params: String?
    @Option(help: "Seconds each epoch takes.") var secondsPerEpoch = 0.0
    @Flag(help: "Print the objective's value (the curve's minimum) and exit.") var print = false

    func run() throws {
        // Text that is not a JSON object leaves every parameter at the objective's default.
        let p: [String: ParamValue]
        if let params {
            p = (try? TrialFile.decode(Data(params.utf8))) ?? [:]
        } else if let config {
            do { p = try TrialFile.read(config) } catch {
                if case .unreadable = error { throw ValidationError("cannot read \(config)") }
                p = [:]
            }
        } else {
            throw ValidationError("give --config or --params")
        }
        if print {
            Swift.print(BenchmarkObjective.value(p))
            return
        }
        let path = ProcessInfo.processInfo.environment["HARROW_METRICS"] ?? "/dev/stdout"
        guard FileManager.default.createFile(atPath: path, contents: nil) || path == "/dev/stdout",
            let out = FileHandle(forWritingAtPath: path)
        else { throw ValidationError("cannot write \(path)") }
        let pause = secondsPerEpoch / Double(BenchmarkObjective.evaluationsPerEpoch)
        for (i, v) in BenchmarkObjective.curve(p).enumerated() {
            if pause > 0 { Thread.sleep(forTimeInterval: pause) }
            let epoch = Double(i + 1) / Double(BenchmarkObjective.evaluationsPerEpoch)
            out.write(Data("{\"step\": \(i + 1), \"epoch\": \(epoch), \"train/loss\": \(v * 0.9), \"val/loss\": \(v)}\n".utf8))
        }
        try out.close()
    }
}

/// How many trials bayes, tpe and random search need to come within 1% of the best point of a grid over the
/// benchmark objective, and what hyperband saves on that grid.
struct SearchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-bench",
        abstract: "Trials each search method needs to come within 1% of the grid's best on the benchmark objective; hyperband's savings.")

    @Option(help: "Seeds per method (the median is reported).") var seeds = 10
    @Option(help: "Trials at most per search.") var maxTrials = 150
    @Flag(help: "Print only the JSON document.") var json = false
    @Option(help: "Print every proposal of one search with this method (seed 1) instead.") var trace: String?

    static let space = """
        name: search-bench
        metric: {name: val/loss, goal: minimize}
        parameters:
          base_model: {values: [base, chat]}
          epochs: {distribution: int_uniform, min: 1, max: 10}
          lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
          warmup_ratio: {distribution: uniform, min: 0.0, max: 0.2}
          lora_r: {distribution: int_uniform, min: 4, max: 64}
        """
    static let grid = """
        name: search-bench-grid
        method: grid
        metric: {name: val/loss, goal: minimize}
        parameters:
          base_model: {values: [base, chat]}
          epochs: {values: [2, 4, 8]}
          lr: {values: [1.0e-4, 3.0e-4, 1.0e-3]}
          warmup_ratio: {values: [0.0, 0.03, 0.1]}
          lora_r: {values: [8, 16, 32]}
        """

    func run() throws {
        let gridPlan = try Planner.plan(try Experiment.parse(yaml: Self.grid, file: "grid.yaml"))
        let values = gridPlan.trials.map { BenchmarkObjective.value(Dictionary(uniqueKeysWithValues: $0.parameters)) }
        let gridBest = values.min()!
        let target = gridBest * 1.01
        if let trace {
            var e = try Experiment.parse(yaml: Self.space + "\nmethod: \(trace)\nseed: 1\ncount: \(maxTrials)\n", file: "\(trace).yaml")
            e.seed = 1
            _ = try Self.search(e, target: -1, maxTrials: maxTrials, trace: true)
            return
        }
        var rows: [[String: Any]] = []
        for method in ["bayes", "tpe", "random"] {
            var needed: [Int] = [], bestAt20: [Double] = []
            for seed in 1...seeds {
                var e = try Experiment.parse(
                    yaml: Self.space + "\nmethod: \(method)\nseed: \(seed)\ncount: \(maxTrials)\n", file: "\(method).yaml")
                e.seed = UInt64(seed)
                let (n, best20) = try Self.search(e, target: target, maxTrials: maxTrials)
                needed.append(n ?? maxTrials + 1)
                bestAt20.append(best20)
            }
            let row: [String: Any] = [
                "method": method, "median_trials": median(needed.map(Double.init)), "trials": needed,
                "reached": needed.filter { $0 <= maxTrials }.count, "median_best_after_20": median(bestAt20)
            ]
            rows.append(row)
            if !json {
                Swift.print(
                    "\(method): median \(median(needed.map(Double.init))) trials to within 1% of the grid's best (\(needed.map(String.init).joined(separator: " ")))"
                )
            }
        }
        let hb = Self.hyperband(gridPlan.trials)
        let document: [String: Any] = [
            "grid_points": values.count, "grid_best": gridBest, "target": target, "seeds": seeds, "methods": rows,
            "hyperband": hb
        ]
        if !json {
            Swift.print("grid: \(values.count) points, best \(String(format: "%.4f", gridBest))")
            Swift.print(
                "hyperband (min_iter 4, eta 3) over the grid: \(hb["steps_run"]!) of \(hb["steps_total"]!) evaluations run, best \(hb["best_with"]!) vs \(hb["best_without"]!)"
            )
        }
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
        if json { Swift.print(String(decoding: data, as: UTF8.self)) }
    }

    /// One search, one trial at a time: the trials needed to reach `target`, and the best after 20.
    static func search(_ e: Experiment, target: Double, maxTrials: Int, trace: Bool = false) throws -> (Int?, Double) {
        var observations: [Observation] = []
        var best = Double.infinity, best20 = Double.infinity, reached: Int?
        let random = e.method == .random ? try Planner.plan(e).trials : []
        for n in 1...maxTrials {
            let trial: Trial
            if e.method == .random {
                guard n <= random.count else { break }
                trial = random[n - 1]
            } else {
                guard let p = try Search.propose(e, number: n, observations: observations) else { break }
                trial = p.trial
                if trace { Swift.print(p.explanation.summary) }
            }
            let v = BenchmarkObjective.value(Dictionary(uniqueKeysWithValues: trial.parameters))
            observations.append(Observation(trial: trial, state: .finished, best: v, worst: v))
            best = min(best, v)
            if trace { Swift.print("  \(trial.parametersJSON) → \(v)") }
            if n == 20 { best20 = best }
            if reached == nil, best <= target { reached = n }
            if reached != nil, n >= 20 { break }
        }
        return (reached, best20)
    }

    /// The grid's trials one after another under hyperband (min_iter one epoch, eta 3, strict), against running all.
    static func hyperband(_ trials: [Trial]) -> [String: Any] {
        let rule = Hyperband(
            Experiment.EarlyTerminate(
                type: "hyperband", minIter: BenchmarkObjective.evaluationsPerEpoch, maxIter: nil, s: nil,
                eta: 3, strict: true))!
        var histories: [[Double]] = []
        var run = 0, total = 0, stopped = 0
        var bestWith = Double.infinity, bestWithout = Double.infinity
        for trial in trials {
            let curve = BenchmarkObjective.curve(Dictionary(uniqueKeysWithValues: trial.parameters))
            total += curve.count
            bestWithout = min(bestWithout, curve.min()!)
            var mine: [Double] = []
            for v in curve {
                mine.append(v)
                if rule.decide(mine, all: histories + [mine]) != nil { stopped += 1; break }
            }
            run += mine.count
            bestWith = min(bestWith, mine.min()!)
            histories.append(mine)
        }
        return [
            "steps_total": total, "steps_run": run, "saved_fraction": Double(total - run) / Double(total), "stopped": stopped,
            "best_with": bestWith, "best_without": bestWithout, "best_unchanged": bestWith == bestWithout
        ]
    }
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
