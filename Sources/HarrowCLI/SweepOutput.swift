import HarrowCore
import Foundation
import Runner
import Sweep
import Tracking

// What `harrow sweep` prints: its progress line while it runs, and the table and footer when it ends.

/// One progress line: rewritten in place on a terminal, one line per event otherwise.
final class ProgressLine: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) == 1
    private var drawn = false

    func show(_ p: SweepProgress) {
        lock.lock()
        defer { lock.unlock() }
        var line = "done \(p.done) · failed \(p.failed) · running \(p.running) · queued \(p.queued)"
        if p.skipped > 0 { line += " · not started \(p.skipped)" }
        line += " · \(formatDuration(p.elapsed)) elapsed"
        if let eta = p.eta, p.queued + p.running > 0 { line += " · ETA \(formatDuration(eta))" }
        if terminal {
            if let event = p.event { FileHandle.standardError.write(Data("\r\u{1B}[K  \(event)\n".utf8)) }
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            drawn = true
        } else {
            FileHandle.standardError.write(Data("[\(line)]\(p.event.map { " \($0)" } ?? "")\n".utf8))
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if terminal, drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

enum SweepReport {
    /// Rows the closing table shows before it counts the rest.
    static let shownRows = 20

    /// The sweep's runs in plan order; past `shownRows`, the best of them by the sweep's metric (those that never
    /// started last), and a line counting the rest.
    static func table(_ all: [RunSnapshot], sweep: String, plan: Plan) -> String {
        let varying = plan.varying
        var snapshots = all
        var more = ""
        if all.count > shownRows {
            let metric = plan.experiment.metric?.name ?? TrainerContract.Metric.valLoss
            let lower = plan.experiment.metric.map { $0.goal == .minimize } ?? true
            let ranked = all.enumerated().sorted { a, b in
                switch (a.element.value(metric), b.element.value(metric)) {
                case let (x?, y?): return lower ? x < y : x > y
                case (_?, nil): return true
                case (nil, _?): return false
                default: return a.offset < b.offset
                }
            }.map(\.element)
            snapshots = Array(ranked.prefix(shownRows))
            let notStarted = all.filter { $0.run.status == .queued && $0.run.startedAt == nil }.count
            more =
                "\nthe best \(shownRows) of \(all.count) by \(metric); \(all.count - shownRows) more"
                + (notStarted > 0 ? " (\(notStarted) not started)" : "") + ": `harrow runs --sweep \(sweep)` lists them all"
        }
        // The sweep's own metric beside val loss when it is another (a W&B script's `val_loss`, `accuracy`).
        let metric = plan.experiment.metric.flatMap { $0.name == TrainerContract.Metric.valLoss ? nil : $0 }
        let header =
            ["run", "status", "try", "time"] + varying + [TrainerContract.Metric.trainLoss, "val/loss min", "@step"]
            + (metric.map { [$0.name + ($0.goal == .minimize ? " min" : " max")] } ?? []) + ["verdict"]
        let rows = snapshots.map { snapshot -> [String] in
            let run = snapshot.run, params = run.params, s = snapshot.summaries
            let status =
                run.sweepName.map { $0 == sweep ? run.status.rawValue : "\(run.status.rawValue) (reused from \($0))" }
                ?? run.status.rawValue
            let val = s[TrainerContract.Metric.valLoss]
            var row: [String] = [run.id, status, String(run.attempt), formatDuration(run.duration)]
            // A drawn value (0.0037640564903177343) is shown to 4 digits; a value written in the file as it is.
            row += varying.map { name in
                if case .double(let d)? = params[name], d.description.count > 8 { return formatNumber(d) }
                return params[name]?.plain ?? "-"
            }
            row += [formatNumber(s[TrainerContract.Metric.trainLoss]?.last), formatNumber(val?.min), val.map { String($0.minStep) } ?? "-"]
            if let m = metric { row.append(formatNumber(m.goal == .minimize ? s[m.name]?.min : s[m.name]?.max)) }
            return row + [snapshot.diagnosis?.verdict ?? "-"]
        }
        return TextTable.render(header: header, rows: rows).joined(separator: "\n") + more
    }

    /// Runs that finished after running out of memory at a larger micro-batch: told, since their night took longer
    /// and the next one could start them smaller.
    static func recoveredFromOutOfMemory(_ snapshots: [RunSnapshot]) -> Int {
        let labels = [FailureCause.outOfMemoryGPU.label, FailureCause.outOfMemoryHost.label]
        return snapshots.filter { s in
            s.run.status.isFinished && s.attempts.contains { a in labels.contains { a.note?.hasPrefix($0) == true } }
        }.count
    }

    static func footer(_ o: SweepOutcome, sweep: String, recovered: Int = 0) -> String {
        var counts: [String: Int] = [:]
        for r in o.runs { counts[r.status.rawValue, default: 0] += 1 }
        var text = "\n" + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        if let causes = FailureCounts.text(o.runs) { text += "\nwhy: " + causes }
        if recovered > 0 {
            text += "\n\(recovered) ran out of memory and finished at a smaller micro-batch (`harrow show RUN` lists the attempts)"
        }
        if o.alreadyFinished > 0 { text += " (\(o.alreadyFinished) finished before and skipped)" }
        let reused = o.runs.filter { $0.sweepName.map { $0 != sweep } ?? false }
        if !reused.isEmpty {
            let sweeps = Set(reused.compactMap(\.sweepName)).sorted().joined(separator: ", ")
            text += "\n\(reused.count) reused from sweep \(sweeps): same identity, so not run again"
        }
        if !o.reruns.isEmpty {
            text += "\n\(o.reruns.count) ran again because their code or data changed; `harrow show RUN` names the earlier run"
        }
        if o.notStarted > 0 { text += "\n\(o.notStarted) not started before the deadline: run the same command again to continue" }
        if o.interrupted { text += "\ninterrupted: run the same command again to resume" }
        if let failure = o.storeFailure {
            text +=
                "\nstopped: the store cannot be written (\(failure)).\nNothing finished is lost: free space (or fix the disk) and run the same command again to resume."
        }
        for r in o.runs where r.status == .failed || r.status == .timed_out {
            text +=
                "\n\n\(r.id) \(r.status.rawValue)" + (r.failure.map { ", \($0.cause.label)" } ?? "")
                + (r.exitCode.map { " (exit \($0))" } ?? r.signal.map { " (signal \($0))" } ?? "")
            if let tail = r.stderrTail { text += ":\n" + tail.split(separator: "\n").suffix(5).map { "    " + $0 }.joined(separator: "\n") }
        }
        return text
    }
}
