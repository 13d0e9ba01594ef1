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

    @Option(
        help: ArgumentHelp(
            "What a finished run must share with a trial to be reused: identity (parameters, command, code, trainer, data) or params (parameters and command only).",
            valueName: "rule"))
    var reuse: ReuseRule = .identity

    @Option(help: "Seconds between SIGTERM and SIGKILL when a trial is stopped.")
    var grace: Double = 10

    @Option(
        help: ArgumentHelp(
            "Where trials run: local (this machine) or slurm (job arrays through sbatch; settings from the experiment's `executor:`). Default: the experiment's executor, else local.",
            valueName: "type"))
    var executor: Experiment.ExecutorSettings.Kind?

    @Option(
        help: ArgumentHelp(
            "Where run folders go (default: runs/ beside the store). Under Slurm it must be on a filesystem the nodes share.",
            valueName: "dir"))
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

        var options = try runnerOptions(for: experiment, text: text)
        let progress = ProgressLine()
        options.progress = { progress.show($0) }
        let onSlurm = (executor ?? experiment.executor?.type) == .slurm
        // Trials share cards by their memory estimates (`harrow plan --memory`), and a Slurm job asks for what its
        // estimate needs; a trial without an estimate takes a whole card and the cluster's defaults.
        if experiment.gpuPacking.memory != nil || onSlurm {
            options.memoryEstimate = SweepWiring.memoryEstimates(experiment, workingDirectory: options.workingDirectory)
        }
        let notifier = experiment.notify.map { rule in
            Notifier(rule: rule, workingDirectory: options.workingDirectory) { line in
                FileHandle.standardError.write(Data("harrow: \(line)\n".utf8))
            }
        }
        if let notifier { options.failed = SweepEvent.firstFailure(notifier, sweep: experiment.name) }

        let outcome: SweepOutcome
        do {
            let runner =
                onSlurm
                ? SweepWiring.slurm(
                    experiment, runsDirectory: options.runsDirectory, store: store,
                    workingDirectory: options.workingDirectory) : nil
            outcome = try await SweepRunner(store: store, plan: plan, spec: text, options: options, executor: runner).run()
        } catch {
            progress.finish()
            printError("harrow: \(error)")
            throw ExitCode(1)
        }
        progress.finish()
        let snapshots = try store.snapshots(outcome.runs)
        if let notifier {
            notifier.send(.finished, json: jsonText(SweepEvent.Finished(experiment: experiment, outcome: outcome, snapshots: snapshots)))
            notifier.wait()
        }
        if json {
            print(jsonText(snapshots.map(RunSummary.init)))
        } else {
            print(SweepReport.table(snapshots, sweep: experiment.name, plan: plan))
            print(SweepReport.footer(outcome, sweep: experiment.name, recovered: SweepReport.recoveredFromOutOfMemory(snapshots)))
        }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    /// The runner's options from the flags and the experiment; a search that would never end without a deadline is
    /// refused here, before anything starts.
    func runnerOptions(for experiment: Experiment, text: String) throws -> RunnerOptions {
        var options = RunnerOptions()
        options.parallel = parallel
        options.gpus = try gpus.map(SweepWiring.parseGPUs)
        options.deadline = try deadline.map(SweepWiring.parseDeadline)
        if experiment.method == .random, Planner.proposesAsItRuns(experiment), options.deadline == nil {
            // W&B runs such a sweep until it is stopped; here the bound is asked for before anything starts.
            let at = Experiment.location(ofKey: "method", yaml: text, file: file)
            report(
                [
                    Diagnostic(
                        .error, at, "a random sweep without `count` or `run_cap` draws trials until it is stopped",
                        hint: "W&B runs a random sweep until it is stopped; give `harrow sweep --deadline 07:30` (or `--deadline 8h`), "
                            + "or add `run_cap: 50` to the file")
                ], json: false)
            throw ExitStatus.configuration
        }
        if experiment.method.isAdaptive, Planner.limit(experiment) == nil, options.deadline == nil {
            printError(
                "harrow: a \(experiment.method.rawValue) search without `count` or `run_cap` runs until --deadline; give one of them")
            throw ExitStatus.configuration
        }
        options.retries = retries
        options.rerunFailed = rerunFailed
        options.reuse = reuse
        options.notice = { line in FileHandle.standardError.write(Data("harrow: \(line)\n".utf8)) }
        options.killGrace = grace
        options.toolDirectory = executableDirectory()
        options.runsDirectory = runsDir.map { $0.hasPrefix("/") ? $0 : options.workingDirectory + "/" + $0 }
        return options
    }
}

/// The folder holding the running `harrow`, where `harrow-train` is built next to it.
func executableDirectory() -> String? {
    let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (path as NSString).deletingLastPathComponent
}

extension ReuseRule: ExpressibleByArgument {}
extension Experiment.ExecutorSettings.Kind: ExpressibleByArgument {}
