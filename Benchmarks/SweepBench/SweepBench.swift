import Benchmark
import Sweep
let benchmarks: @Sendable () -> Void = {}
