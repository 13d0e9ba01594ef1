import Foundation
import GRDB
import HarrowCore

/// A run read from another trainer's logs, with its curves mapped onto Harrow's canonical keys.
public struct ImportedRun: Sendable {
    public var source: String
    public var directory: String
    /// Parameters as the trainer's files state them, typed (`lora_r` 8 an int, `learning_rate` a float).
    public var params: [String: ParamValue]
    public var batch = MetricsBatch()
    public var notes: [String] = []
    /// When the run started and ended (seconds since 1970) and how its script exited, where the logs say.
    public var startedAt: Double?
    public var endedAt: Double?
    public var exitCode: Int?
}

/// A JSON number as a Double; booleans are not numbers here. Python's non-finite numbers arrive as the
/// strings `PythonJSON` made of them.
func numeric(_ value: Any) -> Double? {
    if type(of: value) == Bool.self { return nil }
    if let s = value as? String { return PythonJSON.nonFinite[s] }
    return (value as? NSNumber)?.doubleValue ?? (value as? Double) ?? (value as? Int).map(Double.init)
}

/// JSON as Python's json module writes it: `NaN`, `Infinity` and `-Infinity` may stand as numbers (Hugging Face
/// writes a `grad_norm` of NaN on an fp16 overflow step). Foundation refuses them; here they become strings
/// that `numeric` reads back as non-finite values, which are then counted, not stored.
enum PythonJSON {
    static let nonFinite: [String: Double] = ["NaN": .nan, "Infinity": .infinity, "-Infinity": -.infinity]

    static func object(_ data: Data) -> Any? {
        (try? JSONSerialization.jsonObject(with: data)) ?? (try? JSONSerialization.jsonObject(with: quotingNonFinite(data)))
    }

    /// Puts quotes around the bare tokens, leaving strings alone.
    static func quotingNonFinite(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var i = 0, inString = false
        let tokens = nonFinite.keys.sorted { $0.count > $1.count }.map { Array($0.utf8) }
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if b == UInt8(ascii: "\\"), i + 1 < bytes.count { out.append(bytes[i + 1]); i += 2; continue }
                if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if b == UInt8(ascii: "\"") { inString = true; out.append(b); i += 1; continue }
            if let token = tokens.first(where: { i + $0.count <= bytes.count && Array(bytes[i..<i + $0.count]) == $0 }) {
                out.append(UInt8(ascii: "\""))
                out += token
                out.append(UInt8(ascii: "\""))
                i += token.count
                continue
            }
            out.append(b)
            i += 1
        }
        return Data(out)
    }
}

public struct ImportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// Hugging Face Trainer's `trainer_state.json` (`log_history`; transformers 4.x and 5.x, sorted keys).
public enum HuggingFaceImporter {
    public static func read(_ path: String) throws(ImportError) -> ImportedRun {
        let file = try locate(path)
        guard let data = FileManager.default.contents(atPath: file) else { throw ImportError("\(file) is not a JSON object") }
        var run = try parse(data, file: file)
        readAdapterConfig(in: run.directory, into: &run)
        return run
    }

    /// The curves of a `trainer_state.json` from its bytes; `file` names it in messages and gives the run's folder.
    /// Reads nothing from disk (`read` adds the adapter settings beside it).
    public static func parse(_ data: Data, file: String) throws(ImportError) -> ImportedRun {
        guard let state = PythonJSON.object(data) as? [String: Any] else {
            throw ImportError("\(file) is not a JSON object")
        }
        guard let history = state["log_history"] as? [[String: Any]] else {
            throw ImportError("\(file) has no log_history: is it a Hugging Face trainer_state.json?")
        }
        var run = ImportedRun(source: "hf", directory: (file as NSString).deletingLastPathComponent, params: [:])
        for key in ["num_train_epochs", "train_batch_size", "max_steps", "logging_steps", "eval_steps", "save_steps"] {
            if let v = state[key], !(v is NSNull) { run.params[key] = ParamValue(jsonObject: v) }
        }
        if let trial = state["trial_params"] as? [String: Any] { for (k, v) in trial { run.params[k] = ParamValue(jsonObject: v) } }
        run.batch.totalSteps = state["max_steps"] as? Int
        run.batch.bestStep = state["best_global_step"] as? Int
        run.batch.bestCheckpoint = state["best_model_checkpoint"] as? String
        for entry in history {
            guard let step = (entry["step"] as? NSNumber)?.intValue else { run.batch.malformed += 1; continue }
            // The final summary (train_loss, train_runtime, …) is not a point on a curve.
            if entry["train_runtime"] != nil || entry["train_loss"] != nil { continue }
            for (key, value) in entry where key != "step" {
                guard let d = numeric(value), let name = canonical(key) else { continue }
                if d.isFinite { run.batch.add(name, step: Int32(clamping: step), value: d) } else { run.batch.nonfinite += 1 }
            }
        }
        run.batch.inferStepsPerEpoch()
        return run
    }

    /// The points a running Hugging Face trainer has saved since the last read: the `log_history` of its newest
    /// `checkpoint-N/trainer_state.json` past the last step read. At the end (`final`) the run folder's own
    /// `trainer_state.json` (Trainer.save_state) when there is one, else the newest checkpoint. A state file being
    /// written does not parse yet and is read on a later call.
    public static func newPoints(in dir: String, state: inout LogTailState, final: Bool) -> MetricsBatch? {
        let fm = FileManager.default
        let checkpoints = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).compactMap { name -> Int? in
            name.hasPrefix("checkpoint-") ? Int(name.dropFirst(11)) : nil
        }.filter { fm.fileExists(atPath: "\(dir)/checkpoint-\($0)/trainer_state.json") }
        let file: String
        if final, fm.fileExists(atPath: dir + "/trainer_state.json") {
            file = dir + "/trainer_state.json"
        } else if let newest = checkpoints.max(), final || newest > state.lastCheckpoint {
            file = "\(dir)/checkpoint-\(newest)/trainer_state.json"
            state.lastCheckpoint = newest
        } else {
            return nil
        }
        guard let data = fm.contents(atPath: file), let read = try? parse(data, file: file) else { return nil }
        var batch = MetricsBatch()
        batch.totalSteps = read.batch.totalSteps
        batch.bestStep = read.batch.bestStep
        var last = state.lastStep
        for (key, series) in read.batch.series {
            for (step, value) in zip(series.steps, series.values) where Int(step) > state.lastStep {
                batch.add(key, step: step, value: value)
                last = max(last, Int(step))
            }
        }
        if final { batch.nonfinite = read.batch.nonfinite }  // counted once, not on every re-read of the history
        state.lastStep = last
        batch.inferStepsPerEpoch()
        return batch
    }

    /// `loss` → `train/loss`, `eval_loss` → `val/loss`, `eval_<set>_loss` → `val/<set>/loss`, `eval_x` → `val/x`,
    /// `learning_rate` → `lr`; timing noise is dropped.
    static func canonical(_ key: String) -> String? {
        switch key {
        case "loss": return TrainerContract.Metric.trainLoss
        case "eval_loss": return TrainerContract.Metric.valLoss
        case "learning_rate": return "lr"
        case "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_model_preparation_time", "total_flos":
            return nil
        default:
            if key.hasPrefix("eval_") {
                let rest = String(key.dropFirst(5))
                if rest.hasSuffix("_loss") { return "val/" + rest.dropLast(5) + "/loss" }
                return "val/" + rest
            }
            return key
        }
    }

    /// The state file: DIR/trainer_state.json, or the newest DIR/checkpoint-N/trainer_state.json.
    static func locate(_ path: String) throws(ImportError) -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ImportError("no such file or folder: \(path)") }
        if !isDir.boolValue { return path }
        if fm.fileExists(atPath: path + "/trainer_state.json") { return path + "/trainer_state.json" }
        let checkpoints = ((try? fm.contentsOfDirectory(atPath: path)) ?? [])
            .compactMap { name -> (Int, String)? in
                guard name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst(11)) else { return nil }
                return (n, path + "/" + name + "/trainer_state.json")
            }
            .filter { fm.fileExists(atPath: $0.1) }
            .sorted { $0.0 > $1.0 }
        guard let newest = checkpoints.first else { throw ImportError("no trainer_state.json in \(path) or its checkpoint-N folders") }
        return newest.1
    }
}

/// LLaMA-Factory's `trainer_log.jsonl` (written by `LogCallback.on_log` in `src/llamafactory/train/callbacks.py`,
/// hiyouga/LLaMA-Factory at ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30): `current_steps`, `loss`, `eval_loss`, `lr` (before Nov 2024
/// `learning_rate`, and `null` for absent values before May 2024), `epoch`, `throughput`; the "v1" trainer
/// writes `step` and HF-style keys into the same file name.
public enum LlamaFactoryImporter {
    public static func read(_ path: String) throws(ImportError) -> ImportedRun {
        try readLog(path, named: "trainer_log.jsonl", parse: parse)
    }

    /// The curves of a `trainer_log.jsonl` from its bytes; `file` gives the run's folder. Reads nothing from disk.
    public static func parse(_ data: Data, file: String) -> ImportedRun {
        var run = ImportedRun(source: "llamafactory", directory: (file as NSString).deletingLastPathComponent, params: [:])
        var state = LogTailState()
        lines(data, into: &run.batch, state: &state)
        return run
    }

    /// Adds the points of some complete lines, as a live tail reads them: `state` carries what earlier lines said.
    public static func lines(_ data: Data, into batch: inout MetricsBatch, state: inout LogTailState) {
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let entry = PythonJSON.object(Data(line.utf8)) as? [String: Any] else {
                batch.malformed += 1
                if batch.malformedExamples.count < 3 { batch.malformedExamples.append("line \(n + 1): \(line.prefix(120))") }
                continue
            }
            guard let step = ((entry["current_steps"] ?? entry["step"]) as? NSNumber)?.intValue else { batch.malformed += 1; continue }
            let total = (entry["total_steps"] as? NSNumber)?.intValue
            let values = entry.compactMap { key, value -> (String, Double)? in
                guard let d = numeric(value), let name = canonical(key) else { return nil }
                return (name, d)
            }
            // Progress lines (an evaluation's batches) carry no point and their own total.
            if values.isEmpty { continue }
            // An evaluation run after training into the same folder counts its own steps from 0 (LogCallback.on_log
            // writes state.global_step, which an eval-only run never advances): its loss is the final model's, not a
            // point early in training. A resumed training run also goes back, but it logs train loss and keeps
            // the training's total.
            if step < state.lastStep, entry["loss"] == nil, step == 0 || (total != nil && total != state.totalSteps) {
                for (name, d) in values where name == TrainerContract.Metric.valLoss || name == "predict/loss" {
                    if d.isFinite {
                        batch.add(name + "_final", step: Int32(clamping: state.lastStep), value: d)
                    } else {
                        batch.nonfinite += 1
                    }
                }
                continue
            }
            state.lastStep = max(state.lastStep, step)
            if let total { state.totalSteps = total; batch.totalSteps = total }
            for (name, d) in values {
                if d.isFinite { batch.add(name, step: Int32(clamping: step), value: d) } else { batch.nonfinite += 1 }
            }
        }
        batch.inferStepsPerEpoch()
    }

    static func canonical(_ key: String) -> String? {
        switch key {
        case "current_steps", "step", "total_steps", "percentage", "elapsed_time", "remaining_time", "total_tokens",
            "vram_allocated", "vram_reserved":
            return nil
        case "loss": return TrainerContract.Metric.trainLoss
        case "eval_loss": return TrainerContract.Metric.valLoss
        case "predict_loss": return "predict/loss"
        case "lr", "learning_rate": return "lr"
        case "throughput": return "tokens_per_s"
        default: return key
        }
    }
}

/// ms-swift's `logging.jsonl` (written by `ProgressCallbackNew.on_log` / `PrinterCallbackNew.on_log` in
/// `swift/trainers/callback.py`, modelscope/ms-swift at 018a5488429212aefb166122ec2ab49888a1d724): each line is the
/// Hugging Face Trainer's log dict (`loss`, `eval_loss`, `learning_rate`, `epoch`, …) plus
/// `"global_step/max_steps": "N/M"`; ms-swift 1.x wrote `"global_step": N`, each line twice (both callbacks
/// append). The run's last line is a summary with the whole `log_history`, which is not a point.
public enum MsSwiftImporter {
    public static let fileName = "logging.jsonl"

    public static func read(_ path: String) throws(ImportError) -> ImportedRun {
        try readLog(path, named: fileName, parse: parse)
    }

    /// The curves of a `logging.jsonl` from its bytes; `file` gives the run's folder. Reads nothing from disk.
    public static func parse(_ data: Data, file: String) -> ImportedRun {
        var run = ImportedRun(source: "ms-swift", directory: (file as NSString).deletingLastPathComponent, params: [:])
        lines(data, into: &run.batch)
        return run
    }

    /// Adds the points of some complete lines, as a live tail reads them.
    public static func lines(_ data: Data, into batch: inout MetricsBatch) {
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let entry = PythonJSON.object(Data(line.utf8)) as? [String: Any] else {
                batch.malformed += 1
                if batch.malformedExamples.count < 3 { batch.malformedExamples.append("line \(n + 1): \(line.prefix(120))") }
                continue
            }
            // The end-of-run summaries (train_runtime, and the state with its log_history) are not points.
            if entry["log_history"] != nil || entry["train_runtime"] != nil || entry["train_loss"] != nil { continue }
            let progress = (entry["global_step/max_steps"] as? String)?.split(separator: "/").compactMap { Int($0) }
            guard let step = progress?.first ?? ((entry["global_step"] ?? entry["step"]) as? NSNumber)?.intValue else {
                batch.malformed += 1
                continue
            }
            if let total = progress?.dropFirst().first { batch.totalSteps = total }
            for (key, value) in entry where !["global_step/max_steps", "global_step", "step"].contains(key) {
                guard let d = numeric(value), let name = HuggingFaceImporter.canonical(key) else { continue }
                if d.isFinite { batch.add(name, step: Int32(clamping: step), value: d) } else { batch.nonfinite += 1 }
            }
        }
        batch.inferStepsPerEpoch()
    }
}

/// Any JSON-lines log, one object per line, with its names mapped onto Harrow's (`keys: {loss: train/loss,
/// global_step: step}`); a name not mapped keeps its own. The step is the key mapped to `step` (or `step`).
public enum JSONLinesImporter {
    public static func lines(_ data: Data, keys: [String: String], into batch: inout MetricsBatch) {
        let stepKey = keys.first { $0.value == "step" }?.key ?? "step"
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            guard let entry = PythonJSON.object(Data(line.utf8)) as? [String: Any], let step = (entry[stepKey] as? NSNumber)?.intValue,
                step >= 0
            else {
                batch.malformed += 1
                if batch.malformedExamples.count < 3 { batch.malformedExamples.append(String(line.prefix(120))) }
                continue
            }
            for (key, value) in entry where key != stepKey {
                guard let d = numeric(value) else { continue }
                if d.isFinite { batch.add(keys[key] ?? key, step: Int32(clamping: step), value: d) } else { batch.nonfinite += 1 }
            }
        }
        batch.inferStepsPerEpoch()
    }
}

/// What a live tail of a trainer's own log remembers between reads.
public struct LogTailState: Sendable {
    /// The highest training step read so far (LLaMA-Factory: a later line counting from 0 is another phase; Hugging
    /// Face: points up to it are stored already).
    public var lastStep = 0
    public var totalSteps: Int?
    /// The newest `checkpoint-N` whose `trainer_state.json` was read.
    public var lastCheckpoint = -1

    public init(lastStep: Int = 0) { self.lastStep = lastStep }
}

/// A JSON-lines log named `name` in a folder (or the file itself), parsed, with the LoRA settings beside it.
func readLog(_ path: String, named name: String, parse: (Data, String) -> ImportedRun) throws(ImportError) -> ImportedRun {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw ImportError("no such file or folder: \(path)") }
    let file = isDir.boolValue ? path + "/" + name : path
    guard let data = FileManager.default.contents(atPath: file) else { throw ImportError("no \(name) in \(path)") }
    var run = parse(data, file)
    HuggingFaceImporter.readAdapterConfig(in: run.directory, into: &run)
    return run
}

extension HuggingFaceImporter {
    /// LoRA settings from a PEFT `adapter_config.json` next to the logs, named as Harrow's parameters.
    static func readAdapterConfig(in dir: String, into run: inout ImportedRun) {
        guard let data = FileManager.default.contents(atPath: dir + "/adapter_config.json"),
            let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { return }
        for (name, key) in [("lora_r", "r"), ("lora_alpha", "lora_alpha"), ("lora_dropout", "lora_dropout")] {
            if let v = config[key], !(v is NSNull) { run.params[name] = ParamValue(jsonObject: v) }
        }
        if let t = config["target_modules"] as? [String] { run.params["lora_targets"] = .list(t.sorted().map(ParamValue.string)) }
        if let b = config["base_model_name_or_path"] as? String { run.params["base_model"] = .string(b) }
    }
}

extension Store {
    /// Stores an imported run (status succeeded, no sweep). Importing the same folder again replaces it.
    @discardableResult
    public func save(_ imported: ImportedRun) throws(StoreError) -> Run {
        let directory = URL(fileURLWithPath: imported.directory).standardized.path
        let key = sha256Hex(Data("\(imported.source):\(directory)".utf8))
        let params = ParamValue.objectJSON(imported.params)
        let rowID: Int64 = try write { db in
            let id = try Self.freshID(for: key, db: db)
            try db.execute(
                sql: """
                    INSERT INTO runs(id, trial_key, source, params, status, attempt, run_dir, started_at, ended_at, exit_code)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
                    ON CONFLICT(trial_key) DO UPDATE SET params = excluded.params, status = excluded.status, run_dir = excluded.run_dir,
                        started_at = excluded.started_at, ended_at = excluded.ended_at, exit_code = excluded.exit_code
                    """,
                arguments: [
                    id, key, imported.source, params, (imported.exitCode ?? 0) == 0 ? "succeeded" : "failed", directory,
                    imported.startedAt, imported.endedAt ?? Date().seconds, imported.exitCode
                ])
            let row = try Run.filter { $0.trialKey == key }.select({ $0.rowID }, as: Int64.self).fetchOne(db)!
            try clearMetrics(run: row, db: db)
            return row
        }
        try ingest([MetricsUpdate(run: rowID, offset: 0, batch: imported.batch)])
        return try read { db in
            try Run.fetchOne(db, sql: "SELECT \(Run.selection) FROM \(Run.from) WHERE r.rowid = ?", arguments: [rowID])!
        }
    }
}

/// A run's curves read straight from its files, without a store: Hugging Face's `trainer_state.json`,
/// LLaMA-Factory's `trainer_log.jsonl`, ms-swift's `logging.jsonl`, or Harrow's `metrics.jsonl`, or a folder
/// holding one of them.
public enum CurveFiles {
    public static func read(_ path: String) throws(ImportError) -> ImportedRun {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ImportError("no such file or folder: \(path)") }
        let name = (path as NSString).lastPathComponent
        if isDir.boolValue {
            if fm.fileExists(atPath: path + "/trainer_log.jsonl") { return try LlamaFactoryImporter.read(path) }
            if fm.fileExists(atPath: path + "/" + MsSwiftImporter.fileName) { return try MsSwiftImporter.read(path) }
            let lines = path + "/" + TrainerContract.RunFile.metrics
            if fm.fileExists(atPath: lines) { return try metrics(lines) }
            return try HuggingFaceImporter.read(path)
        }
        let head = firstLine(path)
        if name == "trainer_log.jsonl" || head.contains("\"current_steps\"") { return try LlamaFactoryImporter.read(path) }
        if name == MsSwiftImporter.fileName || head.contains("\"global_step/max_steps\"") { return try MsSwiftImporter.read(path) }
        if name.hasSuffix(".jsonl") { return try metrics(path) }
        return try HuggingFaceImporter.read(path)
    }

    /// The first line of a file (up to 4 KiB): a JSON-lines log says whose it is by its keys, whatever it is named
    /// (LLaMA-Factory counts `current_steps`, ms-swift `global_step/max_steps`).
    static func firstLine(_ path: String) -> Substring {
        guard let handle = FileHandle(forReadingAtPath: path), let head = try? handle.read(upToCount: 4096) else { return "" }
        try? handle.close()
        return String(decoding: head, as: UTF8.self).split(separator: "\n").first ?? ""
    }

    static func metrics(_ path: String) throws(ImportError) -> ImportedRun {
        guard var data = FileManager.default.contents(atPath: path) else { throw ImportError("cannot read \(path)") }
        if data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        return ImportedRun(
            source: "harrow", directory: (path as NSString).deletingLastPathComponent, params: [:], batch: MetricsLines.parse(data))
    }
}
