import HarrowCore
import Diagnosis
import Foundation
import Sweep
import Tracking
#if canImport(Glibc)
    import Glibc
#endif

/// Where a run's curves come from: Harrow's metrics lines, or a trainer's own log read as it grows.
struct MetricsSource: Sendable {
    var format: Experiment.MetricsLog.Format
    /// The file (for `hf`, the run folder). A component with `*` is resolved to the newest match once one exists.
    var path: String
    var keys: [String: String] = [:]
    /// Harrow's metrics lines in the run folder: read instead when the trainer writes them too (Harrow's callback in a
    /// Hugging Face script, its logging helper beside `wandb.log`).
    var metricsLines: String? = nil

    static func harrow(_ path: String) -> MetricsSource { MetricsSource(format: .harrow, path: path) }
}

/// Moves trainers' metrics into the store: every tick, the new lines of every active run's log (from its
/// offset) go into one transaction. Harrow's metrics lines, LLaMA-Factory's, ms-swift's and any JSON lines are
/// read by byte offset; a Hugging Face trainer's `trainer_state.json` by the last step read.
actor MetricsPump {
    struct Active {
        var source: MetricsSource
        var offset: Int64
        var state = LogTailState()
        /// The file a pattern resolved to.
        var path: String?
    }

    /// Hyperband over the sweep's metric: the rule, the metric, and whether it is maximised.
    struct HyperbandWatch: Sendable {
        var rule: Hyperband
        var metric: String
        var maximize: Bool
    }

    let store: Store
    let earlyStop: EarlyStop?
    let hyperband: HyperbandWatch?
    private var active: [Int64: Active] = [:]
    private var trackers: [Int64: EarlyStop] = [:]
    /// Every trial's logged values of the sweep's metric (negated when maximised), for hyperband's thresholds.
    private var histories: [Int64: [Double]] = [:]
    private var missingMetricSaid = false

    init(store: Store, earlyStop: EarlyStop? = nil, hyperband: HyperbandWatch? = nil) {
        self.store = store
        self.earlyStop = earlyStop
        self.hyperband = hyperband
    }

    /// The curves of the sweep's runs so far, which hyperband's thresholds count with the running ones.
    func loadHistories(runs: [Int64]) {
        guard let hyperband else { return }
        for run in runs { histories[run] = history(run, hyperband) }
    }

    private func history(_ run: Int64, _ h: HyperbandWatch) -> [Double] {
        let values = ((try? store.curve(run: run, key: h.metric))?.values ?? []).filter(\.isFinite)
        return h.maximize ? values.map { -$0 } : values
    }

    /// True the first time it is asked: a sweep says once that its metric never arrived.
    func firstMissingMetric() -> Bool {
        defer { missingMetricSaid = true }
        return !missingMetricSaid
    }

    func watch(run: Int64, metricsPath: String, offset: Int64) {
        watch(run: run, source: .harrow(metricsPath), offset: offset)
    }

    func watch(run: Int64, source: MetricsSource, offset: Int64) {
        active[run] = Active(source: source, offset: offset, path: source.path.contains("*") ? nil : source.path)
        trackers[run] = earlyStop
        // A new attempt starts its curves afresh; a job taken over continues the stored one.
        if let hyperband { histories[run] = offset == 0 ? [] : history(run, hyperband) }
    }

    /// Reads what is new for every watched run and stores it in one batch, with a heartbeat. Returns the
    /// runs to stop, and why: val loss stopped improving (the experiment's early stop), or hyperband.
    func tick() throws(StoreError) -> [(run: Int64, reason: String)] {
        var updates: [MetricsUpdate] = []
        let now = Date()
        for run in active.keys {
            if let u = read(run: run, now: now) { updates.append(u) }
        }
        if updates.isEmpty {
            try store.heartbeat(runs: Array(active.keys), now: now)
        } else {
            try store.ingest(updates)
            for u in updates { active[u.run]?.offset = u.offset }
        }
        var stop: [(run: Int64, reason: String)] = []
        for u in updates {
            guard var tracker = trackers[u.run], let val = u.batch.series[TrainerContract.Metric.valLoss] else { continue }
            var done = false
            for (s, v) in zip(val.steps, val.values) where tracker.observe(step: Int(s), value: v) { done = true }
            trackers[u.run] = done ? nil : tracker
            if done { stop.append((u.run, "val loss no longer improving")) }
        }
        if let hyperband {
            for u in updates {
                guard let series = u.batch.series[hyperband.metric] else { continue }
                let values = series.values.filter(\.isFinite)
                histories[u.run, default: []] += hyperband.maximize ? values.map { -$0 } : values
            }
            // As W&B does on every pass: each running trial against the thresholds of all trials so far.
            let all = Array(histories.values)
            for run in active.keys where !stop.contains(where: { $0.run == run }) {
                guard let mine = histories[run], let d = hyperband.rule.decide(mine, all: all) else { continue }
                let sign = hyperband.maximize ? -1.0 : 1.0
                stop.append(
                    (
                        run,
                        "hyperband: \(hyperband.metric) \(format(sign * d.value)) at iteration \(d.band) is worse than "
                            + "\(format(sign * d.threshold)), the cut for the best 1/\(format(hyperband.rule.eta)) of the \(d.reached) trials there"
                    ))
            }
        }
        return stop
    }

    private func format(_ x: Double) -> String { String(format: "%.4g", x) }

    /// A final read for a run whose trainer ended, then it is no longer watched. Returns the total malformed lines.
    func finish(run: Int64) throws(StoreError) {
        guard active[run] != nil else { return }
        // Slice by slice, so a flood of lines never sits in memory at once.
        while let u = read(run: run, now: Date(), final: true) {
            try store.ingest([u])
            active[run]?.offset = u.offset
            if active[run]?.source.format == .hf { break }  // one read of the final state holds it all
        }
        active[run] = nil
        trackers[run] = nil
    }

    /// Bytes read per run and tick (4 MiB): a trainer that writes a flood is taken in slices, and memory
    /// stays bounded.
    static let sliceBytes = 4 << 20
    /// A line longer than this is not a metrics line (1 MiB); it is skipped, counted as malformed.
    static let maxLineBytes = 1 << 20

    /// The next slice of new lines of a run's metrics file. At the end (`final`) a last line without a
    /// newline counts, and a runaway line is skipped through to the end of the file.
    private func read(run: Int64, now: Date, final: Bool = false) -> MetricsUpdate? {
        guard var a = active[run] else { return nil }
        defer { active[run]?.state = a.state; active[run]?.path = a.path }
        // A Hugging Face script with harrow's callback writes metrics lines as it logs: they are read live instead of
        // waiting for checkpoints.
        // So is a W&B script that writes them beside its `.wandb` file.
        if let lines = a.source.metricsLines, a.source.format == .hf ? a.state.lastStep == 0 : a.offset == 0, fileSize(lines) > 0 {
            a.source = .harrow(lines)
            a.path = lines
            a.offset = 0
            active[run]?.source = a.source
            active[run]?.offset = 0
        }
        if a.source.format == .hf {
            guard let batch = HuggingFaceImporter.newPoints(in: a.source.path, state: &a.state, final: final), batch.pointCount > 0 else {
                return nil
            }
            return MetricsUpdate(run: run, offset: Int64(a.state.lastStep), batch: batch, heartbeat: now)
        }
        if a.path == nil { a.path = FilePattern.newest(a.source.path) }
        guard let path = a.path, let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(a.offset))) != nil, var data = try? handle.read(upToCount: Self.sliceBytes),
            !data.isEmpty
        else { return nil }
        if a.source.format == .wandb { return wandbUpdate(run: run, data: data, a: a, now: now, final: final) }
        let length = data.count
        // A trainer that died mid-line leaves a last line without a newline: at the end it still counts.
        if final, length < Self.sliceBytes, data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        var batch = Self.parse(data, &a)
        if batch.consumed > 0 {
            return MetricsUpdate(run: run, offset: a.offset + min(Int64(batch.consumed), Int64(length)), batch: batch, heartbeat: now)
        }
        // No line end within a whole line's bound: not a metrics line. Skip to the next line end, or, at the
        // end, past it all.
        guard length >= Self.maxLineBytes,
            let end = nextLineEnd(handle, from: a.offset + Int64(Self.maxLineBytes)) ?? (final ? fileSize(handle) : nil)
        else { return nil }
        batch = MetricsBatch()
        batch.malformed = 1
        batch.malformedExamples = ["(a line of more than \(Self.maxLineBytes) bytes)"]
        return MetricsUpdate(run: run, offset: end, batch: batch, heartbeat: now)
    }

    /// The history in the complete records of a slice of a `.wandb` file. At the end, a record left unfinished is
    /// counted as malformed and skipped.
    private func wandbUpdate(run: Int64, data: Data, a: Active, now: Date, final: Bool) -> MetricsUpdate? {
        let scan = WandbLog.scan([UInt8](data), from: a.offset)
        var batch = MetricsBatch()
        if scan.notWandb {
            batch.malformed = 1
            batch.malformedExamples = ["\(a.path ?? a.source.path) is not a W&B run file"]
            return MetricsUpdate(run: run, offset: a.offset + Int64(data.count), batch: batch, heartbeat: now)
        }
        WandbImporter.add(scan.records, keys: a.source.keys, into: &batch)
        batch.malformed += scan.corrupt
        if scan.corrupt > 0 { batch.malformedExamples.append("\(scan.corrupt) damaged block(s) of the .wandb file skipped") }
        var offset = scan.offset
        if final, scan.torn, data.count < Self.sliceBytes {
            batch.malformed += 1
            batch.malformedExamples.append("the .wandb file ends inside a record (torn by the run's end)")
            offset = a.offset + Int64(data.count)
        }
        guard offset > a.offset else { return nil }
        return MetricsUpdate(run: run, offset: offset, batch: batch, heartbeat: now)
    }

    /// The points in the complete lines of `data`, in the source's format; `consumed` is the bytes through the
    /// last newline.
    static func parse(_ data: Data, _ a: inout Active) -> MetricsBatch {
        if a.source.format == .harrow { return MetricsLines.parse(data) }
        guard let newline = data.lastIndex(of: UInt8(ascii: "\n")) else { return MetricsBatch() }
        let complete = data[data.startIndex...newline]
        var batch = MetricsBatch()
        switch a.source.format {
        case .llamafactory: LlamaFactoryImporter.lines(Data(complete), into: &batch, state: &a.state)
        case .msSwift: MsSwiftImporter.lines(Data(complete), into: &batch)
        case .jsonl: JSONLinesImporter.lines(Data(complete), keys: a.source.keys, into: &batch)
        case .harrow, .hf, .wandb: break
        }
        batch.consumed = complete.count
        batch.lines = complete.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        return batch
    }

    private func fileSize(_ handle: FileHandle) -> Int64? { (try? handle.seekToEnd()).map { Int64($0) } }

    private func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// The offset just past the next newline at or after `from`, read in slices; nil if none is written yet.
    private func nextLineEnd(_ handle: FileHandle, from: Int64) -> Int64? {
        var position = from
        while (try? handle.seek(toOffset: UInt64(position))) != nil, let data = try? handle.read(upToCount: Self.sliceBytes), !data.isEmpty
        {
            if let newline = data.firstIndex(of: UInt8(ascii: "\n")) { return position + Int64(newline - data.startIndex) + 1 }
            position += Int64(data.count)
        }
        return nil
    }
}
