import ArgumentParser
import Foundation
import HarrowCore
import TrainingCore

@main
struct HarrowTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harrow-train",
        abstract: "Harrow's built-in LoRA trainer: a small Llama-style decoder on OpenBLAS.",
        subcommands: [
            Pretrain.self, SFT.self, Score.self, Serve.self, Tokenize.self, Bench.self, Datagen.self, Objective.self, SearchBench.self
        ])
}

/// Prints a TrainingCore error to stderr and exits: 2 for configuration errors, 1 for everything else.
func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("harrow-train: \(error)\n".utf8))
    if case TrainingError.config = error { return ExitCode(2) }
    return ExitCode.failure
}

struct TrainArguments: ParsableArguments {
    @Option(help: "A trial.json: a flat JSON object of parameter names to values.")
    var config: String?

    @Option(help: "The run folder for checkpoints (default: $HARROW_RUN_DIR, else the config's folder).")
    var runDir: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override one parameter, NAME=VALUE (VALUE read as JSON when it parses).", valueName: "name=value"))
    var overrides: [String] = []

    @Option(help: help(overriding: \.dataset)) var dataset: String?
    @Option(help: help(overriding: \.lr)) var lr: Double?
    @Option(help: help(overriding: \.epochs)) var epochs: Double?
    @Option(help: help(overriding: \.seed)) var seed: Int?
    @Option(help: help(overriding: \.max_steps)) var maxSteps: Int?

    /// The help of a flag that sets one parameter: the parameter's summary and name.
    private static func help<Value>(overriding parameter: KeyPath<TrainerParameters, TrainerParameter<Value>>) -> ArgumentHelp {
        let p = TrainerParameters.declared[keyPath: parameter]
        return ArgumentHelp("\(p.summary) (overrides `\(p.name)`).")
    }

    /// The trial's parameters: --config, then each --set, then the flags.
    func parameters() throws -> [String: ParamValue] {
        var p: [String: ParamValue] = [:]
        if let config {
            do { p = try TrialFile.read(config) } catch {
                switch error {
                case .unreadable: throw TrainingError.file("cannot read \(config)")
                case .notAnObject: throw TrainingError.file("\(config): not a JSON object of parameters")
                }
            }
        }
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else { throw TrainingError.config(["--set \(o): expected NAME=VALUE"]) }
            p[String(o[..<eq])] = TrialFile.value(String(o[o.index(after: eq)...]))
        }
        let declared = TrainerParameters.declared
        if let dataset { p[declared.dataset.name] = .string(dataset) }
        if let lr { p[declared.lr.name] = .double(lr) }
        if let epochs { p[declared.epochs.name] = .double(epochs) }
        if let seed { p[declared.seed.name] = .int(seed) }
        if let maxSteps { p[declared.max_steps.name] = .int(maxSteps) }
        return p
    }

    func runFolder() -> URL {
        let env = ProcessInfo.processInfo.environment
        if let runDir { return URL(fileURLWithPath: runDir) }
        if let dir = env["HARROW_RUN_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let config { return URL(fileURLWithPath: config).deletingLastPathComponent() }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    func train(_ mode: TrainingMode, merge: Bool = false) throws {
        BLAS.applyEnvironmentThreads()
        do {
            let options = try TrainOptions(mode: mode, parameters: try parameters())
            if !options.unknownParameters.isEmpty {
                FileHandle.standardError.write(
                    Data("harrow-train: ignoring parameters \(options.unknownParameters.joined(separator: ", "))\n".utf8))
            }
            let runDir = runFolder()
            let metrics = ProcessInfo.processInfo.environment["HARROW_METRICS"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            let trainer = Trainer(mode: mode, options: options, runDir: runDir, metricsURL: metrics)
            trainer.merge = merge
            _ = try trainer.run()
        } catch {
            throw fail(error)
        }
    }
}

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model from scratch on raw text (.txt, or .jsonl of {\"text\"}); writes checkpoint/ and checkpoint-best/.")
    @OptionGroup var arguments: TrainArguments
    func run() throws { try arguments.train(.pretrain) }
}

struct SFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Fine-tune base_model on Alpaca or chat JSONL with LoRA (or fully), loss on response tokens only.")
    @OptionGroup var arguments: TrainArguments
    @Flag(help: "Also write the adapter merged into the base weights, as checkpoint/merged.") var merge = false
    func run() throws { try arguments.train(.sft, merge: merge) }
}
