/// What a trial asks Slurm for when the experiment does not say: `--gres=gpu:N` from its memory estimate and the
/// card size the experiment declares (`executor.gpu_memory`), and `--mem` for the host. Pure.
public enum SlurmRequest {
    /// Host memory a training process holds beside its tensors: the interpreter, PyTorch and the CUDA libraries
    /// mapped in (2–3 GiB resident for a CUDA PyTorch process), and the tokenised data. A stated constant.
    public static let hostRuntimeBytes = 3 << 30

    public struct Request: Sendable, Equatable {
        public var gpus: Int?
        public var hostBytes: Int?
        /// How each was chosen, for `harrow plan --memory`.
        public var reasons: [String]

        /// sbatch's options: `--gres=gpu:N`, `--mem=NG` (whole GiB, rounded up).
        public var arguments: [String] {
            (gpus.map { ["--gres=gpu:\($0)"] } ?? []) + (hostBytes.map { ["--mem=\(SlurmRequest.wholeGiB($0))G"] } ?? [])
        }
    }

    /// A trial with no estimate asks for nothing the experiment does not: the cluster's defaults apply.
    /// - gres: the experiment's `gres` wins; else, with `gpu_memory` declared, one card when the estimate fits in
    ///   `cardUsableShare` of it, otherwise the fewest cards over which a sharding trainer (FSDP, DeepSpeed ZeRO-3)
    ///   fits it (`perCard`); under plain data parallelism every card holds it all, and more cards do not help.
    /// - mem: the experiment's `mem` wins; else a trial on cards needs its weights on the host while they load
    ///   (transformers reads them into host memory before moving them) plus the runtime; a trial on the CPU needs
    ///   its whole estimate plus the runtime.
    public static func request(_ estimate: MemoryEstimate.Estimate?, settings: Experiment.ExecutorSettings) -> Request {
        var r = Request(gpus: nil, hostBytes: nil, reasons: [])
        guard let estimate else { return r }
        let onCards = settings.gres != nil || settings.gpuMemory != nil
        if settings.gres == nil, let card = settings.gpuMemory {
            let usable = Int(Double(card) * MemoryEstimate.cardUsableShare)
            let usableText = "\(gib(usable)) usable a card (\(Int(MemoryEstimate.cardUsableShare * 100))% of gpu_memory)"
            if estimate.total <= usable {
                r.gpus = 1
                r.reasons.append("gpu:1: \(gib(estimate.total)) estimated, \(usableText)")
            } else if let n = (2...maxCards).first(where: { perCard(estimate, cards: $0) <= usable }) {
                r.gpus = n
                r.reasons.append(
                    "gpu:\(n): \(gib(estimate.total)) on one card; sharded over \(n) (FSDP or DeepSpeed ZeRO-3) about "
                        + "\(gib(perCard(estimate, cards: n))) each, \(usableText); under plain data parallelism each card holds it all")
            } else {
                r.gpus = 1
                r.reasons.append(
                    "gpu:1: \(gib(estimate.total)) does not fit \(usableText) even sharded over \(maxCards) (its activations and "
                        + "logits alone are \(gib(estimate.bytes("activations") + estimate.bytes("logits")))); a smaller micro-batch or "
                        + "sequence length, or gradient checkpointing, is needed")
            }
        }
        if settings.mem == nil {
            let weights = estimate.bytes("weights")
            r.hostBytes = (onCards ? weights : estimate.total) + hostRuntimeBytes
            r.reasons.append(
                "mem \(wholeGiB(r.hostBytes!))G: "
                    + (onCards ? "weights \(gib(weights))" : "the estimate \(gib(estimate.total)) (on the CPU)")
                    + " + \(gib(hostRuntimeBytes)) runtime")
        }
        return r
    }

    /// Cards a request may name: a node's worth.
    public static let maxCards = 8

    /// A card's share of a trial sharded over `cards` (ZeRO-3): weights, adapters, gradients and optimiser states
    /// divide; each card keeps its own micro-batch's activations and logits, a CUDA context and its allocator slack.
    public static func perCard(_ e: MemoryEstimate.Estimate, cards: Int) -> Int {
        let states = e.bytes("weights") + e.bytes("lora_params") + e.bytes("optimizer_states")
        let backward = e.bytes("activations") + e.bytes("logits")
        let step = e.bytes("gradients") + e.bytes("optimizer_step")
        let held = e.accumulates ? e.bytes("gradients") / cards : 0
        let allocated = states / cards + max(backward + held, step / cards)
        let slack = e.bytes("allocator_slack") > 0 ? Int((Double(allocated) * MemoryEstimate.allocatorSlackFraction).rounded()) : 0
        return allocated + e.bytes("cuda_context") + slack
    }

    static func wholeGiB(_ bytes: Int) -> Int { (bytes + (1 << 30) - 1) >> 30 }
    static func gib(_ bytes: Int) -> String {
        let g = Double(bytes) / 0x1p30
        return g < 10 ? String(format: "%.2f GiB", g) : String(format: "%.1f GiB", g)
    }
}
