import HarrowCore
import Diagnosis
import Foundation
import Tracking

/// Moves trainers' metrics lines into the store: every tick, the new bytes of every active run's
/// `metrics.jsonl` (from its stored offset) go into one transaction.
actor MetricsPump {
    struct Active {
        var path: String
        var offset: Int64
    }

    let store: Store
    let earlyStop: EarlyStop?
    private var active: [Int64: Active] = [:]
    private var trackers: [Int64: EarlyStop] = [:]

    init(store: Store, earlyStop: EarlyStop? = nil) {
        self.store = store
        self.earlyStop = earlyStop
    }

    func watch(run: Int64, metricsPath: String, offset: Int64) {
        active[run] = Active(path: metricsPath, offset: offset)
        trackers[run] = earlyStop
    }

    /// Reads what is new for every watched run and stores it in one batch, with a heartbeat. Returns the
    /// runs whose val loss has stopped improving, under the experiment's early stop.
    func tick() throws(StoreError) -> [Int64] {
        var updates: [MetricsUpdate] = []
        let now = Date()
        for (run, a) in active {
            if let u = read(run: run, a, now: now) { updates.append(u) }
        }
        if updates.isEmpty {
            try store.heartbeat(runs: Array(active.keys), now: now)
        } else {
            try store.ingest(updates)
            for u in updates { active[u.run]?.offset = u.offset }
        }
        var stop: [Int64] = []
        for u in updates {
            guard var tracker = trackers[u.run], let val = u.batch.series[TrainerContract.Metric.valLoss] else { continue }
            var done = false
            for (s, v) in zip(val.steps, val.values) where tracker.observe(step: Int(s), value: v) { done = true }
            trackers[u.run] = done ? nil : tracker
            if done { stop.append(u.run) }
        }
        return stop
    }

    /// A final read for a run whose trainer ended, then it is no longer watched. Returns the total malformed lines.
    func finish(run: Int64) throws(StoreError) {
        guard var a = active[run] else { return }
        // Slice by slice, so a flood of lines never sits in memory at once.
        while let u = read(run: run, a, now: Date(), final: true) {
            try store.ingest([u])
            a.offset = u.offset
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
    private func read(run: Int64, _ a: Active, now: Date, final: Bool = false) -> MetricsUpdate? {
        guard let handle = FileHandle(forReadingAtPath: a.path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(a.offset))) != nil, var data = try? handle.read(upToCount: Self.sliceBytes),
              !data.isEmpty else { return nil }
        let length = data.count
        // A trainer that died mid-line leaves a last line without a newline: at the end it still counts.
        if final, length < Self.sliceBytes, data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        var batch = MetricsLines.parse(data)
        if batch.consumed > 0 {
            return MetricsUpdate(run: run, offset: a.offset + min(Int64(batch.consumed), Int64(length)), batch: batch, heartbeat: now)
        }
        // No line end within a whole line's bound: not a metrics line. Skip to the next line end, or, at the
        // end, past it all.
        guard length >= Self.maxLineBytes,
              let end = nextLineEnd(handle, from: a.offset + Int64(Self.maxLineBytes)) ?? (final ? fileSize(handle) : nil) else { return nil }
        batch = MetricsBatch()
        batch.malformed = 1
        batch.malformedExamples = ["(a line of more than \(Self.maxLineBytes) bytes)"]
        return MetricsUpdate(run: run, offset: end, batch: batch, heartbeat: now)
    }

    private func fileSize(_ handle: FileHandle) -> Int64? { (try? handle.seekToEnd()).map { Int64($0) } }

    /// The offset just past the next newline at or after `from`, read in slices; nil if none is written yet.
    private func nextLineEnd(_ handle: FileHandle, from: Int64) -> Int64? {
        var position = from
        while (try? handle.seek(toOffset: UInt64(position))) != nil, let data = try? handle.read(upToCount: Self.sliceBytes), !data.isEmpty {
            if let newline = data.firstIndex(of: UInt8(ascii: "\n")) { return position + Int64(newline - data.startIndex) + 1 }
            position += Int64(data.count)
        }
        return nil
    }
}
