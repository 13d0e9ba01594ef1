import HarrowCore
import ArgumentParser
import Foundation
import Sweep
import Tracking

struct SweepsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sweeps", abstract: "List the sweeps in the store with their progress.")

    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let sweeps = try store.sweeps()
        if json {
            print(jsonText(sweeps.map { s in
                ["name": s.name, "file": s.file, "method": s.method, "total": s.total, "started_at": isoDate(s.startedAt),
                 "counts": Dictionary(uniqueKeysWithValues: s.counts.map { ($0.key.rawValue, $0.value) }), "reused": s.reused,
                 "metric": s.objective?.metric ?? NSNull(), "goal": s.objective?.goal ?? NSNull(),
                 "eta_s": eta(s) ?? NSNull(), "slurm_arrays": s.slurmArrays] as [String: Any]
            }))
            return
        }
        if sweeps.isEmpty { print("no sweeps yet: start one with `harrow sweep FILE`"); return }
        // Slurm job arrays, when any sweep ran on a cluster.
        let slurm = sweeps.contains { !$0.slurmArrays.isEmpty }
        let header = ["sweep", "file", "trials", "done", "reused", "failed", "running", "queued", "started", "ETA"] + (slurm ? ["slurm jobs"] : [])
        let rows = sweeps.map { s -> [String] in
            let c = { (st: RunStatus) in s.counts[st] ?? 0 }
            let arrays = s.slurmArrays.count > 4 ? s.slurmArrays.prefix(3).joined(separator: ",") + ",… (\(s.slurmArrays.count))"
                : s.slurmArrays.joined(separator: ",")
            return [s.name, s.file, String(s.total), String(c(.succeeded) + c(.stopped_early)), String(s.reused), String(c(.failed) + c(.timed_out)),
                    String(c(.running)), String(c(.queued) + c(.interrupted)),
                    s.startedAt.map { DateFormatter.localizedString(from: $0, dateStyle: .short, timeStyle: .short) } ?? "-",
                    eta(s).map(formatDuration) ?? "-"] + (slurm ? [arrays.isEmpty ? "-" : arrays] : [])
        }
        print(TextTable.render(header: header, rows: rows).joined(separator: "\n"))
    }

    /// Remaining trials × mean duration, as if one slot; a rough guide for a sweep not running now.
    func eta(_ s: SweepSummary) -> Double? {
        let left = (s.counts[.queued] ?? 0) + (s.counts[.running] ?? 0) + (s.counts[.interrupted] ?? 0)
        guard left > 0, let mean = s.meanDuration else { return nil }
        return mean * Double(left)
    }
}

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List runs, optionally of one sweep, with their key metrics.",
        discussion: """
        Examples:
          harrow runs --sweep overnight --sort val/loss   # best first by min val loss
          harrow runs --status failed
          harrow runs --json | jq '.[] | select(.status == "succeeded") | .id'
        """)

    @Option(help: "Only runs of this sweep.") var sweep: String?
    @Option(help: ArgumentHelp("Only runs with this status: \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "status"))
    var status: String?
    @Option(help: ArgumentHelp("Sort by a metric's minimum (prefix with - for the maximum first), e.g. val/loss.", valueName: "metric"))
    var sort: String?
    @Option(help: "Show at most this many runs.") var limit: Int?
    @Flag(help: "Print the run summary JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        var wanted: RunStatus?
        if let status {
            guard let s = RunStatus(rawValue: status) else {
                throw ValidationError("unknown status '\(status)'; one of: \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            wanted = s
        }
        let store = try storeOptions.open()
        var runs: [Run]
        if let sort {
            let maximize = sort.hasPrefix("-")
            let metric = maximize ? String(sort.dropFirst()) : sort
            runs = try store.best(metric: metric, limit: limit ?? Int(Int32.max), maximize: maximize, sweep: sweep, status: wanted).map(\.run)
        } else {
            runs = try store.runs(sweep: sweep, status: wanted)
        }
        if let limit { runs = Array(runs.prefix(limit)) }
        let snapshots = try store.snapshots(runs)
        if json {
            print(jsonText(snapshots.map(RunSummary.json)))
            return
        }
        if runs.isEmpty { print("no runs match"); return }
        let header = ["run", "sweep", "status", "try", "time", TrainerContract.Metric.trainLoss, "val/loss min", "@step", "params"]
        let rows = snapshots.map { snapshot -> [String] in
            let run = snapshot.run, s = snapshot.summaries
            let params = run.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.plain)" }.joined(separator: " ")
            // A run another sweep ran, reused here because its identity matched.
            let owner = run.sweepName.map { sweep == nil || $0 == sweep ? $0 : "\($0) (reused)" } ?? run.source
            return [run.id, owner, run.status.rawValue, String(run.attempt), formatDuration(run.duration),
                    formatNumber(s[TrainerContract.Metric.trainLoss]?.last), formatNumber(s[TrainerContract.Metric.valLoss]?.min), s[TrainerContract.Metric.valLoss].map { String($0.minStep) } ?? "-",
                    String(params.prefix(60))]
        }
        print(TextTable.render(header: header, rows: rows).joined(separator: "\n"))
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Everything about one run: parameters, provenance, attempts, metrics, files.")

    @Argument(help: "Run id (or a unique prefix of it or of its trial key).") var runID: String
    @Flag(help: "Print the run summary JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let r = try store.requireRun(runID)
        let snapshot = try store.snapshot(r)
        if json {
            var summary = RunSummary.json(snapshot)
            summary["attempts"] = snapshot.attempts.map {
                ["attempt": $0.attempt, "status": $0.status, "exit_code": $0.exitCode.map { Int($0) } ?? NSNull(),
                 "signal": $0.signal.map { Int($0) } ?? NSNull(), "duration_s": $0.duration ?? NSNull()] as [String: Any]
            }
            summary["artifacts"] = snapshot.artifacts.map {
                ["role": $0.role, "path": $0.path, "sha256": $0.sha256 ?? NSNull(), "size": $0.size ?? NSNull()] as [String: Any]
            }
            summary["stderr_tail"] = r.stderrTail ?? NSNull()
            if let proposal = try store.proposal(run: r.rowID), let object = try? JSONSerialization.jsonObject(with: Data(proposal.utf8)) {
                summary["proposal"] = object
            }
            print(jsonText(summary))
            return
        }
        var lines = ["run \(r.id)  \(r.status.rawValue)  attempt \(r.attempt)" + (r.sweepName.map { "  sweep \($0)" } ?? "")]
        lines.append("trial key  \(r.trialKey)")
        if let earlier = r.earlierRunID {
            let why = try store.run(earlier).map { e in r.identity.map { $0.changes(since: e.identity) } ?? "" } ?? ""
            lines.append("earlier    run \(earlier) had the same parameters" + (why.isEmpty ? "" : "; since then \(why)"))
        }
        if let d = r.runDir { lines.append("folder     \(d)") }
        if let job = r.job { lines.append("job        \(r.executor == "slurm" ? "slurm job \(job)" : "pid \(job)")") }
        if let why = try store.proposal(run: r.rowID).flatMap(Explanation.init(json:)) { lines.append("proposed   \(why.summary)") }
        if r.status == .stopped_early, let reason = r.error { lines.append("stopped    \(reason)") }
        lines.append("time       \(r.startedAt.map { "\($0)" } ?? "-") → \(r.endedAt.map { "\($0)" } ?? "-") (\(formatDuration(r.duration)))")
        if let c = r.exitCode { lines.append("exit       \(c)") }
        if let s = r.signal { lines.append("signal     \(s)") }
        if let p = snapshot.provenance {
            var git = p.commit.map { "\($0.prefix(12)) on \(p.branch ?? "?")" } ?? (p.note ?? "unknown")
            if p.dirty { git += " (dirty, diff \(p.diffSHA256?.prefix(12) ?? "-"))" }
            if !p.untracked.isEmpty { git += ", \(p.untracked.count) untracked" }
            lines.append("git        \(git)")
        }
        lines.append("")
        lines.append("parameters")
        for (k, v) in r.params.sorted(by: { $0.key < $1.key }) { lines.append("  \(k) = \(v.plain)") }
        let summaries = snapshot.summaries
        if !summaries.isEmpty {
            lines.append("")
            lines += TextTable.render(header: ["metric", "points", "last", "@step", "min", "@step"], rows: summaries.sorted { $0.key < $1.key }.map {
                [$0.key, String($0.value.count), formatNumber($0.value.last), String($0.value.lastStep), formatNumber($0.value.min), String($0.value.minStep)]
            })
        }
        if r.malformedLines + r.nonfiniteValues > 0 {
            lines.append("metrics file: \(r.malformedLines) malformed lines, \(r.nonfiniteValues) non-finite values skipped")
        }
        let attempts = snapshot.attempts
        if attempts.count > 1 {
            lines.append("")
            lines.append("attempts")
            for a in attempts { lines.append("  \(a.attempt): \(a.status) \(a.exitCode.map { "exit \($0)" } ?? a.signal.map { "signal \($0)" } ?? "") \(formatDuration(a.duration))") }
        }
        let artifacts = snapshot.artifacts
        if !artifacts.isEmpty {
            lines.append("")
            lines.append("files")
            for a in artifacts { lines.append("  \(a.role)  \(a.path)  \(a.sha256.map { String($0.prefix(16)) } ?? "-")") }
        }
        if let tail = r.stderrTail {
            lines.append("")
            lines.append("stderr (last lines)")
            lines += tail.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        print(lines.joined(separator: "\n"))
    }
}

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a run's trainer output (stdout and stderr).")

    @Argument(help: "Run id (or a unique prefix).") var runID: String
    @Flag(name: .shortAndLong, help: "Keep printing as the trainer writes, until the run ends.") var follow = false
    @Flag(help: "Only stderr.") var stderr = false
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let store = try storeOptions.open()
        let r = try store.requireRun(runID)
        guard let dir = r.runDir else {
            printError("harrow: run \(r.id) has no folder (an imported run keeps no trainer output)")
            throw ExitStatus.configuration
        }
        let out = dir + "/" + TrainerContract.RunFile.stdout, err = dir + "/" + TrainerContract.RunFile.stderr
        let files = stderr ? [err] : [out, err]
        var offsets = [UInt64](repeating: 0, count: files.count)
        while true {
            for (i, f) in files.enumerated() {
                guard let h = FileHandle(forReadingAtPath: f) else { continue }
                try? h.seek(toOffset: offsets[i])
                if let data = try? h.readToEnd(), !data.isEmpty {
                    FileHandle.standardOutput.write(data)
                    offsets[i] += UInt64(data.count)
                }
                try? h.close()
            }
            guard follow, let now = try store.run(r.id), !now.status.isTerminal || now.status == .queued else { break }
            try await Task.sleep(for: .milliseconds(300))
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export metrics: CSV points (run, key, step, value) or JSON lines (a run summary with its curves).")

    enum Format: String, ExpressibleByArgument { case csv, jsonl }

    @Option(help: "csv or jsonl.") var format: Format = .csv
    @Option(help: "Only runs of this sweep.") var sweep: String?
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let runs = try store.runs(sweep: sweep)
        var out = ""
        if format == .csv { out += "run,sweep,status,key,step,value\n" }
        for run in runs {
            var curves: [String: Any] = [:]
            for key in try store.metricKeys(run: run.rowID) {
                let c = try store.curve(run: run.rowID, key: key)
                if format == .csv {
                    for (s, v) in zip(c.steps, c.values) { out += "\(run.id),\(csvField(run.sweepName ?? "")),\(run.status.rawValue),\(csvField(key)),\(s),\(v)\n" }
                } else {
                    curves[key] = zip(c.steps, c.values).map { [$0, $1] as [Any] }
                }
            }
            if format == .jsonl {
                var summary = try RunSummary.json(run, store: store)
                summary["curves"] = curves
                out += jsonLine(summary) + "\n"
            }
            if out.utf8.count > 1 << 20 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
