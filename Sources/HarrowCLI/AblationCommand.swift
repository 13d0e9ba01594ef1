import HarrowCore
import ArgumentParser
import Foundation
import Sweep
import Tracking

struct AblationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablation",
        abstract: "Read a sweep one change at a time: each run against the baseline.",
        discussion: """
            The baseline is the run that holds the most common value of every \
            parameter, as in a one-factor-at-a-time design (experiments/demo.yaml is \
            one). Every other run is shown as what it changes from the baseline, with \
            its verdict, best val loss and the step it was logged at (the run's best \
            step, as `diagnose` and `runs` name it), 3H total, forgetting on general data and the \
            diagnosis's advice: one line per story of the sweep.

            Below the table, each change says in words what it did beyond noise. The \
            baseline is compared with the model it started from, every other run with \
            the baseline, on the same items: McNemar's exact test per 3H dimension and \
            on the general set, a paired bootstrap of the weighted total and of the \
            difference in forgetting, each with its 95% interval. A difference beyond \
            noise (p < 0.05) is a story; one within noise is not. --json carries every \
            test, per task type too, under "evidence".

            Examples:
              harrow ablation --sweep demo
              harrow ablation --sweep demo --json | jq '.[] | {changes, verdict}'
            """)

    @Option(help: "The sweep to read.") var sweep: String
    @Flag(help: "Print JSON: the run summaries in reading order, each with its changes.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.open()
        let runs = try store.runs(sweep: sweep)
        guard let reading = Ablation.read(runs.map { $0.params.mapValues(\.plain) }) else {
            printError("harrow: no runs in sweep '\(sweep)'")
            throw ExitStatus.configuration
        }
        let order = reading.order
        let outcomes = try runs.map { try store.outcomes(of: $0) }
        let base = outcomes[reading.baseline]
        let evidence = outcomes.indices.map { i in i == reading.baseline ? PairedEvidence.start(base) : .between(base, outcomes[i]) }
        if json {
            let rows = try order.map { i in
                Merged(
                    base: try RunSummary(runs[i], store: store),
                    extra: AblationRowJSON(
                        baseline: i == reading.baseline, changes: reading.changes[i].map { .init(name: $0.name, from: $0.from, to: $0.to) },
                        evidence: EvidenceJSON(evidence[i], against: i == reading.baseline ? "start" : "baseline")))
            }
            print(jsonText(rows))
            return
        }
        let header = ["change", "run", "verdict", TrainerContract.Metric.valLoss, "best step", "total", "forgetting"]
        let snapshots = try store.snapshots(runs)
        let rows = order.map { i -> [String] in
            let run = runs[i], values = snapshots[i].values
            let change =
                i == reading.baseline
                ? "baseline"
                : reading.changes[i].isEmpty
                    ? "same as baseline"
                    : reading.changes[i].map { "\($0.name) \($0.from) → \($0.to)" }.joined(separator: ", ")
            let diagnosis = snapshots[i].diagnosis
            let verdict = run.status.isFinished ? diagnosis?.verdict ?? "-" : run.status.rawValue
            return [
                change, run.id, verdict, formatNumber(values["val_loss_best"]?.value), snapshots[i].bestStep.map(String.init) ?? "-",
                formatNumber(values["total"]?.value),
                formatSigned(values["forgetting"]?.value)
            ]
        }
        let advice = order.map { snapshots[$0].diagnosis?.advice ?? "" }
        print(TextTable.render(header: header, rows: rows, notes: advice).joined(separator: "\n"))
        print()
        print(
            "What each change did, beyond noise or within it (paired tests on the same items, 95% intervals, beyond noise at p < \(Paired.alpha)):"
        )
        for (i, row) in zip(order, rows) {
            let label = i == reading.baseline ? "baseline (\(runs[i].id)) against its starting model" : "\(row[0]) (\(runs[i].id))"
            let line = EvidenceText.sentence(evidence[i])
            print("  \(label): \(line.isEmpty ? "no item-level results to compare" : line)")
        }
    }
}

/// A parameter value as text, equal values giving equal text (numbers as JSON gives them, lists as JSON).
func formatSigned(_ v: Double?) -> String {
    guard let v else { return "-" }
    return (v >= 0 ? "+" : "") + String(format: "%.3f", v)
}
