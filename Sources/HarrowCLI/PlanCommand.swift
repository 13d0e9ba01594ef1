import ArgumentParser
import Foundation
import Sweep

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Expand an experiment file into its trials without running anything.",
        discussion: """
        Prints one row per trial with the parameters that vary, then what was dropped: points removed by \
        `exclude:` or `where:`, duplicates (two points that resolve to the same parameters, e.g. a tied \
        lora_alpha equal to a free one), and trials over `run_cap`. Each trial has a params key (SHA-256 of \
        its parameters and trainer command; `harrow show KEY` takes its prefix): a sweep re-run skips trials \
        that already finished with that key and the same code and inputs.

        Errors are reported all at once as FILE:LINE:COLUMN with a hint, and exit with status 2.

        Examples:
          harrow plan experiments/overnight.yaml
          harrow plan sweep.yaml --json > trials.json
        """
    )

    @Argument(help: "The experiment file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Flag(help: "Print the plan as JSON instead of a table.")
    var json = false

    @Option(help: "Show at most this many trial rows in the table (the JSON always has every trial).")
    var limit: Int?

    func run() throws {
        let plan: Plan
        do throws(ExperimentError) {
            let experiment = try loadExperiment(file)
            plan = try Planner.plan(experiment)
        } catch {
            report(error.diagnostics, json: json)
            throw ExitStatus.configuration
        }
        printWarnings(plan.experiment.warnings)
        if json {
            print(PlanJSON.render(plan))
        } else {
            print(PlanTable.render(plan, limit: limit))
        }
    }
}

/// Reads and parses an experiment file; unreadable files become a diagnostic like any other.
func loadExperiment(_ path: String) throws(ExperimentError) -> Experiment {
    let text: String
    do {
        text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file as UTF-8 text" : "no such file"
        throw ExperimentError(diagnostics: [Diagnostic(.error, SourceLocation(file: path, line: 1, column: 1), reason)])
    }
    return try Experiment.parse(yaml: text, file: path)
}

func printWarnings(_ warnings: [Diagnostic]) {
    for w in warnings { FileHandle.standardError.write(Data((w.description + "\n").utf8)) }
}

func report(_ diagnostics: [Diagnostic], json: Bool) {
    printWarnings(diagnostics)
    let errors = diagnostics.filter { $0.severity == .error }.count
    FileHandle.standardError.write(Data("\(errors) error\(errors == 1 ? "" : "s")\n".utf8))
    if json { print(PlanJSON.render(diagnostics: diagnostics)) }
}
