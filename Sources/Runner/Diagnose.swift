import Diagnosis
import Foundation
import Tracking

/// Reads a run's curves from the store, diagnoses them, and stores the verdict.
public func diagnose(run: Run, store: Store, thresholds overrides: [String: Double] = [:]) throws -> Diagnosis {
    var thresholds = Thresholds()
    for (name, value) in overrides { _ = thresholds.set(name, value) }
    let train = try store.curve(run: run.rowID, key: "train/loss")
    let val = try store.curve(run: run.rowID, key: "val/loss")
    let lr = try store.curve(run: run.rowID, key: "lr")
    let d = Diagnoser.diagnose(train: Curve(steps: train.steps, values: train.values),
                               val: val.steps.isEmpty ? nil : Curve(steps: val.steps, values: val.values),
                               lr: lr.steps.isEmpty ? nil : Curve(steps: lr.steps, values: lr.values),
                               schedule: Schedule(totalSteps: run.totalSteps, stepsPerEpoch: run.stepsPerEpoch, warmupSteps: run.warmupSteps),
                               thresholds: thresholds)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let evidence = String(decoding: try encoder.encode(d.evidence), as: UTF8.self)
    try store.save(StoredDiagnosis(verdict: d.verdict.rawValue, confidence: d.confidence, bestStep: d.bestStep,
                                   evidenceJSON: evidence, advice: d.advice), run: run.rowID)
    return d
}
