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
        its verdict, best val loss, 3H total, forgetting on general data and the \
        diagnosis's advice: one line per story of the sweep.

        Below the table, each difference carries its evidence. The baseline is \
        compared with the model it started from, every other run with the \
        baseline, on the same items: McNemar's exact test per 3H dimension and on \
        the general set, and a paired bootstrap (95% interval) of the difference \
        in forgetting. A difference marked * is beyond noise (p < 0.05); the \
        others may be noise and are not stories.

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
        let evidence = outcomes.indices.map { i -> PairedEvidence in
            let o = outcomes[i]
            if i == reading.baseline {
                return .start(main: o.main, mainStart: o.mainStart, general: o.general, generalStart: o.generalStart)
            }
            return .compare(mainA: base.main, mainB: o.main, generalA: base.general, generalB: o.general,
                            generalStartA: base.generalStart, generalStartB: o.generalStart)
        }
        if json {
            let rows = try order.map { i -> [String: Any] in
                var row = try RunSummary.json(runs[i], store: store)
                row["baseline"] = i == reading.baseline
                row["changes"] = reading.changes[i].map { ["name": $0.name, "from": $0.from, "to": $0.to] }
                row["evidence"] = Self.json(evidence[i], against: i == reading.baseline ? "start" : "baseline")
                return row
            }
            print(jsonText(rows))
            return
        }
        let header = ["change", "run", "verdict", TrainerContract.Metric.valLoss, "total", "forgetting", "advice"]
        let snapshots = try store.snapshots(runs)
        let rows = order.map { i -> [String] in
            let run = runs[i], values = snapshots[i].values
            let change = i == reading.baseline ? "baseline"
                : reading.changes[i].isEmpty ? "same as baseline"
                : reading.changes[i].map { "\($0.name) \($0.from) → \($0.to)" }.joined(separator: ", ")
            let diagnosis = snapshots[i].diagnosis
            let verdict = run.status.isFinished ? diagnosis?.verdict ?? "-" : run.status.rawValue
            return [change, run.id, verdict, formatNumber(values["val_loss_best"]?.value), formatNumber(values["total"]?.value),
                    formatSigned(values["forgetting"]?.value), diagnosis?.advice ?? ""]
        }
        print(TextTable.render(header: header, rows: rows).joined(separator: "\n"))
        print()
        print("Evidence (paired tests on the same items; * beyond noise, p < \(Paired.alpha)):")
        for (i, row) in zip(order, rows) {
            let label = i == reading.baseline ? "baseline (\(runs[i].id)) against its starting model" : "\(row[0]) (\(runs[i].id))"
            let line = Self.line(evidence[i])
            print("  \(label): \(line.isEmpty ? "no item-level results to compare" : line)")
        }
    }

    /// "helpful 0.261 → 0.466 (+0.205, p < 0.001) *; …; forgetting −0.066 [−0.093, −0.040] (p < 0.001) *".
    static func line(_ e: PairedEvidence) -> String {
        var parts: [String] = []
        for name in ValueNames.dimensions + ["general"] {
            guard let t = e.dimensions[name] else { continue }
            parts.append(String(format: "%@ %.3f → %.3f (%@, %@)", name, t.accA, t.accB, formatSigned(t.delta), Paired.formatP(t.p))
                         + (t.p < Paired.alpha ? " *" : ""))
        }
        if let f = e.forgetting {
            parts.append("forgetting \(formatSigned(f.delta)) [\(formatSigned(f.low)), \(formatSigned(f.high))] (\(Paired.formatP(f.p)))"
                         + (f.p < Paired.alpha ? " *" : ""))
        }
        return parts.joined(separator: "; ")
    }

    static func json(_ e: PairedEvidence, against: String) -> [String: Any] {
        var dimensions: [String: Any] = [:]
        for (name, t) in e.dimensions {
            dimensions[name] = ["n": t.n, "from": t.accA, "to": t.accB, "delta": t.delta, "only_from": t.onlyA, "only_to": t.onlyB, "p": t.p,
                                "test": "mcnemar_exact"]
        }
        var out: [String: Any] = ["against": against, "dimensions": dimensions]
        if let f = e.forgetting {
            out["forgetting"] = ["n": f.n, "delta": f.delta, "low": f.low, "high": f.high, "level": f.level, "p": f.p,
                                 "resamples": f.resamples, "test": "paired_bootstrap"]
        }
        return out
    }
}

/// A parameter value as text, equal values giving equal text (numbers as JSON gives them, lists as JSON).
func formatSigned(_ v: Double?) -> String {
    guard let v else { return "-" }
    return (v >= 0 ? "+" : "") + String(format: "%.3f", v)
}
