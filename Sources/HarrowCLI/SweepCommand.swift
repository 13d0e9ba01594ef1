import HarrowCore
import ArgumentParser
import Foundation
import Runner
import Sweep
import Tracking

struct SweepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run every unfinished trial of an experiment, recording everything in the store.",
        discussion: """
        Plans the experiment, skips trials that already finished in the store (succeeded or \
        stopped_early) with the same identity, and runs the rest in slots. Run the same command again to \
        resume after a crash, Ctrl-C or a reboot: finished trials are kept, interrupted ones start again.

        Before anything starts, the datasets the trials name are checked as `harrow plan` shows (kept with the \
        sweep for its report, and by content so an unchanged file is read once): a malformed line or an \
        evaluation prompt in the data stops the sweep with status 1 (`data: {allow_overlap: true}` allows the \
        latter).

        A trial's identity is its parameters and command, the git commit of the repository holding the \
        experiment with its uncommitted changes to tracked files (but experiment files: YAML beside it), \
        harrow-train's binary or the trainer script named by path, and the sha256 of the data and weights \
        its parameters name. When any of it changed, the trial runs again as a new run, linked to the \
        earlier one, and harrow says why. --reuse params keeps any finished run with the same parameters.

        Each trial gets .harrow/runs/RUN/ with trial.json, metrics.jsonl, stdout.log, stderr.log, and the \
        trainer's environment carries HARROW_RUN_ID, HARROW_RUN_DIR, HARROW_METRICS and its share of cores \
        in OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (or its GPU in CUDA_VISIBLE_DEVICES).

        Other trainers run unchanged: `trainer: {profile: llamafactory, config: FILE}` writes each \
        trial's LLaMA-Factory config, `trainer: {profile: hf, program: train.py}` passes \
        TrainingArguments flags, and `trainer.metrics: {format: llamafactory | ms-swift | hf | jsonl | wandb}` \
        reads a trainer's own log as it grows (README: Using your own trainer). A W&B sweep file \
        (`program:`) runs its script as W&B's agent would: the trial's values reach `wandb.config`, W&B \
        runs offline in the run folder, and what `wandb.log` sends is read from the run's .wandb file.

        On a cluster, `executor: {type: slurm, partition: gpu, gres: "gpu:1", time: "4:00:00", \
        array_parallelism: 8}` (or --executor slurm) submits the ready trials as one job array and \
        watches it with squeue; harrow stays the only writer of the store, reading each trial's run \
        folder. Run it again after a crash: jobs still queued or running are watched, not resubmitted \
        (README: Running on a cluster).

        Exit status: 0 every trial finished, 1 a trial failed or timed out, 2 bad configuration, \
        130 interrupted.

        Examples:
          harrow sweep experiments/demo.yaml --parallel 2
          harrow sweep experiments/overnight.yaml --deadline 07:30
          harrow sweep experiments/overnight.yaml --rerun-failed --retries 1
          harrow sweep overnight.yaml --executor slurm --runs-dir /shared/runs
        """
    )

    @Argument(help: "The experiment file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Option(help: "Trials at once on CPU slots (default: the experiment's resources, else 1).")
    var parallel: Int?

    @Option(help: ArgumentHelp("GPUs to use, one trial each, e.g. 0,1.", valueName: "ids"))
    var gpus: String?

    @Option(help: ArgumentHelp("Start no trial that would end after this: a time (07:30) or a duration (8h, 90m).", valueName: "when"))
    var deadline: String?

    @Option(help: "Extra attempts after a failure or timeout (default: the experiment's trainer.retries).")
    var retries: Int?

    @Flag(help: "Also run trials that failed or timed out before.")
    var rerunFailed = false

    @Option(help: ArgumentHelp("What a finished run must share with a trial to be reused: identity (parameters, command, code, trainer, data) or params (parameters and command only).", valueName: "rule"))
    var reuse: ReuseRule = .identity

    @Option(help: "Seconds between SIGTERM and SIGKILL when a trial is stopped.")
    var grace: Double = 10

    @Option(help: ArgumentHelp("Where trials run: local (this machine) or slurm (job arrays through sbatch; settings from the experiment's `executor:`). Default: the experiment's executor, else local.", valueName: "type"))
    var executor: Experiment.ExecutorSettings.Kind?

    @Option(help: ArgumentHelp("Where run folders go (default: runs/ beside the store). Under Slurm it must be on a filesystem the nodes share.", valueName: "dir"))
    var runsDir: String?

    @Flag(help: "Print the final run summaries as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if parallel != nil, gpus != nil { throw ValidationError("give --parallel or --gpus, not both") }
        if let parallel, parallel < 1 { throw ValidationError("--parallel must be at least 1") }
    }

    func run() async throws {
        let experiment: Experiment, plan: Plan, text: String
        do throws(ExperimentError) {
            experiment = try loadExperiment(file)
            plan = try Planner.plan(experiment)
        } catch {
            report(error.diagnostics, json: false)
            throw ExitStatus.configuration
        }
        text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        printWarnings(experiment.warnings)
        let store = try storeOptions.openForWriting(create: true)
        // The data before the night: findings are kept with the sweep for its report; malformed lines or evaluation
        // prompts in the data stop it here rather than at 2 a.m. or in a contaminated score.
        if let data = DataChecks.check(plan, workingDirectory: FileManager.default.currentDirectoryPath, store: store) {
            try? DataChecks.save(data, sweep: experiment.name, in: store)
            let lines = data.lines() + DataChecks.refusal(data)
            if !lines.isEmpty { FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8)) }
            if data.errors > 0 { throw ExitCode(1) }
        }

        var options = RunnerOptions()
        options.parallel = parallel
        options.gpus = try gpus.map(parseGPUs)
        options.deadline = try deadline.map(parseDeadline)
        if experiment.method == .random, Planner.proposesAsItRuns(experiment), options.deadline == nil {
            // W&B runs such a sweep until it is stopped; here the bound is asked for before anything starts.
            let at = Experiment.location(ofKey: "method", yaml: text, file: file)
            report([Diagnostic(.error, at, "a random sweep without `count` or `run_cap` draws trials until it is stopped",
                               hint: "W&B runs a random sweep until it is stopped; give `harrow sweep --deadline 07:30` (or `--deadline 8h`), "
                                   + "or add `run_cap: 50` to the file")], json: false)
            throw ExitStatus.configuration
        }
        if experiment.method.isAdaptive, Planner.limit(experiment) == nil, options.deadline == nil {
            printError("harrow: a \(experiment.method.rawValue) search without `count` or `run_cap` runs until --deadline; give one of them")
            throw ExitStatus.configuration
        }
        options.retries = retries
        options.rerunFailed = rerunFailed
        options.reuse = reuse
        options.notice = { line in FileHandle.standardError.write(Data("harrow: \(line)\n".utf8)) }
        options.killGrace = grace
        options.toolDirectory = executableDirectory()
        options.runsDirectory = runsDir.map { $0.hasPrefix("/") ? $0 : options.workingDirectory + "/" + $0 }
        let progress = ProgressLine()
        options.progress = { progress.show($0) }
        // Trials share cards by their memory estimates (`harrow plan --memory`), and a Slurm job asks for what its
        // estimate needs; a trial without an estimate takes a whole card and the cluster's defaults.
        if experiment.gpuPacking.memory != nil || (executor ?? experiment.executor?.type) == .slurm {
            let trainer = experiment.trainer, cwd = options.workingDirectory
            let config = trainer.baseConfig(workingDirectory: cwd)
            options.memoryEstimate = { trial in
                let estimate = MemoryEstimate.forTrial(trial, trainer: trainer, config: config) { path in
                    LlamaFactoryData.regularFileText(path.hasPrefix("/") ? path : cwd + "/" + path)
                }
                if case .success(let e) = estimate { return e }
                return nil
            }
        }
        let notifier = experiment.notify.map { rule in
            Notifier(rule: rule, workingDirectory: options.workingDirectory) { line in FileHandle.standardError.write(Data("harrow: \(line)\n".utf8)) }
        }
        if let notifier {
            let first = FirstFailure()
            options.failed = { run in
                guard first.claim() else { return }
                notifier.send(.failedFirst, json: jsonText(["event": "failed_first", "sweep": experiment.name, "run": run.id,
                                                            "status": run.status.rawValue, "params": run.params.mapValues(\.jsonObject),
                                                            "failure": run.failure.map { ["cause": $0.cause.rawValue, "lines": $0.lines] as [String: Any] } ?? NSNull()]
                                                           as [String: Any]))
            }
        }

        let outcome: SweepOutcome
        do {
            var runner: (any Executor)?
            if (executor ?? experiment.executor?.type) == .slurm {
                let folder = options.runsDirectory.map { ($0 as NSString).deletingLastPathComponent } ?? (store.path as NSString).deletingLastPathComponent
                runner = SlurmExecutor(settings: experiment.executor ?? .init(), stateDirectory: absolute(folder) + "/slurm",
                                       workingDirectory: options.workingDirectory, sweep: experiment.name, timeout: experiment.trainer.timeout)
            }
            outcome = try await SweepRunner(store: store, plan: plan, spec: text, options: options, executor: runner).run()
        } catch {
            progress.finish()
            printError("harrow: \(error)")
            throw ExitCode(1)
        }
        progress.finish()
        let snapshots = try store.snapshots(outcome.runs)
        if let notifier {
            var counts: [String: Int] = [:]
            for r in outcome.runs { counts[r.status.rawValue, default: 0] += 1 }
            let metric = experiment.metric?.name ?? "val/loss"
            let lower = (experiment.metric?.goal ?? .minimize) == .minimize
            let best = snapshots.compactMap { s in s.value(metric).map { (s, $0) } }.min { lower ? $0.1 < $1.1 : $0.1 > $1.1 }
            notifier.send(.finished, json: jsonText([
                "event": "finished", "sweep": experiment.name, "exit_code": Int(outcome.exitCode), "counts": counts,
                "failures": Dictionary(uniqueKeysWithValues: FailureCounts.counts(outcome.runs).map { ($0.cause.rawValue, $0.count) }),
                "best": best.map { ["run": $0.0.id, "metric": metric, "value": $0.1] as [String: Any] } ?? NSNull(),
            ] as [String: Any]))
            notifier.wait()
        }
        if json {
            print(jsonText(snapshots.map(RunSummary.json)))
        } else {
            print(SweepReport.table(snapshots, sweep: experiment.name, plan: plan))
            print(SweepReport.footer(outcome, sweep: experiment.name))
        }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    func parseGPUs(_ text: String) throws -> [Int] {
        let ids = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ValidationError("--gpus takes device numbers like 0,1") }
        return ids.map { $0! }
    }

    func parseDeadline(_ text: String) throws -> Date {
        if let seconds = parseDuration(text) { return Date().addingTimeInterval(seconds) }
        let parts = text.split(separator: ":").map { Int($0) }
        guard parts.count == 2, let h = parts[0], let m = parts[1], (0..<24).contains(h), (0..<60).contains(m) else {
            throw ValidationError("--deadline takes a time (07:30) or a duration (8h, 90m, 1h30m)")
        }
        let calendar = Calendar.current
        var next = calendar.nextDate(after: Date(), matching: DateComponents(hour: h, minute: m), matchingPolicy: .nextTime)!
        if next < Date() { next = calendar.date(byAdding: .day, value: 1, to: next)! }
        return next
    }
}

/// The folder holding the running `harrow`, where `harrow-train` is built next to it.
func executableDirectory() -> String? {
    let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (path as NSString).deletingLastPathComponent
}

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

extension ReuseRule: ExpressibleByArgument {}
extension Experiment.ExecutorSettings.Kind: ExpressibleByArgument {}

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
            more = "\nthe best \(shownRows) of \(all.count) by \(metric); \(all.count - shownRows) more"
                + (notStarted > 0 ? " (\(notStarted) not started)" : "") + ": `harrow runs --sweep \(sweep)` lists them all"
        }
        // The sweep's own metric beside val loss when it is another (a W&B script's `val_loss`, `accuracy`).
        let metric = plan.experiment.metric.flatMap { $0.name == TrainerContract.Metric.valLoss ? nil : $0 }
        let header = ["run", "status", "try", "time"] + varying + [TrainerContract.Metric.trainLoss, "val/loss min", "@step"]
            + (metric.map { [$0.name + ($0.goal == .minimize ? " min" : " max")] } ?? []) + ["verdict"]
        let rows = snapshots.map { snapshot -> [String] in
            let run = snapshot.run, params = run.params, s = snapshot.summaries
            let status = run.sweepName.map { $0 == sweep ? run.status.rawValue : "\(run.status.rawValue) (reused from \($0))" } ?? run.status.rawValue
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

    static func footer(_ o: SweepOutcome, sweep: String) -> String {
        var counts: [String: Int] = [:]
        for r in o.runs { counts[r.status.rawValue, default: 0] += 1 }
        var text = "\n" + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        if let causes = FailureCounts.text(o.runs) { text += "\nwhy: " + causes }
        if o.alreadyFinished > 0 { text += " (\(o.alreadyFinished) finished before and skipped)" }
        let reused = o.runs.filter { $0.sweepName.map { $0 != sweep } ?? false }
        if !reused.isEmpty {
            let sweeps = Set(reused.compactMap(\.sweepName)).sorted().joined(separator: ", ")
            text += "\n\(reused.count) reused from sweep \(sweeps): same identity, so not run again"
        }
        if !o.reruns.isEmpty { text += "\n\(o.reruns.count) ran again because their code or data changed; `harrow show RUN` names the earlier run" }
        if o.notStarted > 0 { text += "\n\(o.notStarted) not started before the deadline: run the same command again to continue" }
        if o.interrupted { text += "\ninterrupted: run the same command again to resume" }
        if let failure = o.storeFailure {
            text += "\nstopped: the store cannot be written (\(failure)).\nNothing finished is lost: free space (or fix the disk) and run the same command again to resume."
        }
        for r in o.runs where r.status == .failed || r.status == .timed_out {
            text += "\n\n\(r.id) \(r.status.rawValue)" + (r.failure.map { ", \($0.cause.label)" } ?? "")
                + (r.exitCode.map { " (exit \($0))" } ?? r.signal.map { " (signal \($0))" } ?? "")
            if let tail = r.stderrTail { text += ":\n" + tail.split(separator: "\n").suffix(5).map { "    " + $0 }.joined(separator: "\n") }
        }
        return text
    }
}

/// The first failure of a sweep, claimed once across runner slots.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
