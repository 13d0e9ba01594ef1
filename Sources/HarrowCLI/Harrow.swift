import ArgumentParser
import Foundation

@main
struct Harrow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harrow",
        abstract: "Run fine-tuning sweeps overnight, track every run, and gate releases on their scores.",
        discussion: """
        A sweep starts as an experiment file (YAML; W&B sweep files load as they are).

          harrow plan experiments/demo.yaml          the trials it expands to
          harrow sweep experiments/demo.yaml         run them; run again to resume
          harrow runs --sweep demo --sort val/loss   best first
          harrow diagnose --sweep demo               over- or under-fitting
          harrow eval RUN --evalset evalsets/domain-3h
          harrow gate RUN --gate gates/release.yaml  0 pass, 1 refused
          harrow report --sweep demo                 reports/demo/index.html

        Exit status: 0 success, 1 a trial or check failed, 2 bad usage or \
        configuration, 130 interrupted.
        """,
        version: "0.1.0",
        subcommands: [PlanCommand.self, SweepCommand.self, SweepsCommand.self, RunsCommand.self, ShowCommand.self,
                      LogsCommand.self, ExportCommand.self, ImportCommand.self, DiagnoseCommand.self,
                      EvalCommand.self, AblationCommand.self, GateCommand.self, CompareCommand.self, ReportCommand.self, TagCommand.self, UntagCommand.self, CheckCommand.self]
    )
}

/// Exit statuses shared by every command (docs/DESIGN.md: 2 is a usage or configuration error).
enum ExitStatus {
    static let configuration = ExitCode(2)
}
