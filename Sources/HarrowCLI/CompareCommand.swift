import HarrowCore
import ArgumentParser
import Foundation
import Tracking

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare runs: differing parameters, losses, verdicts, 3H scores with deltas, and the eval items that flipped.",
        discussion: """
            The first run is the reference: deltas and flips are against it. Each \
            delta of a 3H dimension and of the general score carries its 95% interval \
            from McNemar's exact test on the items both runs answered (Agresti-Min \
            interval), the weighted total and forgetting (through each run's own \
            starting model) a paired bootstrap; each is marked significant (p < 0.05) \
            or within noise (with roughly how many items would tell a difference that \
            large 80% of the time). --json carries the numbers under "evidence", per task \
            type too.

            Examples:
              harrow compare production k3x9a2pq
              harrow compare a1 b2 c3 --json
            """)

    @Argument(help: "Two or more run ids, tags or prefixes.") var runIDs: [String]
    @Option(help: "Show at most this many flipped items per group.") var limit = 10
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if runIDs.count < 2 { throw ValidationError("give at least two runs") }
    }

    func run() throws {
        let store = try storeOptions.open()
        var runs: [Run] = []
        for id in runIDs {
            let r = try store.requireRun(id)
            runs.append(r)
        }
        let snapshots = try store.snapshots(runs, evalItems: Set(runs.map(\.rowID)))
        let params = runs.map(\.params)
        let differing = RunSnapshot.differingParams(snapshots)
        let inputs = snapshots.map(GateInputs.input)
        let metrics = ValueNames.all + ValueNames.judged(in: inputs.flatMap(\.values.keys))
        let reference = snapshots[0].evalItems ?? []
        var flips: [String: [EvalFlip]] = [:]
        for s in snapshots.dropFirst() { flips[s.id] = EvalFlip.between(reference, s.evalItems ?? []) }
        let outcomes = try runs.map { try store.outcomes(of: $0) }
        let evidence = outcomes.map { PairedEvidence.between(outcomes[0], $0) }
        if json {
            print(
                jsonText(
                    CompareJSON(
                        runs: runs.map(\.id),
                        differingParams: Dictionary(uniqueKeysWithValues: differing.map { k in (k, params.map { $0[k] ?? .null }) }),
                        metrics: Dictionary(uniqueKeysWithValues: metrics.map { m in (m, inputs.map { $0.values[m]?.value }) }),
                        verdicts: inputs.map(\.verdict),
                        evidence: Dictionary(
                            uniqueKeysWithValues: zip(runs, evidence).dropFirst().map { ($0.id, EvidenceJSON($1, against: runs[0].id)) }),
                        flips: flips.mapValues {
                            $0.map {
                                CompareJSON.Flip(
                                    evalset: $0.evalset, item: $0.item, dimension: $0.dimension, taskType: $0.taskType,
                                    prompt: $0.prompt, change: $0.change)
                            }
                        })))
            return
        }
        var lines: [String] = []
        let header = [""] + runs.map(\.id)
        var rows = differing.map { k in [k] + params.map { $0[k]?.plain ?? "–" } }
        rows.append(["verdict"] + inputs.map { $0.verdict ?? "–" })
        for m in metrics where inputs.contains(where: { $0.values[m] != nil }) {
            let base = inputs[0].values[m]?.value
            rows.append(
                [m]
                    + inputs.enumerated().map { i, input in
                        guard let v = input.values[m]?.value else { return "–" }
                        guard i > 0, let base else { return String(format: "%.3f", v) }
                        guard let t = evidence[i].byName[m] else { return String(format: "%.3f (%+.3f)", v, v - base) }
                        // Within noise, say roughly how many items would tell a difference this large (80% power).
                        let tell = t.itemsFor80Power.map { $0 > t.n ? " (~\($0) items would tell)" : "" } ?? ""
                        return String(format: "%.3f ", v) + EvidenceText.delta(t)
                            + (t.significant ? " significant" : " within noise" + tell)
                    })
        }
        lines += TextTable.render(header: header, rows: rows)
        for r in runs.dropFirst() {
            let list = flips[r.id] ?? []
            lines.append("")
            lines.append(
                "\(runs[0].id) → \(r.id): \(list.filter { $0.before }.count) items pass→fail, \(list.filter { !$0.before }.count) fail→pass"
            )
            for (group, items) in Dictionary(grouping: list, by: { "\($0.dimension) / \($0.taskType)" }).sorted(by: { $0.key < $1.key }) {
                lines.append("  \(group)")
                for f in items.prefix(limit) {
                    let prompt = (f.prompt ?? "").replacingOccurrences(of: "\n", with: " ").prefix(80)
                    lines.append("    \(f.change)  \(f.item)  \(prompt)")
                }
                if items.count > limit { lines.append("    … \(items.count - limit) more") }
            }
        }
        print(lines.joined(separator: "\n"))
    }
}
