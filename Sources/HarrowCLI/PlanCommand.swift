import ArgumentParser
import Foundation
import HarrowCore
import Runner
import Sweep
import Tracking

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

            Then advice, never a refusal: where trials disagree with LoRA rules of thumb (epochs for the number of \
            training records in `dataset`, warmup per epoch, mix_ratio, lora_alpha / lora_r, lr), one `advice:` line per \
            group of trials, with its rule. `advice: {ignore: [epochs, warmup]}` in the experiment silences rules.

            Then the data, as `harrow sweep` will check it before starting: every file trials name as dataset, \
            general_dataset or val_dataset (LLaMA-Factory names through its dataset_info.json) is read as `harrow data \
            check` reads it, against the evalsets under `eval:`. One `data:` line per file (records, tokens, warnings), \
            then its findings: records over max_seq_len, duplicated responses, rare task types, task types with fewer \
            than 3 validation records, and, as errors, malformed lines and evaluation prompts found in the data. \
            `data: {allow_overlap: true}` makes evaluation prompts warnings; `data: {check: false}` skips the check.

            A `memory` column estimates each trial's peak memory from its model's config.json (base_model or \
            model_name_or_path; a hub name without a local folder gets none) and its settings under Harrow's, \
            LLaMA-Factory's or TrainingArguments' names: weights by dtype (fp32, bf16, 8-bit, NF4), LoRA adapters \
            with their gradients and AdamW moments, or full fine-tuning's, activations and logits for the micro-batch \
            and sequence length (with or without gradient checkpointing), a CUDA context and allocator slack. \
            `--memory` shows each estimate term by term with its assumptions.

            Errors in the file are reported all at once as FILE:LINE:COLUMN with a hint, and exit with status 2. Data \
            the sweep would refuse exits with status 1.

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

    @Flag(
        help:
            "Show each trial's memory estimate term by term: weights, adapters, gradients, optimiser states, activations, logits, CUDA context and allocator slack."
    )
    var memory = false

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
        // Advice, never a refusal: the exit status stays 0 whatever it says.
        var records = DatasetRecords(workingDirectory: FileManager.default.currentDirectoryPath)
        let trainer = plan.experiment.trainer
        let trainerConfig = trainer.baseConfig(workingDirectory: records.workingDirectory)
        let advice = records.advice(for: plan, config: trainerConfig)
        // The datasets, as the sweep will check them; findings a sweep stored before are reused, nothing is written.
        let cwd = FileManager.default.currentDirectoryPath
        let store = FileManager.default.fileExists(atPath: Store.defaultPath) ? try? Store.reading(Store.defaultPath) : nil
        let data = DataChecks.check(plan, workingDirectory: cwd, store: store)
        // The memory each trial needs, from its model's config.json, each file read once.
        var modelConfigs: [String: String?] = [:]
        let estimates = plan.trials.map { trial in
            MemoryEstimate.forTrial(trial, trainer: trainer, config: trainerConfig) { path in
                if let cached = modelConfigs[path] { return cached }
                let text = LlamaFactoryData.regularFileText(records.resolve(path))
                modelConfigs[path] = text
                return text
            }
        }
        if json {
            print(PlanJSON.render(plan, advice: advice, data: data, memory: estimates))
        } else {
            print(PlanTable.render(plan, limit: limit, advice: advice, memory: estimates))
            if memory {
                let slurm = plan.experiment.executor.flatMap { $0.type == .slurm ? $0 : nil }
                print(PlanMemory.render(estimates, slurm: slurm).joined(separator: "\n"))
            }
            if let data {
                let lines = data.lines()
                let all: [String] = (lines.isEmpty ? [] : [""]) + lines + DataChecks.refusal(data)
                print(all.joined(separator: "\n"))
            }
        }
        if let data, data.errors > 0 { throw ExitCode(1) }
    }
}

/// What `PlanAdvice` needs read from disk: the trainer profile's base config (`trainer.config`) and the records of
/// the data each trial trains on, each file read once. Paths resolve against the working directory, as the runner
/// resolves them (`Inputs`) and where LLaMA-Factory, started there, looks for its `dataset_dir`. What cannot be read
/// (a missing file, a hub dataset, a format not counted here) is left out, and the rule needing it stays silent.
struct DatasetRecords {
    let workingDirectory: String
    private var cache: [String: Int?] = [:]

    init(workingDirectory: String) { self.workingDirectory = workingDirectory }

    /// The plan's advice, with its profile's config (`Experiment.Trainer.baseConfig`) and its data counted.
    mutating func advice(for plan: Plan, config: [String: ParamValue]) -> [PlanAdvice.Warning] {
        var records: [PlanAdvice.DataSource: Int] = [:]
        for source in PlanAdvice.dataSources(plan, config: config) { records[source] = count(source) }
        return PlanAdvice.advise(plan, config: config, records: records)
    }

    mutating func count(_ source: PlanAdvice.DataSource) -> Int? {
        switch source {
        case .file(let path):
            // Harrow's trainer reads JSON lines.
            return path.hasSuffix(".jsonl") ? records(resolve(path), arrays: false) : nil
        case .llamaFactory(let name, let datasetDir):
            guard let entry = LlamaFactoryData.entry(name: name, datasetDir: datasetDir, workingDirectory: workingDirectory),
                let n = records(resolve(entry.path), arrays: entry.path.hasSuffix(".json"))
            else { return nil }
            return entry.samples ?? n
        }
    }

    func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }

    /// Records of a regular file, cached by its path: with `arrays`, the elements of a file holding a JSON array; else
    /// non-empty lines (JSON lines, which datasets' `json` loader also reads from a `.json` file).
    mutating func records(_ path: String, arrays: Bool) -> Int? {
        if let cached = cache[path] { return cached }
        let n = Self.records(path, arrays: arrays)
        cache[path] = n
        return n
    }

    /// Read in slices; nil unless a regular file (so a FIFO or `/dev/zero` named as a dataset cannot hang the plan), or
    /// for a JSON array that never closes.
    static func records(_ path: String, arrays: Bool) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var lines = 0, content = false
        // A JSON array: its top-level elements, counted where each starts, outside strings.
        var array: Bool? = arrays ? nil : false, depth = 0, elements = 0, inElement = false, inString = false, escaped = false
        while let slice = try? handle.read(upToCount: 1 << 20), !slice.isEmpty {
            for byte in slice {
                let blank =
                    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
                // The first byte that is not white space or a UTF-8 byte-order mark says which.
                if array == nil, !blank, byte < 0x80 { array = byte == UInt8(ascii: "[") }
                if array == true {
                    if inString {
                        if escaped {
                            escaped = false
                        } else if byte == UInt8(ascii: "\\") {
                            escaped = true
                        } else if byte == UInt8(ascii: "\"") {
                            inString = false
                        }
                        continue
                    }
                    if depth == 1, !inElement, !blank, byte != UInt8(ascii: ","), byte != UInt8(ascii: "]") {
                        inElement = true
                        elements += 1
                    }
                    switch byte {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        depth -= 1
                        if depth == 0 { return elements }
                    case UInt8(ascii: ","): if depth == 1 { inElement = false }
                    default: break
                    }
                } else if byte == UInt8(ascii: "\n") {
                    if content { lines += 1 }
                    content = false
                } else if !blank {
                    content = true
                }
            }
        }
        return array == true ? nil : lines + (content ? 1 : 0)
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
