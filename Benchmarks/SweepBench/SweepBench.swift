import Benchmark
import Sweep

/// A 100,000-point grid (10 × 10 × 10 × 10 × 10 over five parameters, one derived): parse, expand, key.
let grid100k = """
    name: bench
    method: grid
    parameters:
      lr: {values: [1.0e-5, 2.0e-5, 5.0e-5, 1.0e-4, 2.0e-4, 3.0e-4, 5.0e-4, 1.0e-3, 2.0e-3, 3.0e-3]}
      epochs: {min: 1, max: 10}
      warmup_ratio: {values: [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.2]}
      lora_r: {values: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]}
      mix_ratio: {distribution: q_uniform, min: 0.0, max: 0.5, q: 0.05}
      lora_alpha: {expr: "2 * lora_r"}
      base_model: chat
    """

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds,
                                           maxDuration: .seconds(10), maxIterations: 10)

    Benchmark("plan 100k-trial grid (expand + key)") { benchmark in
        for _ in benchmark.scaledIterations {
            let plan = try Planner.plan(Experiment.parse(yaml: grid100k, file: "bench.yaml"))
            precondition(plan.trials.count == 100_000)
            blackHole(plan)
        }
    }
}
