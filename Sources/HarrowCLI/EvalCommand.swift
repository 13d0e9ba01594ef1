import HarrowCore
import ArgumentParser
import Evaluation
import Foundation
import Runner
import Tracking

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a run, a checkpoint or any scorer on evalsets: per 3H dimension, per task type, per item.",
        discussion: """
            Choice items are scored by the summed log-likelihood of each choice (acc) and by it divided by the \
            choice's length in bytes (acc_norm); generative items by their check (exact, contains, regex, \
            refusal, abstain). The total weights the dimensions as the evalset's manifest says. A run's results \
            go into the store with every item, so `harrow compare` can show which cases flipped; evaluating a \
            run also scores its starting model once (cached by weights hash): on evalsets/general the difference \
            is forgetting.

            Examples:
              harrow eval k3x9a2pq --evalset evalsets/domain-3h --evalset evalsets/general
              harrow eval --checkpoint models/chat --evalset evalsets/domain-3h
              harrow eval --scorer 'python3 my_scorer.py --model out/' \\
                --evalset evalsets/domain-3h --json
            """)

    @Argument(help: "Run id (or a unique prefix) whose checkpoint to score.") var runID: String?
    @Option(name: .customLong("evalset"), help: ArgumentHelp("An evalset folder (repeatable).", valueName: "dir")) var evalsets: [String] =
        []
    @Option(help: "A model folder to score instead of a run.") var checkpoint: String?
    @Option(help: "A LoRA adapter folder to apply to --checkpoint.") var adapter: String?
    @Option(help: ArgumentHelp("A scorer command speaking the score protocol, split on spaces.", valueName: "command")) var scorer: String?
    @Option(help: ArgumentHelp("Stop a scorer that answers nothing for this many seconds.", valueName: "seconds"))
    var timeout: Double = Scorer.defaultIdleTimeout
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
        if evalsets.isEmpty { throw ValidationError("give at least one --evalset DIR") }
        let sources = [runID != nil, checkpoint != nil, scorer != nil && runID == nil].filter { $0 }.count
        if sources != 1 { throw ValidationError("give a run id, or --checkpoint PATH, or --scorer COMMAND") }
        if adapter != nil, checkpoint == nil { throw ValidationError("--adapter goes with --checkpoint") }
    }

    func run() async throws {
        let scorerArgv = scorer.map { $0.split(separator: " ").map(String.init) }
        if let runID {
            let store = try storeOptions.openForWriting()
            let run = try store.requireRun(runID)
            let evaluation = RunEvaluation(toolDirectory: executableDirectory(), scorer: scorerArgv, timeout: timeout)
            let results = await evaluation.run(run, evalsets: evalsets, store: store)
            print(json ? jsonText(results.map(EvalJSON.init)) : results.map(Self.table).joined(separator: "\n\n"))
            if results.contains(where: { $0.status != "succeeded" }) { throw ExitCode(1) }
            return
        }
        var argv = scorerArgv ?? []
        if let checkpoint {
            let tool = TrainerContract.harrowTrain(nextTo: executableDirectory())
            argv = [tool, "score", "--model", checkpoint] + (adapter.map { ["--adapter", $0] } ?? [])
        }
        var results: [StoredEval] = []
        for dir in evalsets {
            do {
                let set = try Evalset.load(dir)
                let started = Date()
                let r = try await evaluate(set, with: Scorer(argv: argv, idleTimeout: timeout))
                var stored = RunEvaluation.stored(r, seconds: Date().timeIntervalSince(started))
                stored.rubric = RunEvaluation.rubric(set)
                results.append(stored)
            } catch {
                printError("harrow: \(dir): \(error)")
                throw ExitCode(1)
            }
        }
        print(json ? jsonText(results.map(EvalJSON.init)) : results.map(Self.table).joined(separator: "\n\n"))
    }

    static func table(_ e: StoredEval) -> String {
        guard e.status == "succeeded", let total = e.total else { return "\(e.evalset): \(e.status): \(e.error ?? "")" }
        if let rubric = e.rubric { return judgedTable(e, rubric: rubric, total: total) }
        let rows = e.groups.sorted { ($0.dimension, $0.taskType) < ($1.dimension, $1.taskType) }.map { g in
            [
                g.taskType.isEmpty ? g.dimension : "  " + g.taskType, String(g.n), String(format: "%.3f ± %.3f", g.acc, g.accStderr),
                String(format: "%.3f", g.accNorm)
            ]
        }
        var lines =
            ["\(e.evalset)  (\(formatDuration(e.seconds)))"]
            + TextTable.render(header: ["dimension / task type", "n", "acc", "acc_norm"], rows: rows)
        lines.append(String(format: "weighted total %.3f ± %.3f (acc_norm %.3f)", total, e.totalStderr ?? 0, e.totalNorm ?? 0))
        if let b = e.baseline { lines.append(String(format: "starting model %.3f → change %+.3f", b, total - b)) }
        return lines.joined(separator: "\n")
    }

    /// A judged set: the usability rate and each dimension's pass share with Wilson intervals and mean score, per
    /// task type; and who judged.
    static func judgedTable(_ e: StoredEval, rubric: [StoredEval.RubricDimension], total: Double) -> String {
        func share(_ g: StoredEval.Group) -> String {
            let w = Paired.wilson(successes: Int((g.acc * Double(g.n)).rounded()), n: g.n)
            return String(format: "%.3f [%.3f, %.3f]", g.acc, w.low, w.high)
        }
        let order = ["usable"] + rubric.map(\.name)
        let rows = e.groups.sorted {
            (order.firstIndex(of: $0.dimension) ?? 99, $0.taskType) < (order.firstIndex(of: $1.dimension) ?? 99, $1.taskType)
        }
        .map { g -> [String] in
            let d = rubric.first { $0.name == g.dimension }
            let label =
                g.taskType.isEmpty
                ? (d.map { String(format: "%@ (≥ %g of %d–%d)", $0.name, $0.threshold, $0.low, $0.high) } ?? g.dimension)
                : "  " + g.taskType
            return [label, String(g.n), share(g), g.mean.map { String(format: "%.2f", $0) } ?? ""]
        }
        var lines =
            ["\(e.evalset)  (\(formatDuration(e.seconds)); judged by \(e.judge ?? "?"))"]
            + TextTable.render(header: ["usable / dimension / task type", "n", "share [95% interval]", "mean"], rows: rows)
        if let g = e.groups.first(where: { $0.dimension == "usable" && $0.taskType.isEmpty }) {
            lines.append("usability rate \(share(g)) of \(g.n) replies")
        }
        if let b = e.baseline { lines.append(String(format: "starting model %.3f → change %+.3f", b, total - b)) }
        lines.append("A judge's scores are only as good as the judge: compare them with people's (harrow labels).")
        return lines.joined(separator: "\n")
    }
}
