import ArgumentParser
import Foundation
import HarrowCore

@main
struct Harrow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harrow",
        abstract: "Run fine-tuning sweeps overnight, track every run, and gate releases on their scores.",
        discussion: """
            A sweep starts as an experiment file (YAML; W&B sweep files load as they are).

              harrow data check datasets/domain/train.jsonl --against evalsets/domain-3h
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
        subcommands: [
            PlanCommand.self, SweepCommand.self, SweepsCommand.self, RunsCommand.self, ShowCommand.self,
            LogsCommand.self, ExportCommand.self, ImportCommand.self, DiagnoseCommand.self,
            EvalCommand.self, AblationCommand.self, GateCommand.self, CompareCommand.self, ReportCommand.self, TagCommand.self,
            UntagCommand.self, CheckCommand.self,
            DataCommand.self, NextCommand.self, LabelsCommand.self
        ]
    )
}

extension Harrow {
    /// ArgumentParser's `main`, with the README's exit statuses: every usage error, the parser's included, exits 2
    /// (not EX_USAGE, 64) and shows the failing command's own usage; a mistyped command gets a did-you-mean
    /// before the parser reads the rest of the line as options of the root; help screens end with exit statuses.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let word = arguments.first, !word.hasPrefix("-"), subcommand(named: word) == nil, word != "help" {
            let names = configuration.subcommands.map { $0._commandName } + ["help"]
            printError(
                "Error: unknown command '\(word)'" + (suggestion(for: word, among: names).map { "; did you mean '\($0)'?" } ?? "")
                    + "\nUsage: harrow <subcommand>\n  See 'harrow --help' for the commands.")
            Foundation.exit(ExitStatus.configuration.rawValue)
        }
        // Set once parsed: an error after that is the command's own.
        var parsed: ParsableCommand.Type?
        do {
            var command = try parseAsRoot(arguments)
            parsed = type(of: command)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            finish(error, in: parsed, arguments: arguments)
        }
    }

    /// The command a line names, nested ones included (`harrow data check --help`, `harrow help data check`).
    static func nestedCommand(in arguments: [String]) -> ParsableCommand.Type {
        var command: ParsableCommand.Type = Harrow.self
        for word in arguments where !word.hasPrefix("-") {
            guard let sub = command.configuration.subcommands.first(where: { $0._commandName == word }) else { continue }
            command = sub
        }
        return command
    }

    static func subcommand(named name: String) -> ParsableCommand.Type? {
        configuration.subcommands.first { $0._commandName == name }
    }

    /// Exits for an error thrown while parsing or, with `command`, by that command's `run()`.
    static func finish(_ error: Error, in command: ParsableCommand.Type? = nil, arguments: [String]) -> Never {
        let code = exitCode(for: error)
        if code == .success {
            let text = fullMessage(for: error)
            guard text.contains("USAGE:") else { exit(withError: error) }  // --version and the like
            // `harrow help runs`, `harrow runs --help`, `harrow`: the command named on the line.
            print(helpText(for: nestedCommand(in: arguments)))
            Foundation.exit(0)
        }
        guard code == .validationFailure else { exit(withError: error) }
        if let command, let error = error as? ValidationError {
            // Thrown by run(): the library would show the root's usage, not the command's.
            let name = command == Harrow.self ? "harrow" : "harrow \(command._commandName)"
            let usage = command == Harrow.self ? usageString() : usageString(for: command)
            printError("Error: \(error.message)\nUsage: \(usage)\n  See '\(name) --help' for more information.")
        } else {
            printError(fullMessage(for: error))
        }
        Foundation.exit(ExitStatus.configuration.rawValue)
    }

    /// A command's help screen, ending with its exit statuses unless its discussion already names them.
    static func helpText(for command: ParsableCommand.Type, columns: Int? = nil) -> String {
        let text =
            (command == Harrow.self
            ? helpMessage(includeHidden: false, columns: columns)
            : helpMessage(for: command, includeHidden: false, columns: columns))
            .trimmingCharacters(in: .newlines)
        if command.configuration.discussion.contains("Exit status") { return text }
        let failure = ExitStatus.failures[command._commandName] ?? "an error reading or writing the store or a file"
        return text + "\n\nEXIT STATUS:\n  0    success\n  1    \(failure)\n  2    usage or configuration error\n  130  interrupted"
    }
}

/// Exit statuses shared by every command (docs/DESIGN.md: 2 is a usage or configuration error).
enum ExitStatus {
    static let configuration = ExitCode(2)

    /// What status 1 means for commands whose help does not say it itself.
    static let failures = ["eval": "an evaluation failed", "report": "the report could not be written"]
}
