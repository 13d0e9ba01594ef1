import ArgumentParser
import Foundation

@main
struct Harrow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harrow",
        abstract: "Run fine-tuning sweeps overnight, track every run, and gate releases on their scores.",
        discussion: """
        A sweep starts as an experiment file (YAML; W&B sweep files load unchanged). Plan it first to see
        the trials it expands to:

          harrow plan experiments/demo.yaml
          harrow sweep experiments/demo.yaml --parallel 2     # run it; run again to resume
          harrow runs --sweep demo --sort val/loss            # best first
          harrow show RUN                                     # one run in full

        Exit status: 0 success, 1 a trial or check failed, 2 bad usage or configuration, 130 interrupted.
        """,
        version: "0.1.0",
        subcommands: [PlanCommand.self, SweepCommand.self, SweepsCommand.self, RunsCommand.self, ShowCommand.self,
                      LogsCommand.self, ExportCommand.self, ImportCommand.self, DiagnoseCommand.self,
                      EvalCommand.self, GateCommand.self, CompareCommand.self, TagCommand.self, UntagCommand.self]
    )
}

/// Exit statuses shared by every command (DESIGN.md: 2 is a usage or configuration error).
enum ExitStatus {
    static let configuration = ExitCode(2)
}
