import ArgumentParser
import Foundation
import Runner
import Tracking

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Bring runs trained elsewhere into the store, with their curves.",
        discussion: """
            Formats:
              hf            a Hugging Face Trainer output folder (trainer_state.json,
                            or the newest checkpoint-N/)
              llamafactory  a LLaMA-Factory output folder (trainer_log.jsonl)
              ms-swift      an ms-swift output folder (logging.jsonl)
              wandb         a W&B offline run folder (wandb/offline-run-*, its
                            run-*.wandb file, or a wandb/ folder: its newest run)

            Names are mapped onto Harrow's: loss → train/loss, eval_loss → val/loss, learning_rate → lr \
            (a W&B run keeps the keys it logged, and its config's nested values are named a.b). \
            LoRA settings are read from an adapter_config.json beside the logs. Importing a folder again \
            replaces the run.

            Examples:
              harrow import hf outputs/qwen-lora
              harrow import llamafactory saves/llama3-8b/lora/sft --json
              harrow import ms-swift output/v0-20250101-120000
              harrow import wandb wandb/offline-run-20250101_120000-abc123
            """)

    enum Source: String, ExpressibleByArgument, CaseIterable {
        case hf, llamafactory
        case msSwift = "ms-swift"
        case wandb
    }

    @Argument(help: "hf, llamafactory, ms-swift or wandb.") var source: Source
    @Argument(help: "The output folder (or the log file itself).", completion: .directory) var path: String
    @Flag(help: "Print the imported run's summary JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let imported: ImportedRun
        do {
            switch source {
            case .hf: imported = try HuggingFaceImporter.read(path)
            case .llamafactory: imported = try LlamaFactoryImporter.read(path)
            case .msSwift: imported = try MsSwiftImporter.read(path)
            case .wandb: imported = try WandbImporter.read(path)
            }
        } catch {
            printError("harrow: \(error)")
            throw ExitStatus.configuration
        }
        let store = try storeOptions.openForWriting(create: true)
        let run = try store.save(imported)
        let verdict = try diagnose(run: run, store: store)
        if json {
            print(jsonText(try RunSummary(run, store: store)))
            return
        }
        let b = imported.batch
        print(
            "imported \(run.id) from \(imported.directory): \(b.series.count) metrics, \(b.pointCount) points"
                + (b.malformed > 0 ? ", \(b.malformed) unreadable entries skipped" : ""))
        for note in imported.notes { print("  " + note) }
        print("  verdict: \(verdict.verdict.rawValue) — \(verdict.advice)")
        for (key, series) in b.series.sorted(by: { $0.key < $1.key }) {
            print(
                "  \(key): \(series.steps.count) points, last \(formatNumber(series.values.last)) at step \(series.steps.last.map(String.init) ?? "-")"
            )
        }
    }
}
