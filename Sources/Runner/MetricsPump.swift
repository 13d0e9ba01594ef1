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
            guard var tracker = trackers[u.run], let val = u.batch.series["val/loss"] else { continue }
            var done = false
            for (s, v) in zip(val.steps, val.values) where tracker.observe(step: Int(s), value: v) { done = true }
            trackers[u.run] = done ? nil : tracker
            if done { stop.append(u.run) }
        }
        return stop
    }

    /// A final read for a run whose trainer ended, then it is no longer watched. Returns the total malformed lines.
    func finish(run: Int64) throws(StoreError) {
        guard let a = active[run] else { return }
        if let u = read(run: run, a, now: Date(), final: true) {
            try store.ingest([u])
        }
        active[run] = nil
        trackers[run] = nil
    }

    private func read(run: Int64, _ a: Active, now: Date, final: Bool = false) -> MetricsUpdate? {
        guard let handle = FileHandle(forReadingAtPath: a.path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(a.offset))) != nil, var data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        let length = data.count
        // A trainer that died mid-line leaves a last line without a newline: at the end it still counts.
        if final, data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        let batch = MetricsLines.parse(data)
        guard batch.consumed > 0 else { return nil }
        let consumed = min(Int64(batch.consumed), Int64(length))
        return MetricsUpdate(run: run, offset: a.offset + consumed, batch: batch, heartbeat: now)
    }
}
