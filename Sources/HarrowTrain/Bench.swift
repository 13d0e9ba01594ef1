import ArgumentParser
import Foundation
import TrainingCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure train-step tokens/s (forward + backward + AdamW) on the tiny, small and medium shapes with 1 and 2 threads.")

    @Flag(help: "Print only the JSON document.") var json = false
    @Option(parsing: .upToNextOption, help: "Thread counts to measure, e.g. --threads 1 2.") var threads: [Int] = [1, 2]
    @Option(help: "Timed windows per measurement (the median is reported).") var windows = 7
    @Option(help: "Run exactly this many steps per measurement instead of timed windows (for profilers).") var steps: Int?
    @Option(parsing: .upToNextOption, help: "Configurations to measure, e.g. --configs tiny small; all by default.")
    var configs: [String] = []

    func validate() throws {
        let known = TrainBenchmark.cases.map(\.name)
        for c in configs where !known.contains(c) {
            throw ValidationError("unknown configuration '\(c)'; choose from \(known.joined(separator: ", "))")
        }
        if threads.contains(where: { $0 < 1 }) { throw ValidationError("thread counts must be at least 1") }
    }

    func run() throws {
        var peaks: [String: Any] = [:]
        if steps == nil { for t in threads { peaks[String(t)] = round1(TrainBenchmark.sgemmPeak(threads: t)) } }
        var results: [[String: Any]] = []
        for c in TrainBenchmark.cases where configs.isEmpty || configs.contains(c.name) {
            for t in threads {
                let r = TrainBenchmark.measure(c, threads: t, windows: windows, fixedSteps: steps)
                var row: [String: Any] = [
                    "config": c.name, "threads": t, "tokens_per_s": Int(r.tokensPerSecond.rounded()),
                    "tokens_per_cpu_s": Int(r.tokensPerCPUSecond.rounded()), "gflops": round1(r.gflops),
                    "flops_per_token": Int(TrainBenchmark.flopsPerToken(c))
                ]
                if let peak = peaks[String(t)] as? Double { row["fraction_of_sgemm_peak"] = (r.gflops / peak * 1000).rounded() / 1000 }
                if let torch = c.pytorch[t] {
                    row["pytorch_tokens_per_s"] = Int(torch)
                    row["vs_pytorch"] = (r.tokensPerSecond / torch * 100).rounded() / 100
                }
                results.append(row)
                if !json {
                    FileHandle.standardError.write(
                        Data("\(c.name) threads=\(t): \(Int(r.tokensPerSecond)) tokens/s, \(round1(r.gflops)) GFLOP/s\n".utf8))
                }
            }
        }
        let doc: [String: Any] = [
            "openblas": BLAS.config, "flops_per_token": TrainBenchmark.flopsFormula,
            "sgemm_peak_gflops_1024": peaks, "results": results
        ]
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    private func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}
