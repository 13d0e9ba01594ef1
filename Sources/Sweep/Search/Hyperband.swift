import Foundation

/// W&B's hyperband early termination (wandb/sweeps@b1dfc5f `src/sweeps/hyperband_stopping.py`,
/// `hyperband_stop_runs`). An iteration is one logged value of the sweep's metric. At each band, the threshold is
/// the value ranked ⌊n/η⌋ (from 0, best first) among the n trials, of any state, that reached it; a running trial
/// is stopped when its value at the highest band it has reached is worse than that band's threshold. `strict`
/// (the default) compares the value at the band; otherwise the best value so far.
public struct Hyperband: Sendable, Equatable {
    /// Iteration counts at which trials are compared, ascending.
    public let bands: [Int]
    public let eta: Double
    public let strict: Bool

    public init(bands: [Int], eta: Double, strict: Bool) {
        self.bands = bands
        self.eta = eta
        self.strict = strict
    }

    /// Bands from `max_iter` and `s` (max_iter/η, max_iter/η², … while at least 1, as integers, ascending; max_iter
    /// itself is not one), or from `min_iter` (min_iter·η^k for k below 100, as W&B writes them).
    public init?(_ settings: Experiment.EarlyTerminate) {
        var bands: [Int] = []
        if let maxIter = settings.maxIter, let s = settings.s {
            var band = Double(maxIter)
            for _ in 0..<max(Int(s), 0) {
                band /= settings.eta
                if band < 1 { break }
                bands.append(Int(band))
            }
            bands.sort()
        } else if let minIter = settings.minIter {
            var band = Double(minIter)
            // Beyond Int's range no run gets there; W&B's list of 100 is cut where it stops meaning anything.
            for _ in 0..<100 where band < Double(Int32.max) {
                bands.append(Int(band))
                band *= settings.eta
            }
        }
        guard !bands.isEmpty else { return nil }
        self.init(bands: bands, eta: settings.eta, strict: settings.strict)
    }

    /// Why a trial is stopped: the band, its value there and the threshold it missed.
    public struct Decision: Sendable, Equatable {
        public var band: Int
        public var value: Double
        public var threshold: Double
        /// Trials that reached the band.
        public var reached: Int
    }

    /// The threshold at each band over every trial's history (values in minimising form: lower is better);
    /// infinity where no trial reached the band.
    public func thresholds(_ histories: [[Double]]) -> [Double] {
        bands.map { band in
            let values = histories.compactMap { $0.count >= band ? $0[band - 1] : nil }.sorted()
            return values.isEmpty ? .infinity : values[Int(Double(values.count) / eta)]
        }
    }

    /// Whether a running trial with `history` should stop, given every trial's history (its own included).
    /// Histories are in minimising form: negate a maximised metric first.
    public func decide(_ history: [Double], all histories: [[Double]]) -> Decision? {
        guard let index = bands.lastIndex(where: { $0 <= history.count }) else { return nil }
        let band = bands[index]
        let values = histories.compactMap { $0.count >= band ? $0[band - 1] : nil }.sorted()
        guard !values.isEmpty else { return nil }
        let threshold = values[min(Int(Double(values.count) / eta), values.count - 1)]
        let value = strict ? history[band - 1] : history.min()!
        return value > threshold ? Decision(band: band, value: value, threshold: threshold, reached: values.count) : nil
    }
}
