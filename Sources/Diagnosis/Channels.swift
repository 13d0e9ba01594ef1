/// One task type's val curve read against the run's train curve (ms-swift's channel loss): in SFT one task type
/// often over-fits while another is still learning.
public struct ChannelReading: Sendable, Equatable, Codable {
    public var task: String
    public var verdict: Verdict
    public var confidence: Double
    /// Where this task type's val loss was lowest (as logged, the earliest of equals).
    public var bestStep: Int?
    /// How far it ended above that minimum, in percent.
    public var risePercent: Double?
    /// How much it fell over the last part of training (positive = still falling).
    public var tailFall: Double?
    /// Validation records of this task type, when the trainer logged them (`val/records@TASK`).
    public var records: Int?
}

extension Diagnoser {
    /// Reads each task type's val curve with the same rules as the whole run's, earliest turn first.
    public static func channels(
        train: Curve, channels: [String: Curve], lr: Curve? = nil, schedule: Schedule = Schedule(),
        thresholds t: Thresholds = Thresholds()
    ) -> [ChannelReading] {
        channels.map { task, val in
            let d = diagnose(train: train, val: val, lr: lr, schedule: schedule, thresholds: t)
            return ChannelReading(
                task: task, verdict: d.verdict, confidence: d.confidence, bestStep: d.bestStep, risePercent: d.evidence.valRisePercent,
                tailFall: d.evidence.valTailFall)
        }.sorted { a, b in
            let order: [Verdict] = [.overfitting, .diverged, .unstable, .stalled_start, .good_fit, .under_trained, .insufficient_data]
            let (i, j) = (order.firstIndex(of: a.verdict)!, order.firstIndex(of: b.verdict)!)
            if i != j { return i < j }
            if a.bestStep != b.bestStep { return (a.bestStep ?? .max) < (b.bestStep ?? .max) }
            return a.task < b.task
        }
    }

    /// One sentence on which task type turned first, when they tell different stories: "qa/dose over-fits from
    /// step 300 (+12%); safety/refusal still falling (2.1% over the last quarter)". Nil when they agree. A task type
    /// with a handful of records is noisy: only readings at least this sure are named.
    public static func channelSummary(_ readings: [ChannelReading], confidence: Double = 0.75) -> String? {
        guard Set(readings.map(\.verdict)).count > 1 else { return nil }
        let parts = readings.filter { $0.confidence >= confidence }.compactMap { r -> String? in
            switch r.verdict {
            case .overfitting:
                let rise = r.risePercent.map { " (+\(String(format: "%.1f", $0))%)" } ?? ""
                return "\(r.task) over-fits from step \(r.bestStep.map(String.init) ?? "?")\(rise)"
            case .under_trained:
                guard let fall = r.tailFall, fall > 0.005 else { return "\(r.task) barely moved" }
                return "\(r.task) still falling (\(String(format: "%.1f", fall * 100))% over the last quarter)"
            case .unstable, .diverged, .stalled_start:
                return "\(r.task) \(r.verdict.rawValue.replacingOccurrences(of: "_", with: " "))"
            case .good_fit, .insufficient_data:
                return nil
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
