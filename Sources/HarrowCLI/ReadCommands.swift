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
        // Why runs did not finish, per sweep: read only for sweeps that have such runs.
        var failures: [String: [(cause: FailureCause, count: Int)]] = [:]
        for s in sweeps where [RunStatus.failed, .timed_out, .interrupted].contains(where: { (s.counts[$0] ?? 0) > 0 }) {
            var runs: [Run] = []
            for status in [RunStatus.failed, .timed_out, .interrupted] { runs += try store.runs(sweep: s.name, status: status) }
            failures[s.name] = FailureCounts.counts(runs)
        }
        if json {
            print(jsonText(sweeps.map { SweepJSON($0, eta: eta($0), failures: failures[$0.name] ?? []) }))
            return
        }
        if sweeps.isEmpty { print("no sweeps yet in \(store.path): start one with `harrow sweep FILE`"); return }
        // Slurm job arrays, when any sweep ran on a cluster.
        let slurm = sweeps.contains { !$0.slurmArrays.isEmpty }
        let header =
            ["sweep", "file", "trials", "done", "reused", "failed", "running", "queued", "started", "ETA"] + (slurm ? ["slurm jobs"] : [])
        let rows = sweeps.map { s -> [String] in
            let c = { (st: RunStatus) in s.counts[st] ?? 0 }
            let arrays =
                s.slurmArrays.count > 4
                ? s.slurmArrays.prefix(3).joined(separator: ",") + ",… (\(s.slurmArrays.count))"
                : s.slurmArrays.joined(separator: ",")
            return [
                s.name, s.file, String(s.total), String(c(.succeeded) + c(.stopped_early)), String(s.reused),
                String(c(.failed) + c(.timed_out)),
                String(c(.running)), String(c(.queued) + c(.interrupted)),
                isoText(s.startedAt),
                eta(s).map(formatDuration) ?? "-"
            ] + (slurm ? [arrays.isEmpty ? "-" : arrays] : [])
        }
        print(TextTable.render(header: header, rows: rows).joined(separator: "\n"))
        for s in sweeps {
            if let f = failures[s.name], !f.isEmpty {
                print("\(s.name): " + f.map { "\($0.count) \($0.cause.label)" }.joined(separator: ", "))
            }
        }
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
        commandName: "runs", abstract: "List runs, optionally of one sweep, with their key metrics and the parameters that vary.",
        discussion: """
            Each row shows the parameters that differ between the runs listed; the ones they share are printed \
            once, above the table.

            --sort NAME sorts by a metric's minimum, a named value (helpful, honest, harmless, total, general, \
            forgetting, gain, val_loss_best: the names gates and `runs --json` use) or a parameter, smallest \
            first, and shows that value as a column; -NAME sorts largest first. Runs without it come last.

            Examples:
              harrow runs --sweep overnight --sort val/loss   # lowest val loss first
              harrow runs --sort -helpful --limit 5           # the five most helpful
              harrow runs --status failed
              harrow runs --json | jq '.[] | select(.status == "succeeded") | .id'
            """)

    @Option(help: "Only runs of this sweep.") var sweep: String?
    @Option(
        help: ArgumentHelp(
            "Only runs with this status: \(RunStatus.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "status"))
    var status: String?
    // Unconditional, so that `--sort -val/loss` reads `-val/loss` as the value, not as an option.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Sort by a metric, named value or parameter, smallest first; -NAME for largest first.", valueName: "name"))
    var sort: String?
    @Option(help: "Show at most this many runs.") var limit: Int?
    @Flag(help: "Print the run summary JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if let status, RunStatus(rawValue: status) == nil {
            let known = RunStatus.allCases.map(\.rawValue)
            throw ValidationError(
                "unknown status '\(status)'" + (suggestion(for: status, among: known).map { "; did you mean '\($0)'?" } ?? "")
                    + " (one of: \(known.joined(separator: ", ")))")
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more, not \(limit)") }
        if sort == "" || sort == "-" { throw ValidationError("--sort needs a metric, named value or parameter, e.g. val/loss") }
    }

    func run() throws {
        let store = try storeOptions.open()
        if let sweep { try requireSweep(sweep, in: store) }
        var runs = try store.runs(sweep: sweep, status: status.flatMap(RunStatus.init(rawValue:)))
        var order: RunOrder?
        if let sort, !runs.isEmpty {
            let o = try RunOrder(sort, runs: runs, store: store)
            if o.values.isEmpty { printError("note: none of the runs listed has a value for '\(o.name)'; they are in store order") }
            runs = o.sorted(runs)
            order = o
        }
        if let limit { runs = Array(runs.prefix(limit)) }
        let snapshots = try store.snapshots(runs)
        if json {
            print(jsonText(snapshots.map(RunSummary.init)))
            return
        }
        if runs.isEmpty {
            // Name the store and the filters: an empty answer must not read as an empty store.
            let filters = [sweep.map { "--sweep \($0)" }, status.map { "--status \($0)" }].compactMap { $0 }
            print(
                filters.isEmpty
                    ? "no runs in \(store.path) yet: start one with `harrow sweep FILE`"
                    : "no runs in \(store.path) match \(filters.joined(separator: " "))")
            return
        }
        print(RunsTable.render(snapshots, sweep: sweep, order: order))
    }
}

/// `harrow runs` as a table: the parameters that vary among the runs listed as columns, the rest once above.
enum RunsTable {
    static func render(_ snapshots: [RunSnapshot], sweep: String?, order: RunOrder?) -> String {
        let varying = RunSnapshot.differingParams(snapshots)
        var lines: [String] = []
        // Not varying: every run listed has the parameter with one value (or none has it).
        let fixed = (snapshots.first?.params ?? [:]).filter { !varying.contains($0.key) }.sorted { $0.key < $1.key }
        if !fixed.isEmpty {
            lines += TextTable.labelled("fixed: ", fixed.map { "\($0.key)=\($0.value.plain)" })
            lines.append("")
        }
        var header =
            ["run", "sweep", "status", "try", "time"] + varying
            + [TrainerContract.Metric.trainLoss, TrainerContract.Metric.valLoss + " min", "@step"]
        let sortColumn = order.map(\.header).flatMap { header.contains($0) ? nil : $0 }
        if let sortColumn { header.append(sortColumn) }
        let rows = snapshots.map { snapshot -> [String] in
            let run = snapshot.run, s = snapshot.summaries
            // A run another sweep ran, reused here because its identity matched.
            let owner = run.sweepName.map { sweep == nil || $0 == sweep ? $0 : "\($0) (reused)" } ?? run.source
            var row = [run.id, owner, run.status.rawValue, String(run.attempt), formatDuration(run.duration)]
            row += varying.map { run.params[$0].map(PlanTable.display) ?? "-" }
            row += [
                formatNumber(s[TrainerContract.Metric.trainLoss]?.last), formatNumber(s[TrainerContract.Metric.valLoss]?.min),
                s[TrainerContract.Metric.valLoss].map { String($0.minStep) } ?? "-"
            ]
            if sortColumn != nil, let order { row.append(order.cells[run.id] ?? "-") }
            return row
        }
        lines += TextTable.render(header: header, rows: rows)
        return lines.joined(separator: "\n")
    }
}

/// `runs --sort NAME`: by a metric's minimum, a named value (`RunValue.named`: helpful, total, forgetting, …) or a
/// parameter, smallest first; `-NAME` largest first. Sorting and the column it adds use the same value.
struct RunOrder {
    enum Kind { case metric, value, parameter }
    enum Key: Comparable {
        case number(Double)
        case text(String)
    }

    var name: String
    var kind: Kind
    var descending: Bool
    /// The value sorted by and the cell showing it, by run id; runs without one have neither.
    var values: [String: Key] = [:]
    var cells: [String: String] = [:]

    var header: String { kind == .metric ? name + " min" : name }

    /// Resolves NAME among the runs' metrics, then named values, then parameters; anything else is a usage
    /// error naming the store, with a did-you-mean.
    init(_ spec: String, runs: [Run], store: Store) throws {
        descending = spec.hasPrefix("-")
        name = descending ? String(spec.dropFirst()) : spec
        var summaries: [String: [String: MetricSummary]] = [:]
        for run in runs { summaries[run.id] = try store.summaries(run: run.rowID) }
        let metrics = Set(summaries.values.flatMap(\.keys)), params = Set(runs.flatMap(\.params.keys))
        if metrics.contains(name) {
            kind = .metric
            for run in runs { if let m = summaries[run.id]?[name] { set(run.id, .number(m.min), formatNumber(m.min)) } }
            return
        }
        if params.contains(name) && !ValueNames.all.contains(name) {
            kind = .parameter
            for run in runs {
                guard let p = run.params[name] else { continue }
                set(run.id, p.number.map(Key.number) ?? .text(p.plain), PlanTable.display(p))
            }
            return
        }
        // Named values need each run's evals: read only when NAME is no metric or parameter.
        var named: [String: [String: RunValue]] = [:]
        for run in runs { named[run.id] = try store.values(of: run) }
        let valueNames = Set(ValueNames.all).union(named.values.flatMap(\.keys))
        guard valueNames.contains(name) else {
            var text =
                "harrow: cannot sort by '\(name)': the \(runs.count) run\(runs.count == 1 ? "" : "s") listed from \(store.path) "
                + "have no metric, named value or parameter of that name"
            if let near = suggestion(for: name, among: metrics.union(valueNames).union(params).sorted()) {
                text += "; did you mean '\(descending ? "-" : "")\(near)'?"
            }
            printError(text)
            throw ExitStatus.configuration
        }
        kind = .value
        for run in runs { if let v = named[run.id]?[name] { set(run.id, .number(v.value), formatNumber(v.value)) } }
    }

    private mutating func set(_ run: String, _ key: Key, _ cell: String) {
        values[run] = key
        cells[run] = cell
    }

    /// Stable: ties and runs without the value keep the store's order, the latter last either way.
    func sorted(_ runs: [Run]) -> [Run] {
        runs.enumerated().sorted { a, b in
            switch (values[a.element.id], values[b.element.id]) {
            case let (x?, y?) where x != y: return descending ? y < x : x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }
}

/// A sweep the user named, or exit 2 saying which the store has.
func requireSweep(_ name: String, in store: Store) throws {
    let names = try store.sweeps().map(\.name)
    guard !names.contains(name) else { return }
    var text = "harrow: no sweep '\(name)' in \(store.path)"
    if let near = suggestion(for: name, among: names) {
        text += "; did you mean '\(near)'?"
    } else {
        text +=
            names.isEmpty
            ? " (it has no sweeps)" : " (its sweeps: \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : ""))"
    }
    printError(text)
    throw ExitStatus.configuration
}

/// Dates in tables as in JSON: ISO 8601, UTC.
func isoText(_ date: Date?) -> String {
    date.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Everything about one run: parameters, provenance, attempts, metrics, verdict, scores, files.",
        discussion: """
            A run has two keys: its params key (parameters and command; the key `harrow plan` lists) and its \
            identity key (the params key with the code, programs and inputs it ran with; a sweep runs the \
            trial again when it changes). Either's prefix names the run, as does its id or a tag; a params key \
            several runs share names the latest of them.
            """)

    @Argument(help: "Run id, tag, or a unique prefix of its id, params key or identity key.") var runID: String
    @Flag(help: "Print the run summary JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let (r, sharing) = try resolve(store)
        let snapshot = try store.snapshot(r)
        if json {
            let proposal = try store.proposal(run: r.rowID).flatMap { StoredJSON(text: $0) }
            print(jsonText(Merged(base: RunSummary(snapshot), extra: RunDetail(snapshot, stderrTail: r.stderrTail, proposal: proposal))))
            return
        }
        var lines = ["run \(r.id)  \(r.status.rawValue)  attempt \(r.attempt)" + (r.sweepName.map { "  sweep \($0)" } ?? "")]
        if !snapshot.tags.isEmpty { lines.append("tags       \(snapshot.tags.sorted().joined(separator: ", "))") }
        // Short keys, as `harrow plan` prints them; either prefix names the run. Full keys are in --json.
        lines.append(
            "params key   \(r.paramsKey.map { String($0.prefix(12)) } ?? "-")  (parameters and command, as `harrow plan` lists it)")
        lines.append("identity key \(r.trialKey.prefix(12))  (params key, code, programs and inputs)")
        if !sharing.isEmpty { lines.append("also       runs \(sharing.joined(separator: ", ")) have this params key") }
        if let earlier = r.earlierRunID {
            let why = try store.run(earlier).map { e in r.identity.map { $0.changes(since: e.identity) } ?? "" } ?? ""
            lines.append("earlier    run \(earlier) had the same parameters" + (why.isEmpty ? "" : "; since then \(why)"))
        }
        if let d = r.runDir { lines.append("folder     \(d)") }
        if !r.command.isEmpty { lines.append("command    \(r.command.map(shellWord).joined(separator: " "))") }
        if let job = r.job { lines.append("job        \(r.executor == "slurm" ? "slurm job \(job)" : "pid \(job)")") }
        if let why = try store.proposal(run: r.rowID).flatMap(Explanation.init(json:)) { lines.append("proposed   \(why.summary)") }
        if r.status == .stopped_early, let reason = r.error { lines.append("stopped    \(reason)") }
        lines.append("time       \(isoText(r.startedAt)) → \(isoText(r.endedAt)) (\(formatDuration(r.duration)))")
        if let c = r.exitCode { lines.append("exit       \(c)") }
        if let s = r.signal { lines.append("signal     \(s)") }
        if let p = snapshot.provenance {
            var git = p.commit.map { "\($0.prefix(12)) on \(p.branch ?? "?")" } ?? (p.note ?? "unknown")
            if p.dirty { git += " (dirty, diff \(p.diffSHA256?.prefix(12) ?? "-"))" }
            if !p.untracked.isEmpty { git += ", \(p.untracked.count) untracked" }
            lines.append("git        \(git)")
        }
        if let d = snapshot.diagnosis {
            lines.append(
                "verdict    \(d.verdict) (confidence \(String(format: "%.2f", d.confidence)))"
                    + (d.bestStep.map { ", best step \($0)" } ?? ""))
            lines += d.advice.split(separator: "\n").map { "           \($0)" }
        }
        let scores = RunSummary.scores(snapshot)
        if !scores.isEmpty {
            let order = ValueNames.all
            let names = scores.keys.sorted { (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1) }
            lines.append(
                "scores     "
                    + names.map { name in
                        let v = scores[name]!
                        return "\(name) \(formatNumber(v.value))" + (v.stderr > 0 ? " ±\(formatNumber(v.stderr))" : "")
                    }.joined(separator: "  "))
        }
        if let dir = r.runDir {
            // The trainer's output weights: those it named, else the contract's default folders when present.
            let kept = [("best", r.bestCheckpoint, "checkpoint-best"), ("final", r.checkpoint, "checkpoint")].compactMap {
                label, named, fallback in
                let path = named.map { $0.hasPrefix("/") ? $0 : dir + "/" + $0 } ?? dir + "/" + fallback
                let exists = FileManager.default.fileExists(atPath: path)
                return named == nil && !exists ? nil : "\(label) \(path)" + (exists ? "" : " (missing)")
            }
            if !kept.isEmpty { lines.append("checkpoint " + kept.joined(separator: ", ")) }
        }
        lines.append("")
        lines.append("parameters")
        for (k, v) in r.params.sorted(by: { $0.key < $1.key }) { lines.append("  \(k) = \(v.plain)") }
        let summaries = snapshot.summaries
        if !summaries.isEmpty {
            lines.append("")
            lines += TextTable.render(
                header: ["metric", "points", "last", "@step", "min", "@step"],
                rows: summaries.sorted { $0.key < $1.key }.map {
                    [
                        $0.key, String($0.value.count), formatNumber($0.value.last), String($0.value.lastStep), formatNumber($0.value.min),
                        String($0.value.minStep)
                    ]
                })
        }
        if r.malformedLines + r.nonfiniteValues > 0 {
            lines.append("metrics file: \(r.malformedLines) malformed lines, \(r.nonfiniteValues) non-finite values skipped")
        }
        let attempts = snapshot.attempts
        if attempts.count > 1 {
            lines.append("")
            lines.append("attempts")
            for a in attempts {
                lines.append(
                    "  \(a.attempt): \(a.status) \(a.exitCode.map { "exit \($0)" } ?? a.signal.map { "signal \($0)" } ?? "") \(formatDuration(a.duration))"
                        + (a.note.map { "\n     then: \($0)" } ?? ""))
            }
        }
        let artifacts = snapshot.artifacts
        if !artifacts.isEmpty {
            lines.append("")
            lines.append("files")
            for a in artifacts { lines.append("  \(a.role)  \(a.path)  \(a.sha256.map { String($0.prefix(16)) } ?? "-")") }
        }
        if let failure = r.failure {
            lines.append("")
            lines.append("failure    \(failure.cause.label)")
            lines += failure.lines.map { "  " + $0 }
        }
        if let tail = r.stderrTail {
            lines.append("")
            lines.append("stderr (last lines)")
            lines += tail.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        print(lines.joined(separator: "\n"))
    }

    /// The run named by id, tag, or a prefix of its id or identity key, else of its params key (what `plan`
    /// prints); with the other runs sharing that params key, newest first.
    func resolve(_ store: Store) throws -> (Run, sharing: [String]) {
        do {
            if let run = try store.run(runID) { return (run, []) }
            let matching = runID.isEmpty ? [] : try store.runs().filter { $0.paramsKey?.hasPrefix(runID) == true }
            if Set(matching.compactMap(\.paramsKey)).count > 1 {
                throw StoreError("'\(runID)' starts several params keys; give more characters")
            }
            // Runs the same trial made (a change of code, another sweep): the latest is the current result.
            if let latest = matching.last { return (latest, matching.dropLast().reversed().map(\.id)) }
        } catch let error as StoreError {
            printError("harrow: \(error) (in \(store.path))")
            throw ExitStatus.configuration
        }
        return (try store.requireRun(runID), [])
    }
}

/// An argv word as a shell would need it typed.
func shellWord(_ word: String) -> String {
    let plain =
        !word.isEmpty
        && word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%{}".unicodeScalars.contains($0) }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
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
        // Said on stderr, so that stdout stays the trainer's own output.
        if r.startedAt == nil && !r.status.isTerminal {
            printError("run \(r.id) has not started; no logs yet" + (follow ? " (waiting for it)" : ""))
            if !follow { return }
        }
        guard let dir = r.runDir else {
            printError("harrow: run \(r.id) has no folder (an imported run keeps no trainer output)")
            throw ExitStatus.configuration
        }
        let out = dir + "/" + TrainerContract.RunFile.stdout, err = dir + "/" + TrainerContract.RunFile.stderr
        let files = stderr ? [err] : [out, err]
        if !follow, !files.contains(where: { FileManager.default.fileExists(atPath: $0) }) {
            printError("run \(r.id) (\(r.status.rawValue)) left no trainer output in \(dir)")
            return
        }
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
        commandName: "export", abstract: "Export metrics: CSV points (run, key, step, value) or JSON lines (a run summary with its curves)."
    )

    enum Format: String, ExpressibleByArgument { case csv, jsonl }

    @Option(help: "csv or jsonl.") var format: Format = .csv
    @Option(help: "Only runs of this sweep.") var sweep: String?
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        if let sweep { try requireSweep(sweep, in: store) }
        let runs = try store.runs(sweep: sweep)
        var out = ""
        if format == .csv { out += "run,sweep,status,key,step,value\n" }
        for run in runs {
            var curves: [String: [CurvePoint]] = [:]
            for key in try store.metricKeys(run: run.rowID) {
                let c = try store.curve(run: run.rowID, key: key)
                if format == .csv {
                    for (s, v) in zip(c.steps, c.values) {
                        out += "\(run.id),\(csvField(run.sweepName ?? "")),\(run.status.rawValue),\(csvField(key)),\(s),\(v)\n"
                    }
                } else {
                    curves[key] = zip(c.steps, c.values).map { CurvePoint(step: $0, value: $1) }
                }
            }
            if format == .jsonl {
                out += jsonLine(Merged(base: try RunSummary(run, store: store), extra: ["curves": curves])) + "\n"
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

/// `harrow tag`: names runs, refusing a name that would hide another run from the commands that take a run.
struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Name a run (production, release-candidate) for gates and comparisons.",
        discussion: """
            Without arguments, lists the tags; with only a run, that run's tags. Giving a name again moves it. \
            A name that is a run's id, or the start of another run's id, params key or identity key, is refused \
            (exit 2): commands look tags up first, so it would hide that run.
            """)
    @Argument(help: "Run id or unique prefix.") var runID: String?
    @Argument(help: "The name.") var name: String?
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        // Only naming a run writes the store.
        let store = try runID != nil && name != nil ? storeOptions.openForWriting() : storeOptions.open()
        guard let runID else {
            let tags = try store.tags()
            if tags.isEmpty { print("no tags in \(store.path)") }
            for t in tags { print("\(t.name)\t\(t.run)") }
            return
        }
        let run = try store.requireRun(runID)
        guard let name else {
            let tags = try store.tags().filter { $0.run == run.id }
            if tags.isEmpty { print("run \(run.id) has no tags; name it with `harrow tag \(run.id) NAME`") }
            for t in tags { print("\(t.name)\t\(t.run)") }
            return
        }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("a tag needs a name") }
        for other in try store.runs() {
            let hidden: String? =
                other.id == name
                ? "it is the id of run \(other.id)"
                : other.id == run.id
                    ? nil
                    : other.id.hasPrefix(name)
                        ? "run \(other.id)'s id starts with it"
                        : other.paramsKey?.hasPrefix(name) == true
                            ? "run \(other.id)'s params key starts with it"
                            : other.trialKey.hasPrefix(name) ? "run \(other.id)'s identity key starts with it" : nil
            if let hidden {
                printError("harrow: cannot tag \(run.id) as '\(name)': \(hidden), and a tag would hide that run; choose another name")
                throw ExitStatus.configuration
            }
        }
        try store.tag(run: run.rowID, as: name)
        print("\(name) → \(run.id)")
    }
}

/// What `show --json` adds to the run summary: every attempt, the run's files, its stderr tail and the search's
/// proposal as it was stored.
struct RunDetail: Encodable, Sendable {
    struct Attempt: Encodable, Sendable {
        var attempt: Int
        var status: String
        @OrNull var exitCode: Int?
        @OrNull var signal: Int?
        @OrNull var durationS: Double?
        @OrNull var note: String?
        enum CodingKeys: String, CodingKey { case attempt, status, exitCode = "exit_code", signal, durationS = "duration_s", note }
    }
    struct Artifact: Encodable, Sendable {
        var role: String
        var path: String
        @OrNull var sha256: String?
        @OrNull var size: Int?
    }
    var attempts: [Attempt]
    var artifacts: [Artifact]
    @OrNull var stderrTail: String?
    /// Absent (not null) for a run no search proposed.
    var proposal: StoredJSON?
    enum CodingKeys: String, CodingKey { case attempts, artifacts, stderrTail = "stderr_tail", proposal }

    init(_ snapshot: RunSnapshot, stderrTail: String?, proposal: StoredJSON?) {
        attempts = snapshot.attempts.map {
            Attempt(
                attempt: $0.attempt, status: $0.status, exitCode: $0.exitCode.map { Int($0) }, signal: $0.signal.map { Int($0) },
                durationS: $0.duration, note: $0.note)
        }
        artifacts = snapshot.artifacts.map { Artifact(role: $0.role, path: $0.path, sha256: $0.sha256, size: $0.size) }
        self.stderrTail = stderrTail
        self.proposal = proposal
    }
}

/// One point of a curve in `export --format jsonl`: `[step, value]`.
struct CurvePoint: Encodable, Sendable {
    var step: Int
    var value: Double
    func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(step)
        try c.encode(value)
    }
}

/// One sweep in `sweeps --json`.
struct SweepJSON: Encodable, Sendable {
    var name: String, file: String, method: String, total: Int
    @OrNull var startedAt: String?
    var counts: [String: Int]
    var reused: Int
    @OrNull var metric: String?
    @OrNull var goal: String?
    @OrNull var etaS: Double?
    var slurmArrays: [String]
    var failures: [String: Int]
    enum CodingKeys: String, CodingKey {
        case name, file, method, total, startedAt = "started_at", counts, reused, metric, goal, etaS = "eta_s"
        case slurmArrays = "slurm_arrays", failures
    }

    init(_ s: SweepSummary, eta: Double?, failures: [(cause: FailureCause, count: Int)]) {
        name = s.name; file = s.file; method = s.method; total = s.total
        startedAt = s.startedAt.map(isoText)
        counts = Dictionary(uniqueKeysWithValues: s.counts.map { ($0.key.rawValue, $0.value) })
        reused = s.reused
        metric = s.objective?.metric; goal = s.objective?.goal.rawValue
        etaS = eta
        slurmArrays = s.slurmArrays
        self.failures = Dictionary(uniqueKeysWithValues: failures.map { ($0.cause.rawValue, $0.count) })
    }
}
