import Foundation
import HarrowCore

extension Diagnoser {
    /// What to do next, in numbers: the step and epoch to keep (and the checkpoint that holds it, or that none
    /// does), the share of the run spent after it, how many epochs instead, and which way to move the learning
    /// rate and about how far.
    static func advice(
        _ v: Verdict, bestStep: Int?, e: Evidence, t: Thresholds, lastStep: Int? = nil,
        checkpoints: Checkpoints? = nil
    ) -> String {
        let epochsRun = e.epochs.map { max(1, Int($0.rounded())) }
        func percent(_ x: Double) -> String { String(format: "%.1f%%", abs(x) * 100) }
        func at(_ step: Int?) -> String {
            guard let step else { return "" }
            guard let spe = e.stepsPerEpoch, let run = e.epochs else { return " at step \(step)" }
            return " at step \(step) (epoch \(String(format: "%.1f", Double(step) / Double(spe))) of \(String(format: "%.1f", run)))"
        }
        // Epochs enough to reach the step to keep.
        func fewerEpochs(than step: Int?) -> String {
            guard let run = epochsRun, let step, let spe = e.stepsPerEpoch else { return "train fewer epochs" }
            let keep = max(1, Int((Double(step) / Double(spe)).rounded(.up)))
            return keep < run ? "train \(keep) epoch\(keep == 1 ? "" : "s") instead of \(run)" : "train fewer steps"
        }
        switch v {
        case .good_fit:
            return
                "train and val loss fell together and flattened\(e.valMinStep.map { "; val was lowest at step \($0)" } ?? ""): keep these settings"
        case .overfitting:
            let after = e.afterBestShare.map { "; the \(percent($0)) of the run after it bought nothing" } ?? ""
            let train = e.trainAfterBest.map { " while train fell \(percent($0)) more" } ?? ""
            if let rise = e.valRisePercent, rise > max(t.overfitRisePercent, e.valNoisePercent ?? 0) {
                return "val loss was lowest\(at(bestStep)) and ended \(String(format: "%.1f", rise))% above it\(train)\(after): "
                    + "\(keep(bestStep, lastStep: lastStep, checkpoints: checkpoints)), \(fewerEpochs(than: bestStep)), or add more diverse data"
            }
            let share = e.plateauShare.map { " for the last \(percent($0)) of the run" } ?? ""
            let fell = e.trainFallOnPlateau.map { " while train fell \(percent($0))" } ?? ""
            return "val loss stopped improving\(at(e.plateauStep))\(share)\(fell): the model memorises and those steps bought nothing; "
                + "\(fewerEpochs(than: e.plateauStep)), or \(keep(bestStep, lastStep: lastStep, checkpoints: checkpoints))"
        case .under_trained:
            if let progress = e.valProgress, progress < t.minimumProgress {
                let train = e.trainQuarterRatio.map { " and train \(percent(1 - $0)) from its first quarter to its last" } ?? ""
                return "val loss barely moved (it fell \(percent(progress)) over the run\(train)): "
                    + "raise the learning rate about 3–10×; more epochs at this rate would buy little"
            }
            let more = epochsRun.map { "about \(max($0 + 1, Int((Double($0) * 1.5).rounded()))) epochs instead of \($0)" } ?? "more epochs"
            if let drop = e.valLastFall, drop > max(t.stillFalling, e.valTailFall ?? 0) {
                return
                    "val loss fell \(percent(drop)) more at the last evaluation, to its lowest: train \(more), or raise the learning rate a little"
            }
            if let fall = e.valTailFall {
                return "val loss was still falling at the end (\(percent(fall)) over the last \(percent(t.tailFraction)) of the steps): "
                    + "train \(more), or raise the learning rate a little"
            }
            return
                "train loss was still falling at the end (\(percent(e.trainTailChange ?? 0)) over the last third of the steps): train \(more)"
        case .diverged:
            return
                "the loss blew up (non-finite or far above its start): lower the learning rate about 10×, and check warmup and gradient clipping"
        case .unstable:
            if let start = e.trainStart, let final = e.trainFinal, final > start {
                return
                    "the loss rose instead of falling (\(String(format: "%.3g", start)) → \(String(format: "%.3g", final))): lower the learning rate about 10×"
            }
            if let spikes = e.spikes, Double(spikes) >= t.spikes {
                return
                    "the loss spiked \(spikes) times after the first tenth of the steps: lower the learning rate about 10× (or clip gradients harder)"
            }
            return "the loss is erratic and not decreasing: lower the learning rate about 10×"
        case .stalled_start:
            if let q = e.trainQuarterRatio, q > 1 - t.minimumDecrease {
                return
                    "the loss never started falling: raise the learning rate about 10× (and check that the adapter's weights are trainable)"
            }
            let flat =
                "the loss stayed flat over the first \(percent(t.startFraction)) of the steps (it moved \(percent(e.trainStartChange ?? 0))) before it fell"
            // A warmup far longer than usual that spans much of the flat stretch is what held the loss back.
            if let w = e.warmupShare, let epochs = e.epochs, w >= t.startFraction / 2, Warmup.isLong(w, epochs: epochs) {
                return flat + ", while the learning rate was still warming up over the first \(percent(w)) of the steps: "
                    + "shorten the warmup to about \(percent(Warmup.usualShare(epochs: epochs))) (1% per epoch, at most 10%) or raise the learning rate"
            }
            return flat + ": raise warmup_ratio (about 1% per epoch) or the learning rate"
        case .insufficient_data:
            return "too few points to judge"
        }
    }
}
