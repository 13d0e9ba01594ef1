import HarrowCore
import Diagnosis
import Foundation
import Sweep
import Tracking

/// Reads a run's curves from the store and diagnoses them, with the checkpoints its folder holds. Writes nothing:
/// `harrow diagnose` is a read; `diagnose(run:store:thresholds:)` stores.
public func reading(of run: Run, store: Store, thresholds overrides: [String: Double] = [:]) throws -> Diagnosis {
    func curve(_ key: String) throws -> Curve? {
        let c = try store.curve(run: run.rowID, key: key)
        return c.steps.isEmpty ? nil : Curve(steps: c.steps, values: c.values)
    }
    var byTask: [String: Curve] = [:], records: [String: Int] = [:]
    for key in try store.metricKeys(run: run.rowID) {
        if let task = TrainerContract.Metric.task(ofValLoss: key), let c = try curve(key) { byTask[task] = c }
        if let task = TrainerContract.Metric.task(ofValRecords: key), let n = try curve(key)?.values.last { records[task] = Int(n) }
    }
    return diagnose(
        train: try curve(TrainerContract.Metric.trainLoss) ?? Curve(steps: [], values: []), val: try curve(TrainerContract.Metric.valLoss),
        lr: try curve("lr"),
        schedule: Schedule(totalSteps: run.totalSteps, stepsPerEpoch: run.stepsPerEpoch, warmupSteps: run.warmupSteps),
        thresholds: overrides, valByTask: byTask, valRecords: records, checkpoints: checkpoints(of: run))
}

/// Diagnoses a run and stores the verdict: what a sweep does when a run ends, and `harrow diagnose --save`.
@discardableResult
public func diagnose(run: Run, store: Store, thresholds overrides: [String: Double] = [:]) throws -> Diagnosis {
    let d = try reading(of: run, store: store, thresholds: overrides)
    try store.save(stored(d), run: run.rowID)
    return d
}

/// A diagnosis as the store keeps it.
public func stored(_ d: Diagnosis) -> StoredDiagnosis {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let evidence = (try? encoder.encode(d.evidence)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    return StoredDiagnosis(
        verdict: d.verdict.rawValue, confidence: d.confidence, bestStep: d.bestStep, evidenceJSON: evidence, advice: d.advice)
}

/// The `diagnosis:` thresholds of the experiment the run's sweep was last registered with (the store keeps its
/// text), so a reading made later agrees with the one the sweep stored. Empty for imported runs, or when the
/// text no longer parses.
public func experimentThresholds(of run: Run, store: Store) -> [String: Double] {
    guard let sweep = run.sweepName, let spec = try? store.sweepSpec(sweep),
        let experiment = try? Experiment.parse(yaml: spec, file: sweep)
    else { return [:] }
    return experiment.diagnosis
}

/// The checkpoints a run's folder holds: the ones its trainer's `done` event names, and Hugging Face's
/// `checkpoint-N`. When the folder is not on this machine (a cluster's scratch, a moved store), what the trainer
/// said it wrote; nil when nothing is known.
public func checkpoints(of run: Run) -> Checkpoints? {
    if let dir = run.runDir, FileManager.default.fileExists(atPath: dir) {
        return checkpoints(in: dir, best: run.bestCheckpoint, bestStep: run.bestStep, final: run.checkpoint)
    }
    guard run.bestCheckpoint != nil || run.checkpoint != nil else { return nil }
    return Checkpoints(best: run.bestCheckpoint.map(folderName), bestStep: run.bestStep, final: run.checkpoint.map(folderName))
}

/// The checkpoints in a folder. Names the trainer gave count only inside the folder (`../..` or an absolute path
/// elsewhere is not the run's), and the advice shows their last component.
public func checkpoints(in dir: String, best: String?, bestStep: Int?, final: String?) -> Checkpoints {
    let fm = FileManager.default
    let folder = URL(fileURLWithPath: dir).standardized.path + "/"
    func existing(_ names: [String?]) -> String? {
        for name in names.compactMap({ $0 }) {
            let path = URL(fileURLWithPath: name.hasPrefix("/") ? name : dir + "/" + name).standardized.path
            if path.hasPrefix(folder), fm.fileExists(atPath: path) { return folderName(path) }
        }
        return nil
    }
    var byStep: [Int: String] = [:]
    for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix("checkpoint-") {
        if let step = Int(name.dropFirst("checkpoint-".count)), step >= 0 { byStep[step] = name }
    }
    let bestName = existing([best, "checkpoint-best"])
    // A Hugging Face best checkpoint is one of its `checkpoint-N`: it holds step N whatever `best_step` says.
    let heldStep = bestName.flatMap { name in byStep.first { $0.value == name }?.key } ?? bestStep
    return Checkpoints(best: bestName, bestStep: heldStep, final: existing([final, "checkpoint"]), byStep: byStep)
}

func folderName(_ path: String) -> String {
    URL(fileURLWithPath: path).lastPathComponent
}

/// Diagnoses curves read from files (`harrow diagnose PATH`): nothing is stored.
public func diagnose(_ imported: ImportedRun, thresholds overrides: [String: Double] = [:]) -> Diagnosis {
    func curve(_ key: String) -> Curve? {
        guard let s = imported.batch.series[key], !s.steps.isEmpty else { return nil }
        return Curve(steps: s.steps.map(Int.init), values: s.values)
    }
    let b = imported.batch
    var byTask: [String: Curve] = [:], records: [String: Int] = [:]
    for key in b.series.keys {
        if let task = TrainerContract.Metric.task(ofValLoss: key), let c = curve(key) { byTask[task] = c }
        if let task = TrainerContract.Metric.task(ofValRecords: key), let n = curve(key)?.values.last { records[task] = Int(n) }
    }
    return diagnose(
        train: curve(TrainerContract.Metric.trainLoss) ?? Curve(steps: [], values: []), val: curve(TrainerContract.Metric.valLoss),
        lr: curve("lr"),
        schedule: Schedule(totalSteps: b.totalSteps, stepsPerEpoch: b.stepsPerEpoch, warmupSteps: b.warmupSteps),
        thresholds: overrides, valByTask: byTask, valRecords: records, checkpoints: checkpoints(besides: imported))
}

/// The checkpoints beside curves read from files: in their folder (a Hugging Face `checkpoint-N`'s, its output
/// folder). Nil when it holds none: the curves were copied away from their run, and nothing is known.
func checkpoints(besides imported: ImportedRun) -> Checkpoints? {
    var dir = imported.directory.isEmpty ? "." : imported.directory
    let name = folderName(dir)
    if name.hasPrefix("checkpoint-"), Int(name.dropFirst("checkpoint-".count)) != nil { dir = (dir as NSString).deletingLastPathComponent }
    let b = imported.batch
    let c = checkpoints(
        in: dir.isEmpty ? "." : dir, best: b.bestCheckpoint.map(folderName), bestStep: b.bestStep, final: b.checkpoint.map(folderName))
    return c.best == nil && c.final == nil && c.byStep.isEmpty ? nil : c
}

func diagnose(
    train: Curve, val: Curve?, lr: Curve?, schedule: Schedule, thresholds overrides: [String: Double],
    valByTask: [String: Curve], valRecords: [String: Int] = [:], checkpoints: Checkpoints? = nil
) -> Diagnosis {
    var thresholds = Thresholds()
    for (name, value) in overrides { _ = thresholds.set(name, value) }
    return Diagnoser.diagnose(
        train: train, val: val, lr: lr, schedule: schedule, thresholds: thresholds, valByTask: valByTask,
        valRecords: valRecords, checkpoints: checkpoints)
}
