import ArgumentParser
import Foundation
import HarrowCore
import Reporting
import Sweep
import Tracking

struct NextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next",
        abstract: "Write the next night's experiment from a finished sweep.",
        discussion: """
            Reads the sweep's experiment (as it was last run), its runs, their verdicts and which parameters mattered, \
            and writes a new experiment file: values whose every run over-fitted, diverged or failed are dropped; a \
            parameter that explained under 5% of the metric's variance is fixed at the best run's value; a numeric axis \
            is narrowed to the best run's value and its neighbours, with one step beyond an edge the best run sits on; \
            a range (random, bayes) shrinks to the span of the best quarter of runs; epochs follow the best run's \
            verdict (over-fitted: around the epoch of its best step; under-trained: twice as many). Each change is a \
            `# next:` comment above the parameter; every other line of the file is kept as written.

            The new file is planned before it is written; it is refused (exit 1) if it does not plan.

            Examples:
              harrow next --sweep overnight -o experiments/overnight-next.yaml
              harrow next --sweep demo --json
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The finished sweep.") var sweep: String
    @Option(name: [.customShort("o"), .long], help: "Write the experiment here (default: print it).") var output: String?
    @Option(help: "The new experiment's name (default: the sweep's name with -next).") var name: String?
    @Flag(help: "Replace --output if it exists.") var force = false
    @Flag(help: "Print the changes and the new file as JSON.") var json = false

    func run() throws {
        let store = try storeOptions.open()
        try requireSweep(sweep, in: store)
        guard let spec = try store.sweepSpec(sweep), let summary = try store.sweeps().first(where: { $0.name == sweep }) else {
            printError("harrow: sweep '\(sweep)' has no experiment text in \(store.path)")
            throw ExitStatus.configuration
        }
        let experiment: Experiment
        do throws(ExperimentError) {
            experiment = try Experiment.parse(yaml: spec, file: summary.file)
        } catch {
            printError("harrow: the experiment sweep '\(sweep)' ran no longer parses:")
            report(error.diagnostics, json: false)
            throw ExitStatus.configuration
        }
        let snapshots = try store.snapshots(try store.runs(sweep: sweep))
        let metric = experiment.metric?.name ?? TrainerContract.Metric.valLoss
        let outcomes = snapshots.map(Self.outcome(metric: metric))
        let searched = NextNight.searched(experiment).map(\.name)
        let rows = zip(snapshots, outcomes).compactMap { s, o in o.value.map { (params: s.params, value: $0) } }
        // Shares of variance need a design that crosses the parameters; one change at a time from a baseline (the
        // demo's design) gives none, and each axis is then only narrowed around the best run.
        let oneAtATime = Ablation.oneAtATime(snapshots.map { $0.params.mapValues(\.plain) }) != nil
        let effects =
            rows.count >= 3 && !oneAtATime
            ? Effects.analyze(rows, parameters: searched, metric: metric, grid: experiment.method == .grid).effects
                .map { NextNight.Effect(parameter: $0.parameter, share: $0.share) }
            : []
        let newName = name ?? experiment.name + "-next"
        var proposal = NextNight.propose(experiment, outcomes: outcomes, effects: effects, sweep: sweep)
        if oneAtATime {
            proposal.summary.append(
                "One change at a time from a baseline: no parameter's share of the variance can be read, so none is fixed for it.")
        }
        let text = NextNight.render(original: spec, experiment: experiment, proposal: proposal, name: newName)

        // The file must plan as written: a proposal that does not is a fault here, not the user's to find tonight.
        let before = try? Planner.plan(experiment)
        let after: Plan
        do throws(ExperimentError) {
            after = try Planner.plan(try Experiment.parse(yaml: text, file: output ?? "next.yaml"))
        } catch {
            printError("harrow: the proposed experiment does not plan:")
            report(error.diagnostics, json: false)
            printError(text)
            throw ExitCode(1)
        }
        let count =
            Planner.proposesAsItRuns(after.experiment)
            ? Planner.limit(after.experiment).map { "up to \($0)" } ?? "open-ended"
            : String(after.trials.count)
        let was =
            before.map {
                Planner.proposesAsItRuns(experiment)
                    ? Planner.limit(experiment).map { "up to \($0)" } ?? "open-ended" : String($0.trials.count)
            } ?? "?"

        if let output {
            if FileManager.default.fileExists(atPath: output), !force {
                printError("harrow: \(output) exists; give --force to replace it")
                throw ExitStatus.configuration
            }
            do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                printError("harrow: cannot write \(output): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
        if json {
            let best = proposal.best.map { NextJSON.Best(value: $0.value, verdict: $0.verdict, params: $0.params) }
            print(
                jsonText(
                    NextJSON(
                        sweep: sweep, metric: metric, name: newName, file: output, trials: count, trialsBefore: was, best: best,
                        changes: proposal.changes.map { .init(parameter: $0.parameter, spec: $0.spec, reasons: $0.reasons) }, text: text)))
        } else if output == nil {
            print(text, terminator: "")
        }
        if !json {
            let changed = proposal.changes.filter { $0.spec != nil }.map(\.parameter).joined(separator: ", ")
            printError(
                "harrow: \(output ?? "the experiment above") plans \(count) trials (sweep '\(sweep)' planned \(was))"
                    + (changed.isEmpty ? "; nothing changed" : "; changed: \(changed)"))
        }
    }

    /// A run as the proposal reads it: its metric (nil unless it finished), verdict and the epoch of its best step.
    static func outcome(metric: String) -> (RunSnapshot) -> NextNight.Outcome {
        { s in
            var bestEpoch: Double?
            // The epoch at the best step, from the epoch the trainer logged at its last step (steps per epoch are even).
            if let step = s.bestStep, let e = s.summaries[TrainerContract.Metric.epoch], e.lastStep > 0 {
                bestEpoch = e.last * Double(step) / Double(e.lastStep)
            }
            return NextNight.Outcome(
                params: s.params, value: s.run.status.isFinished ? s.value(metric) : nil, verdict: s.diagnosis?.verdict,
                bestEpoch: bestEpoch)
        }
    }
}
