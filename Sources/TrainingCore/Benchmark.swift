import Foundation

/// Train-step throughput (forward + backward + clip + AdamW) on fixed shapes, for `harrow-train bench`.
public enum TrainBenchmark {
    public struct Case: Sendable {
        public var name: String
        public var config: LlamaConfig
        public var batch: Int, seqLen: Int
        public var lora: LoRAConfig
        /// PyTorch 2.15 (MKL) tokens/s on this machine for a GPT-style model of the same widths, by thread count (issue 3).
        public var pytorch: [Int: Double]
    }

    public static let cases: [Case] = [
        Case(
            name: "tiny",
            config: LlamaConfig(
                hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4,
                max_position_embeddings: 64),
            batch: 16, seqLen: 64, lora: LoRAConfig(r: 8), pytorch: [1: 64000, 2: 76000]),
        Case(
            name: "small",
            config: LlamaConfig(
                hidden_size: 128, intermediate_size: 344, num_hidden_layers: 4, num_attention_heads: 4,
                max_position_embeddings: 128),
            batch: 16, seqLen: 128, lora: LoRAConfig(r: 8), pytorch: [1: 13500, 2: 21000]),
        Case(
            name: "medium",
            config: LlamaConfig(
                hidden_size: 256, intermediate_size: 688, num_hidden_layers: 6, num_attention_heads: 8,
                max_position_embeddings: 128),
            batch: 8, seqLen: 128, lora: LoRAConfig(r: 16, lora_alpha: 32), pytorch: [1: 3200, 2: 5100])
    ]

    public static let flopsFormula =
        "4 x frozen matmul params (q,k,v,o,gate,up,down of every layer + lm_head: forward and input gradient; no weight gradients) "
        + "- 2 x layer-0 q,k,v params (their input gradient is not needed with frozen embeddings) "
        + "+ 6 x LoRA params (less 2 x r x in of layer-0 q,k,v adapters) "
        + "+ 6 x layers x seq_len x heads x head_dim (causal attention: QK^T and PV over the lower triangle, twice that backward)"

    public static func flopsPerToken(_ c: Case) -> Double {
        let m = c.config
        let perLayer = Projection.allCases.reduce(0) { $0 + $1.inFeatures(m) * $1.outFeatures(m) }
        let firstLayerInputs = [Projection.q_proj, .k_proj, .v_proj]
        let frozen =
            4 * Double(m.num_hidden_layers * perLayer + m.vocab_size * m.hidden_size)
            - 2 * Double(firstLayerInputs.reduce(0) { $0 + $1.inFeatures(m) * $1.outFeatures(m) })
        let adapted = c.lora.target_modules
        let lora =
            6 * Double(m.num_hidden_layers * adapted.reduce(0) { $0 + c.lora.r * ($1.inFeatures(m) + $1.outFeatures(m)) })
            - 2 * Double(adapted.filter(firstLayerInputs.contains).reduce(0) { $0 + c.lora.r * $1.inFeatures(m) })
        let attention = Double(6 * m.num_hidden_layers * c.seqLen * m.num_attention_heads * m.head_dim)
        return frozen + lora + attention
    }

    public struct Result: Sendable {
        public var tokensPerSecond: Double
        public var gflops: Double
        public var windows: [Double]
        /// Tokens per second of process CPU time (median window): less sensitive than wall time to other load on the
        /// machine, and with several threads it shows how much of their time is useful.
        public var tokensPerCPUSecond: Double
    }

    /// Warm-up steps, then `windows` timed windows of at least `windowSeconds` each; the median window counts.
    /// With `fixedSteps`, runs that many steps after three warm-up steps and reports them as one window (for
    /// profilers and counters, which want the same work every run).
    public static func measure(_ c: Case, threads: Int, windows: Int = 7, windowSeconds: Double = 0.3, fixedSteps: Int? = nil) -> Result {
        BLAS.setThreads(threads)
        var rng = SeededGenerator(seed: 1)
        let weights = LlamaWeights<Float>(c.config)
        weights.initialise(std: 0.02, rng: &rng)
        let lora = LoRA<Float>(config: c.lora, model: c.config, rng: &rng)
        let model = LlamaModel(config: c.config, weights: weights, lora: lora)
        let params = lora.all.flatMap {
            [
                Parameter(name: "A", value: $0.A, grad: $0.dA, decay: true),
                Parameter(name: "B", value: $0.B, grad: $0.dB, decay: true)
            ]
        }
        let optimizer = AdamW(params)
        let ws = model.makeWorkspace(batch: c.batch, seqLen: c.seqLen)
        let n = c.batch * c.seqLen
        for i in 0..<n {
            ws.tokens[i] = Int32(rng.next() % 256)
            ws.targets[i] = Int32(rng.next() % 256)
        }
        func step() {
            Gradients.zero(params)
            model.forward(ws, batch: c.batch, seqLen: c.seqLen, training: true)
            _ = model.loss(ws, batch: c.batch, seqLen: c.seqLen, gradScale: 1 / Float(n))
            model.backward(ws, batch: c.batch, seqLen: c.seqLen)
            Gradients.clip(params, maxNorm: 1)
            optimizer.step(params, lr: 1e-4)
        }
        if let fixedSteps {
            for _ in 0..<3 { step() }
            let start = now(), cpuStart = cpuTime()
            for _ in 0..<fixedSteps { step() }
            let rate = Double(n * fixedSteps) / (now() - start)
            return Result(
                tokensPerSecond: rate, gflops: rate * flopsPerToken(c) / 1e9, windows: [rate],
                tokensPerCPUSecond: Double(n * fixedSteps) / (cpuTime() - cpuStart))
        }
        let warmupStart = now()
        var warmupSteps = 0
        while warmupSteps < 3 || now() - warmupStart < 0.5 { step(); warmupSteps += 1 }
        let stepsPerWindow = max(1, Int(windowSeconds / ((now() - warmupStart) / Double(warmupSteps))))
        var rates: [Double] = [], cpuRates: [Double] = []
        for _ in 0..<windows {
            let start = now(), cpuStart = cpuTime()
            for _ in 0..<stepsPerWindow { step() }
            rates.append(Double(n * stepsPerWindow) / (now() - start))
            cpuRates.append(Double(n * stepsPerWindow) / (cpuTime() - cpuStart))
        }
        let median = rates.sorted()[rates.count / 2]
        return Result(
            tokensPerSecond: median, gflops: median * flopsPerToken(c) / 1e9, windows: rates,
            tokensPerCPUSecond: cpuRates.sorted()[cpuRates.count / 2])
    }

    /// GFLOP/s of one large square sgemm (median of repeats): the reference peak.
    public static func sgemmPeak(threads: Int, size: Int = 1024, repeats: Int = 7) -> Double {
        BLAS.setThreads(threads)
        let a = Tensor<Float>([size, size]), b = Tensor<Float>([size, size]), c = Tensor<Float>([size, size])
        for i in 0..<a.count { a.data[i] = Float(i % 7) * 0.1; b.data[i] = Float(i % 5) * 0.1 }
        var times: [Double] = []
        for _ in 0..<(repeats + 1) {
            let start = now()
            Float.gemm(
                transA: false, transB: false, m: size, n: size, k: size, alpha: 1, a: a.data, lda: size,
                b: b.data, ldb: size, beta: 0, c: c.data, ldc: size)
            times.append(now() - start)
        }
        let median = times.dropFirst().sorted()[repeats / 2]
        return 2 * pow(Double(size), 3) / median / 1e9
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func cpuTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
