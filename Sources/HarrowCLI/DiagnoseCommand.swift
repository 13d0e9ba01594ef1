import ArgumentParser
import Diagnosis
import Foundation
import Runner
import Tracking

struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Read runs' loss curves: over- or under-fitting, unstable, diverged, stalled — with evidence and advice.",
        discussion: """
            Verdicts: good_fit; overfitting (val rose beyond its noise while train fell, \
            or sat on a plateau while train pulled away: keep the best checkpoint, fewer \
            epochs); under_trained (val still falling at the end: more epochs; or it \
            barely moved: raise the learning rate 3-10x); unstable (rose, spiked or \
            stayed flat and noisy: lower the learning rate 10x); diverged (NaN, or far \
            above its start); stalled_start (flat over the start, then fell: raise \
            warmup or lr, or shorten a warmup longer than about 1% per epoch); \
            insufficient_data. A run with few points is read from val with at \
            most 0.7 confidence. Per task type (val/loss@TASK), the advice says which \
            task type turned first.

            The best step is the evaluated step with the lowest val loss as logged \
            (the earliest of equals): the step `runs`, `gate`, `ablation` and reports \
            show. The advice names the checkpoint that holds it (checkpoint-best), or \
            says to save that step next time when none does. Where the smoothed val \
            curve bottoms out is evidence (smoothedMinStep), not a step to keep.

            Diagnosing a run is a read: it is diagnosed with the thresholds its \
            experiment set under `diagnosis:`, plus any --threshold, and printed; the \
            store is not changed. A sweep stores each run's diagnosis when the run \
            ends; --save stores this reading in its place (what `runs`, `gate`, \
            `ablation` and reports show). When the stored diagnosis differs from the \
            reading, a note says so.

            Thresholds (defaults; an experiment overrides them under `diagnosis:`):
              overfit_rise_percent 1     val ends this % above its minimum (and beyond
                                         its noise): over-fitting
              noise_multiple 2           a rise or fall counts beyond this many standard
                                         errors of the smoothed val curve
              still_falling 0.01         val fell this fraction over the tail: still
                                         learning
              still_falling_per_epoch 0.02  ... or this fraction per epoch, however
                                         much it slowed
              settling 0.3               a tail fall below this share of the stretch
                                         before it is settling, not learning
              minimum_fall 0.02          a fall below this fraction of the start is none
              minimum_decrease 0.03      train's last quarter less than this below its
                                         first: no decrease (unstable or never started)
              minimum_progress 0.10      val that fell less than this barely moved
              tail_fraction 0.25         the tail of training examined
              unstable_noise 0.13        relative train noise that, with val jumping
                                         too, is unstable
              unstable_rise 0.2          train ending this fraction above its start rose
              diverged_rise 2            final / start loss above which it diverged
              spikes 3                   loss spikes (1.5x the five before) after the
                                         first tenth that make it unstable
              stalled_change 0.02        fall over the start (warmup included) below
                                         which it stalled
              start_fraction 0.15        the start of training examined
              plateau_fraction 0.4       val within 1% of its minimum for this share of
                                         the run while train fell on: memorising
              minimum_points 8           fewer train points are sparse

            A path instead of a run reads the curves straight from a trainer's files, \
            with no store: a Hugging Face output folder or trainer_state.json, a \
            LLaMA-Factory trainer_log.jsonl, an ms-swift logging.jsonl, or a Harrow \
            metrics.jsonl.

            Examples:
              harrow diagnose --sweep overnight
              harrow diagnose k3x9a2pq --json
              harrow diagnose k3x9a2pq --threshold overfit_rise_percent=5
              harrow diagnose --sweep overnight --save
              harrow diagnose outputs/qwen-lora/checkpoint-500
            """)

    @Argument(help: "Run id (or a unique prefix), or a trainer's log file or output folder.") var runID: String?
    @Option(help: "Diagnose every run of this sweep.") var sweep: String?
    @Option(help: ArgumentHelp("Override a threshold, e.g. overfit_rise_percent=5 (repeatable).", valueName: "name=value"))
    var threshold: [String] = []
    @Flag(help: "Store the reading in place of the run's stored diagnosis (without it, nothing is written).") var save = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if (runID == nil) == (sweep == nil) { throw ValidationError("give a run id or --sweep NAME") }
    }

    func run() throws {
        var overrides: [String: Double] = [:]
        for t in threshold {
            let parts = t.split(separator: "=", maxSplits: 1).map(String.init)
            var probe = Thresholds()
            guard parts.count == 2, let v = Double(parts[1]), probe.set(parts[0], v) else {
                throw ValidationError("--threshold takes name=value with a name from: \(Thresholds.names.joined(separator: ", "))")
            }
            overrides[parts[0]] = v
        }
        if let runID, runID.contains("/") || FileManager.default.fileExists(atPath: runID) {
            if save {
                throw ValidationError("--save stores a run's diagnosis in the store; curves read from files have no run to store it with")
            }
            return try diagnoseFiles(at: runID, overrides: overrides)
        }
        // A read opens the store read-only: only --save writes.
        let store = try save ? storeOptions.openForWriting() : storeOptions.open()
        let runs: [Run]
        if let runID {
            let r = try store.requireRun(runID)
            runs = [r]
        } else {
            let all = try store.runs(sweep: sweep)
            if all.isEmpty { printError("harrow: no runs in sweep '\(sweep!)'"); throw ExitStatus.configuration }
            // Runs that never started have no curves to read.
            runs = all.filter { !($0.status == .queued && $0.startedAt == nil) }
            if runs.count < all.count, !json {
                printError(
                    "harrow: \(all.count - runs.count) runs of \(sweep!) never started and are not diagnosed: run the sweep again to continue"
                )
            }
        }
        var experiments: [String: [String: Double]] = [:]
        var differing: [(run: String, stored: StoredDiagnosis?)] = []
        let results = try runs.map { run -> (String, Diagnosis) in
            // The experiment's own thresholds first, so a plain reading agrees with what the sweep stored.
            let sweepKey = run.sweepName ?? ""
            if experiments[sweepKey] == nil { experiments[sweepKey] = experimentThresholds(of: run, store: store) }
            let d = try reading(of: run, store: store, thresholds: experiments[sweepKey]!.merging(overrides) { $1 })
            if save {
                try store.save(stored(d), run: run.rowID)
            } else {
                let old = try store.diagnosis(run: run.rowID)
                if old.map({ $0.verdict != d.verdict.rawValue || $0.bestStep != d.bestStep || $0.advice != d.advice }) ?? true {
                    differing.append((run.id, old))
                }
            }
            return (run.id, d)
        }
        show(results)
        guard !json else { return }
        if save {
            printError("harrow: stored the diagnosis of \(results.count == 1 ? results[0].0 : "\(results.count) runs")")
        } else if !differing.isEmpty {
            let what = overrides.isEmpty ? "" : " with these thresholds"
            let which: String
            if differing.count > 1 {
                which = "\(differing.count) runs' stored diagnoses differ or are missing"
            } else if let old = differing[0].stored {
                which = "\(differing[0].run)'s stored diagnosis says \(old.verdict)" + (old.bestStep.map { ", best step \($0)" } ?? "")
            } else {
                which = "\(differing[0].run) has no stored diagnosis"
            }
            printError("harrow: \(which); the reading above\(what) is not stored: add --save to store it")
        }
    }

    func diagnoseFiles(at path: String, overrides: [String: Double]) throws {
        let imported: ImportedRun
        do { imported = try CurveFiles.read(path) } catch {
            printError("harrow: \(error)")
            throw ExitStatus.configuration
        }
        if imported.batch.nonfinite > 0 || imported.batch.malformed > 0, !json {
            printError(
                "harrow: \(path): \(imported.batch.nonfinite) non-finite values and \(imported.batch.malformed) unreadable entries skipped")
        }
        show([(path, diagnose(imported, thresholds: overrides))])
    }

    func show(_ results: [(String, Diagnosis)]) {
        if json {
            print(
                jsonText(
                    results.map { run, d in
                        DiagnosisJSON(
                            run: run, verdict: d.verdict.rawValue, confidence: d.confidence, bestStep: d.bestStep, advice: d.advice,
                            evidence: d.evidence)
                    }, snakeCase: true))
            return
        }
        let header = ["run", "verdict", "conf", "best step", "val min", "val rise", "tail share", "noise"]
        let rows = results.map { run, d -> [String] in
            let e = d.evidence
            return [
                run, d.verdict.rawValue, String(format: "%.2f", d.confidence), d.bestStep.map(String.init) ?? "-",
                formatNumber(e.valMin), e.valRisePercent.map { String(format: "%+.1f%%", $0) } ?? "-",
                e.tailShare.map { String(format: "%.0f%%", $0 * 100) } ?? "-", e.noise.map { String(format: "%.3f", $0) } ?? "-"
            ]
        }
        print(TextTable.render(header: header, rows: rows, notes: results.map(\.1.advice)).joined(separator: "\n"))
    }
}
