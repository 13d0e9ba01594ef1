import Testing
@testable import Sweep

/// What a trial asks Slurm for from its memory estimate, on estimates built term by term so each rule is worked
/// out by hand here.
@Suite struct SlurmRequestTests {
    static let gib = 1 << 30

    /// An estimate with the named terms (the rest 0), its total as the estimate adds them: states + the larger of
    /// the backward pass and the step + context + 10% slack of what is allocated.
    static func estimate(weights: Int, optimizer: Int, gradients: Int, activations: Int, cuda: Bool = true) -> MemoryEstimate.Estimate {
        let allocated = weights + optimizer + max(activations, gradients)
        let context = cuda ? 512 << 20 : 0, slack = cuda ? allocated / 10 : 0
        let terms = [
            ("weights", weights), ("lora_params", 0), ("gradients", gradients), ("optimizer_states", optimizer),
            ("optimizer_step", 0), ("activations", activations), ("logits", 0), ("cuda_context", context),
            ("allocator_slack", slack)
        ].map { MemoryEstimate.Term(name: $0.0, bytes: $0.1, formula: "") }
        return MemoryEstimate.Estimate(terms: terms, total: allocated + context + slack, assumptions: [])
    }

    static func settings(gpuMemory: Int? = nil, gres: String? = nil, mem: String? = nil) -> Experiment.ExecutorSettings {
        var s = Experiment.ExecutorSettings()
        s.gpuMemory = gpuMemory; s.gres = gres; s.mem = mem
        return s
    }

    @Test func oneCardWhenItFitsAndHostMemoryForTheWeights() {
        // 1 + 0 + 1 GiB allocated, + 0.5 context + 0.2 slack = 2.7 GiB; a 4 GiB card has 3.6 usable.
        let e = Self.estimate(weights: Self.gib, optimizer: 0, gradients: 0, activations: Self.gib)
        let r = SlurmRequest.request(e, settings: Self.settings(gpuMemory: 4 * Self.gib))
        #expect(r.gpus == 1)
        // Weights 1 GiB + 3 GiB runtime.
        #expect(r.arguments == ["--gres=gpu:1", "--mem=4G"])
    }

    @Test func cardsToShardOverWhenOneIsTooSmall() {
        // Full fine-tuning: weights 2, AdamW 4, gradients 2, activations 1 GiB: 8 allocated + 0.5 + 0.8 = 9.3 GiB.
        let e = Self.estimate(weights: 2 * Self.gib, optimizer: 4 * Self.gib, gradients: 2 * Self.gib, activations: Self.gib)
        // On 4 GiB cards (3.6 usable): over 2, 3 + max(1, 1) = 4 + 0.5 + 0.4 = 4.9, no; over 3, 2 + 1 = 3 + 0.5 + 0.3 = 3.8,
        // no; over 4, 1.5 + 1 = 2.5 + 0.5 + 0.25 = 3.25 GiB, yes.
        #expect(SlurmRequest.perCard(e, cards: 3) > Int(3.6 * Double(Self.gib)))
        #expect(SlurmRequest.perCard(e, cards: 4) == Int(3.25 * Double(Self.gib)))
        let r = SlurmRequest.request(e, settings: Self.settings(gpuMemory: 4 * Self.gib))
        #expect(r.gpus == 4)
        #expect(r.reasons.first?.contains("under plain data parallelism each card holds it all") == true)
        // Activations alone (5 GiB) exceed a card: no number of cards helps, one is asked for and the reason says why.
        let big = Self.estimate(weights: Self.gib, optimizer: 0, gradients: 0, activations: 5 * Self.gib)
        let b = SlurmRequest.request(big, settings: Self.settings(gpuMemory: 4 * Self.gib))
        #expect(b.gpus == 1)
        #expect(b.reasons.first?.contains("does not fit") == true)
    }

    @Test func theExperimentsOwnSettingsWin() {
        let e = Self.estimate(weights: Self.gib, optimizer: 0, gradients: 0, activations: Self.gib)
        // gres given: the cards are the experiment's, the host memory still the weights'.
        #expect(SlurmRequest.request(e, settings: Self.settings(gpuMemory: 4 * Self.gib, gres: "gpu:a100:1")).arguments == ["--mem=4G"])
        #expect(SlurmRequest.request(e, settings: Self.settings(gres: "gpu:1")).arguments == ["--mem=4G"])
        #expect(SlurmRequest.request(e, settings: Self.settings(gpuMemory: 4 * Self.gib, mem: "64G")).arguments == ["--gres=gpu:1"])
        // No estimate: nothing beyond the experiment's settings.
        #expect(SlurmRequest.request(nil, settings: Self.settings(gpuMemory: 4 * Self.gib)).arguments.isEmpty)
    }

    @Test func onTheCPUTheWholeEstimateIsHostMemory() {
        // No cards named: the trial trains on the CPU; 2.5 GiB estimated + 3 runtime = 5.5, asked as 6G.
        let e = Self.estimate(weights: Self.gib, optimizer: 0, gradients: 0, activations: Self.gib + Self.gib / 2, cuda: false)
        #expect(SlurmRequest.request(e, settings: Self.settings()).arguments == ["--mem=6G"])
    }
}
