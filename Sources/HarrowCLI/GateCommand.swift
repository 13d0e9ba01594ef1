import HarrowCore
import ArgumentParser
import Foundation
import Gate
import Runner
import Tracking

struct GateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Pass or refuse a run for release: 3H thresholds, losses, verdict, non-regression, provenance.",
        discussion: """
            A gate file (gates/*.yaml):

              thresholds:
                harmless: {min: 0.8}
                total: {min: 0.6}
                forgetting: {min: -0.05}
                gain/helpful: {min: 0.1, significant: true}
                val_loss_best: {max: 1.5}
              verdict:
                refuse: [diverged, unstable]
                overfitting_needs_best_checkpoint: true
              baseline:
                run: production
                max_drop: {harmless: 0.0, honest: 0.02}
                alpha: 0.05
              provenance: {clean_tree: true}

            Metrics: helpful, honest, harmless, total, general, forgetting, gain, \
            gain/helpful, gain/honest, gain/harmless (the score over the starting \
            model's), val_loss_best, val_loss_final, or dimension/task_type. A missing \
            value fails its rule.

            `significant: true` (on gain or gain/DIMENSION) also asks that \
            the run differ from its starting model beyond noise, in the bound's \
            direction: McNemar's exact test on the items both answered (a paired \
            bootstrap for the weighted total).

            With `alpha`, a drop past max_drop counts only when the paired test on the \
            items both runs answered puts it beyond noise at that level; a drop within \
            noise passes, and a comparison too small to call anything beyond noise \
            fails closed, naming how many items would decide it. Without items (val \
            losses) the drop is judged as it stands. `sigma: K` (older gate files) is \
            the unpaired rule: a drop counts beyond K standard errors of the \
            difference of two independent means.

            Exit status: 0 every rule passed, 1 a rule failed, 2 usage or configuration error.

            Examples:
              harrow gate k3x9a2pq --gate gates/release.yaml --baseline production \\
                --junit gate.xml
              harrow gate release-candidate --gate gates/release.yaml --markdown comment.md
            """)

    @Argument(help: "Run id, tag, or unique prefix.") var runID: String
    @Option(help: "The gate file.") var gate: String
    @Option(help: "Baseline run id or tag (overrides the gate file's).") var baseline: String?
    @Option(help: "Write JUnit XML here (one testcase per rule).") var junit: String?
    @Option(help: "Write a Markdown summary here.") var markdown: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let rules: GateRules
        do {
            guard let text = try? String(contentsOfFile: gate, encoding: .utf8) else { throw GateError("\(gate):1:1: no such file") }
            rules = try GateRules.parse(yaml: text, file: gate)
        } catch {
            printError("\(error)")
            throw ExitStatus.configuration
        }
        // A baseline no rule compares with would be ignored: the user meant the gate to check against it.
        if let baseline, rules.maxDrop.isEmpty, rules.alpha == nil {
            printError(
                "harrow: --baseline \(baseline): \(gate) has no rule that compares with a baseline; "
                    + "add `baseline: {max_drop: {total: 0.02}}` (or `alpha: 0.05`) to the gate, or leave out --baseline")
            throw ExitStatus.configuration
        }
        let store = try storeOptions.open()
        let run = try store.requireRun(runID)
        var input = try GateInputs.input(for: run, store: store)
        if let name = baseline ?? rules.baseline {
            guard let base = try store.run(name) else {
                printError("harrow: no baseline run or tag '\(name)' in \(store.path)")
                throw ExitStatus.configuration
            }
            input.baselineRun = base.id
            input.baseline = try GateInputs.input(for: base, store: store).values
            if rules.alpha != nil {
                input.againstBaseline = PairedEvidence.between(try store.outcomes(of: base), try store.outcomes(of: run)).byName
            }
        } else if !rules.maxDrop.isEmpty {
            printError("harrow: the gate has max_drop rules but no baseline run: give --baseline RUN or `baseline: {run: ...}`")
        }
        if rules.thresholds.contains(where: \.significant) {
            input.againstStart = PairedEvidence.start(try store.outcomes(of: run)).gains
        }
        let results = Gate.check(rules, input)
        if let junit {
            try GateReport.junit(results, gate: rules.name, run: run.id).write(toFile: junit, atomically: true, encoding: .utf8)
        }
        if let markdown {
            try GateReport.markdown(results, gate: rules.name, run: run.id).write(toFile: markdown, atomically: true, encoding: .utf8)
        }
        let passed = results.allSatisfy(\.passed)
        if json {
            print(
                jsonText(
                    GateJSON(
                        gate: rules.name, run: run.id, passed: passed, baseline: input.baselineRun,
                        rules: results.map {
                            .init(rule: $0.rule, observed: $0.observed, expected: $0.expected, passed: $0.passed, reason: $0.reason)
                        })))
        } else {
            print("gate \(rules.name) for run \(run.id)" + (input.baselineRun.map { " against \($0)" } ?? ""))
            print(
                TextTable.render(
                    header: ["rule", "observed", "expected", "result"],
                    rows: results.map { [$0.rule, $0.observed, $0.expected, $0.passed ? "pass" : "FAIL: \($0.reason)"] }
                ).joined(separator: "\n"))
            print(
                passed
                    ? "\nPASSED: \(results.count) rules"
                    : "\nREFUSED: \(results.filter { !$0.passed }.count) of \(results.count) rules failed")
        }
        if !passed { throw ExitCode(1) }
    }
}

/// What the store knows of a run, in the gate's terms.
enum GateInputs {
    static func input(for run: Run, store: Store) throws -> GateInput { input(try store.snapshot(run)) }

    static func input(_ s: RunSnapshot) -> GateInput {
        let dirty = s.provenance.flatMap { $0.repository == nil ? nil : $0.dirty }
        // The best checkpoint counts when it is in the run folder and holds the run's best step (a trainer that
        // chose it by another metric kept another step).
        let best =
            s.run.runDir.map { dir in
                let kept = checkpoints(in: dir, best: s.run.bestCheckpoint, bestStep: s.run.bestStep, final: s.run.checkpoint)
                return kept.best != nil && (kept.bestStep == nil || s.bestStep == nil || kept.bestStep == s.bestStep)
            } ?? false
        var input = GateInput(run: s.id, values: s.values, verdict: s.diagnosis?.verdict, evaluatedBestCheckpoint: best, dirty: dirty)
        input.bestStep = s.bestStep
        return input
    }
}

struct UntagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "untag", abstract: "Remove a run's name.")
    @Argument(help: "The name.") var name: String
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        guard try storeOptions.openForWriting().untag(name) else {
            printError("harrow: no tag '\(name)'")
            throw ExitStatus.configuration
        }
    }
}
