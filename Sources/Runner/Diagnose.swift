import HarrowCore
import Diagnosis
import Foundation
import Tracking

/// Reads a run's curves from the store, diagnoses them, and stores the verdict.
public func diagnose(run: Run, store: Store, thresholds overrides: [String: Double] = [:]) throws -> Diagnosis {
    func curve(_ key: String) throws -> Curve? {
        let c = try store.curve(run: run.rowID, key: key)
        return c.steps.isEmpty ? nil : Curve(steps: c.steps, values: c.values)
    }
    var byTask: [String: Curve] = [:], records: [String: Int] = [:]
    for key in try store.metricKeys(run: run.rowID) {
        if let task = TrainerContract.Metric.task(ofValLoss: key), let c = try curve(key) { byTask[task] = c }
        if let task = TrainerContract.Metric.task(ofValRecords: key), let n = try curve(key)?.values.last { records[task] = Int(n) }
    }
    let d = diagnose(train: try curve(TrainerContract.Metric.trainLoss) ?? Curve(steps: [], values: []), val: try curve(TrainerContract.Metric.valLoss), lr: try curve("lr"),
                     schedule: Schedule(totalSteps: run.totalSteps, stepsPerEpoch: run.stepsPerEpoch, warmupSteps: run.warmupSteps),
                     thresholds: overrides, valByTask: byTask, valRecords: records)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let evidence = String(decoding: try encoder.encode(d.evidence), as: UTF8.self)
    try store.save(StoredDiagnosis(verdict: d.verdict.rawValue, confidence: d.confidence, bestStep: d.bestStep,
                                   evidenceJSON: evidence, advice: d.advice), run: run.rowID)
    return d
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
    return diagnose(train: curve(TrainerContract.Metric.trainLoss) ?? Curve(steps: [], values: []), val: curve(TrainerContract.Metric.valLoss), lr: curve("lr"),
                    schedule: Schedule(totalSteps: b.totalSteps, stepsPerEpoch: b.stepsPerEpoch, warmupSteps: b.warmupSteps),
                    thresholds: overrides, valByTask: byTask, valRecords: records)
}

func diagnose(train: Curve, val: Curve?, lr: Curve?, schedule: Schedule, thresholds overrides: [String: Double],
              valByTask: [String: Curve], valRecords: [String: Int] = [:]) -> Diagnosis {
    var thresholds = Thresholds()
    for (name, value) in overrides { _ = thresholds.set(name, value) }
    return Diagnoser.diagnose(train: train, val: val, lr: lr, schedule: schedule, thresholds: thresholds, valByTask: valByTask,
                              valRecords: valRecords)
}
