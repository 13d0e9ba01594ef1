import ArgumentParser
import Foundation
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
        // Advice, never a refusal: the exit status stays 0 whatever it says.
        var records = DatasetRecords(workingDirectory: FileManager.default.currentDirectoryPath)
        let advice = PlanAdvice.advise(plan, records: records.counts(for: plan.trials))
        // The datasets, as the sweep will check them; findings a sweep stored before are reused, nothing is written.
        let cwd = FileManager.default.currentDirectoryPath
        let store = FileManager.default.fileExists(atPath: Store.defaultPath) ? try? Store.reading(Store.defaultPath) : nil
        let data = DataChecks.check(plan, workingDirectory: cwd, store: store)
        if json {
            print(PlanJSON.render(plan, advice: advice, data: data))
        } else {
            print(PlanTable.render(plan, limit: limit, advice: advice))
            if let data {
                let lines = data.lines()
                let all: [String] = (lines.isEmpty ? [] : [""]) + lines + DataChecks.refusal(data)
                print(all.joined(separator: "\n"))
            }
        }
        if let data, data.errors > 0 { throw ExitCode(1) }
    }
}

/// The training records of the datasets trials name, for `PlanAdvice`: non-empty lines of a `.jsonl`, each file read
/// once. Paths resolve against the working directory, as the runner resolves them (`Inputs`). A dataset that is not a
/// readable regular `.jsonl` file (missing, or a name a trainer profile looks up) is left out, and its rule stays silent.
struct DatasetRecords {
    let workingDirectory: String
    private var cache: [String: Int?] = [:]

    init(workingDirectory: String) { self.workingDirectory = workingDirectory }

    /// Counts by the path as each trial writes it.
    mutating func counts(for trials: [Trial]) -> [String: Int] {
        var out: [String: Int] = [:]
        for trial in trials {
            guard case .string(let path)? = trial["dataset"], out[path] == nil, let n = count(path) else { continue }
            out[path] = n
        }
        return out
    }

    mutating func count(_ path: String) -> Int? {
        if let cached = cache[path] { return cached }
        let n = Self.nonEmptyLines(path.hasPrefix("/") ? path : workingDirectory + "/" + path)
        cache[path] = n
        return n
    }

    /// Lines holding anything but white space, read in slices; nil unless a regular `.jsonl` file (so a FIFO or
    /// `/dev/zero` named as a dataset cannot hang the plan).
    static func nonEmptyLines(_ path: String) -> Int? {
        guard path.hasSuffix(".jsonl") else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var lines = 0, content = false
        while let slice = try? handle.read(upToCount: 1 << 20), !slice.isEmpty {
            for byte in slice {
                switch byte {
                case UInt8(ascii: "\n"):
                    if content { lines += 1 }
                    content = false
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): break
                default: content = true
                }
            }
        }
        return lines + (content ? 1 : 0)
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
