import HarrowCore
import Foundation

/// A cheap stand-in for a LoRA fine-tune's validation curve over the overnight grid's parameter types, for measuring
/// search methods: log-scale learning rate, integer rank, categorical base model, warmup ratio and epochs. Four
/// evaluations per epoch; the loss falls at a rate set by lr, flattens at a floor set by the start model, the rank and
/// how far lr is from its best, and turns up past the epoch where the data is learnt (sooner at high lr), so good
/// fit, under-training and overfitting all occur. Its value is the curve's minimum, what a sweep scores a run by.
enum BenchmarkObjective {
    static let evaluationsPerEpoch = 4

    /// val/loss at each evaluation.
    static func curve(_ p: [String: ParamValue]) -> [Double] {
        let lr = p["lr"]?.number ?? 1e-3
        let rank = p["lora_r"]?.number ?? 16
        let chat = p["base_model"]?.plain == "chat"
        let warmup = p["warmup_ratio"]?.number ?? 0
        let epochs = max(Int(p["epochs"]?.number ?? 3), 1)
        let best = chat ? 8e-4 : 1.6e-3
        let off = log10(lr / best)
        // Too high a rate raises the floor more steeply than too low a one; a chat start begins lower.
        let floor =
            (chat ? 0.80 : 0.86) + 0.12 * off * off + (off > 0 ? 0.10 * off : 0) + 0.06 * 16 / (rank + 16)
            + 0.5 * pow(warmup - 0.01 * Double(epochs), 2)
        let start = chat ? 1.9 : 2.3
        // Epochs to converge: slow at low rates; warmup delays the start a little.
        let rate = 1.4 * pow(lr / 1e-3, 0.9)
        let learnt = 5.0 / max(pow(lr / 1e-3, 0.5), 0.2) * (1 + rank / 128)
        var out: [Double] = []
        for i in 1...(epochs * evaluationsPerEpoch) {
            let t = Double(i) / Double(evaluationsPerEpoch)
            let effective = max(t - 0.5 * warmup * Double(epochs), 0)
            var v = floor + (start - floor) * exp(-rate * effective)
            if t > learnt { v += 0.015 * pow(t - learnt, 2) * (1 + 16 / (rank + 16)) }
            out.append(v)
        }
        return out
    }

    /// The curve's minimum.
    static func value(_ p: [String: ParamValue]) -> Double { curve(p).min() ?? .infinity }
}
