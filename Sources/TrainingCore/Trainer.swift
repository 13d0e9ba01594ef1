import HarrowCore
import Foundation

/// Appends one JSON object per line to the metrics file of docs/DESIGN.md's trainer contract.
public final class MetricsWriter {
    private let handle: FileHandle

    public init(url: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !fm.fileExists(atPath: url.path) { fm.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else { throw TrainingError.file("cannot write \(url.path)") }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle.close() }

    /// Keys stay in the given order; values are Int, Double, String or nil (null).
    public func write(_ fields: KeyValuePairs<String, Any?>) {
        write(fields.map { ($0.key, $0.value) })
    }

    /// Fields in the order given (the key order of the line).
    public func write(_ fields: [(key: String, value: Any?)]) {
        let body = fields.map { key, value -> String in
            let text: String
            switch value {
            case let i as Int: text = String(i)
            case let d as Double: text = d.isFinite ? String(d) : "null"
            case let s as String: text = SafeTensors.jsonString(s)
            default: text = "null"
            }
            return "\(SafeTensors.jsonString(key)): \(text)"
        }
        handle.write(Data(("{" + body.joined(separator: ", ") + "}\n").utf8))
    }
}

public struct TrainResult: Sendable {
    public var steps: Int
    public var trainLosses: [Double]
    public var valLosses: [(step: Int, loss: Double)]
    public var bestStep: Int?
}

/// The training loop: data → batches → forward, backward, clip, AdamW → metrics, evaluation and checkpoints.
public final class Trainer {
    public let mode: TrainingMode
    public let options: TrainOptions
    public let runDir: URL
    public let metricsURL: URL
    /// Where `base_model: base|chat` and relative data paths resolve.
    public let workingDirectory: URL
    /// Also write merged weights (checkpoint/merged) next to a LoRA adapter.
    public var merge = false
    /// Progress lines (one per evaluation) for stdout.log.
    public var log: (String) -> Void = { print($0) }

    public init(
        mode: TrainingMode, options: TrainOptions, runDir: URL, metricsURL: URL? = nil,
        workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) {
        self.mode = mode
        self.options = options
        self.runDir = runDir
        self.metricsURL = metricsURL ?? runDir.appendingPathComponent(TrainerContract.RunFile.metrics)
        self.workingDirectory = workingDirectory
    }

    func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : workingDirectory.appendingPathComponent(path)
    }

    public var baseModelURL: URL? {
        options.base_model.map { name in resolve(TrainerContract.modelPath(name)) }
    }

    // MARK: setup

    struct Prepared {
        var model: LlamaModel<Float>
        var params: [Parameter<Float>]
        var train: [Example]
        var validation: [Example]
    }

    func prepare() throws -> Prepared {
        let o = options
        let root = SeededGenerator(seed: o.seed)
        var initRNG = root.fork(3), splitRNG = root.fork(4), mixRNG = root.fork(5)

        // The model.
        let config: LlamaConfig, weights: LlamaWeights<Float>
        if mode == .pretrain {
            config = o.model
            weights = LlamaWeights(config)
            weights.initialise(std: 0.02, rng: &initRNG)
        } else {
            guard let url = baseModelURL else { throw TrainingError.config(["base_model is required for sft"]) }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
                let hint = o.base_model.map(TrainerContract.isShippedModel) == true ? " (build it with `make models`)" : ""
                throw TrainingError.file("base model folder \(url.path) does not exist\(hint)")
            }
            (config, weights) = try Checkpoint.loadModel(url)
        }
        if o.max_seq_len > config.max_position_embeddings {
            throw TrainingError.config([
                "max_seq_len (\(o.max_seq_len)) exceeds the model's max_position_embeddings (\(config.max_position_embeddings))"
            ])
        }
        let lora = o.full_finetune ? nil : LoRA<Float>(config: o.loraConfig, model: config, rng: &initRNG)
        let model = LlamaModel(config: config, weights: weights, lora: lora, trainBase: o.full_finetune)
        model.dropoutRNG = root.fork(2)

        // The data: domain records split into train / validation, then general records mixed into train only.
        guard let datasetPath = o.dataset else { throw TrainingError.config(["dataset is required"]) }
        func examples(_ path: String) throws -> [Example] {
            let url = resolve(path)
            if mode == .pretrain { return DataLoader.pretrainingExamples(try DataLoader.loadDocuments(url), maxSeqLen: o.max_seq_len) }
            return try DataLoader.loadSFTRecords(url).map { record in
                var example = DataLoader.sftExample(record.messages, maxSeqLen: o.max_seq_len)
                example.taskType = record.taskType
                return example
            }
        }
        var train = try examples(datasetPath), validation: [Example] = []
        if let n = o.max_samples { train = Array(train.prefix(n)) }
        if let v = o.val_dataset {
            validation = try examples(v)
        } else if o.validation_fraction > 0 {
            (train, validation) = DataMixing.split(train, validationFraction: o.validation_fraction, rng: &splitRNG)
        }
        if let g = o.general_dataset, o.mix_ratio > 0 {
            let general = try examples(g)
            train += DataMixing.draw(general, count: DataMixing.generalCount(domain: train.count, mixRatio: o.mix_ratio), rng: &mixRNG)
        }
        // Records cut so short that no response token is left teach nothing.
        train.removeAll { $0.targetCount == 0 }
        validation.removeAll { $0.targetCount == 0 }
        guard !train.isEmpty else { throw TrainingError.file("\(datasetPath): no training examples with response tokens") }

        var params: [Parameter<Float>] = []
        if let lora {
            for (l, row) in lora.adapters.enumerated() {
                for p in Projection.allCases {
                    guard let a = row[p.rawValue] else { continue }
                    let names = Checkpoint.adapterTensorNames(layer: l, p)
                    params.append(Parameter(name: names.a, value: a.A, grad: a.dA, decay: true))
                    params.append(Parameter(name: names.b, value: a.B, grad: a.dB, decay: true))
                }
            }
        } else if let grads = model.grads {
            for (w, g) in zip(weights.named, grads.named) {
                params.append(Parameter(name: w.name, value: w.tensor, grad: g.tensor, decay: w.tensor.shape.count > 1))
            }
        }
        return Prepared(model: model, params: params, train: train, validation: validation)
    }

    // MARK: the loop

    public func run() throws -> TrainResult {
        let o = options
        let p = try prepare()
        let model = p.model, params = p.params
        let metrics = try MetricsWriter(url: metricsURL)

        let microBatchesPerEpoch = (p.train.count + o.batch_size - 1) / o.batch_size
        let stepsPerEpoch = (microBatchesPerEpoch + o.grad_accum - 1) / o.grad_accum
        var totalSteps = Int((o.epochs * Double(stepsPerEpoch)).rounded(.up))
        if let cap = o.max_steps { totalSteps = min(totalSteps, cap) }
        let warmupSteps = Int((o.warmup_ratio * Double(totalSteps)).rounded(.up))
        let evalEvery = o.eval_steps ?? max(1, totalSteps / 10)
        let schedule = LRSchedule(peak: o.lr, warmupSteps: warmupSteps, totalSteps: totalSteps, kind: o.schedule, minRatio: o.min_lr_ratio)
        let optimizer = AdamW(params, beta1: o.adam_beta1, beta2: o.adam_beta2, eps: o.adam_epsilon, weightDecay: o.weight_decay)
        let ws = model.makeWorkspace(batch: o.batch_size, seqLen: o.max_seq_len)

        metrics.write(["event": "start", "total_steps": totalSteps, "steps_per_epoch": stepsPerEpoch, "warmup_steps": warmupSteps])
        // How many validation records each task type has: a channel read from two records says little.
        let valTypes = Dictionary(grouping: p.validation.compactMap(\.taskType), by: { $0 }).mapValues(\.count)
        if valTypes.count > 1 {
            let counts: [(key: String, value: Any?)] = valTypes.sorted { $0.key < $1.key }.map {
                (TrainerContract.Metric.valRecords(task: $0.key), $0.value)
            }
            metrics.write([(key: "step", value: 0)] + counts)
        }
        log(
            "\(mode.rawValue): \(p.train.count) training and \(p.validation.count) validation sequences, \(totalSteps) steps, "
                + "\(params.reduce(0) { $0 + $1.value.count }) trainable parameters")

        var orderRNG = SeededGenerator(seed: o.seed).fork(1)
        var order: [Int] = []
        var cursor = 0
        var result = TrainResult(steps: 0, trainLosses: [], valLosses: [], bestStep: nil)
        var best: (loss: Double, step: Int, values: [Tensor<Float>])? = nil

        for step in 1...totalSteps {
            let started = DispatchTime.now().uptimeNanoseconds
            // The micro-batches of this step never cross an epoch boundary.
            if cursor >= order.count { order = orderRNG.shuffled(Array(0..<p.train.count)); cursor = 0 }
            let stepEnd = min(order.count, cursor + o.batch_size * o.grad_accum)
            let indices = order[cursor..<stepEnd]
            cursor = stepEnd
            let targetCount = indices.reduce(0) { $0 + p.train[$1].targetCount }
            var lossSum = 0.0, tokens = 0
            Gradients.zero(params)
            var start = indices.startIndex
            while start < indices.endIndex {
                let end = min(indices.endIndex, start + o.batch_size)
                let batch = indices[start..<end]
                start = end
                let (b, t) = Batching.load(p.train, batch, into: ws)
                model.forward(ws, batch: b, seqLen: t, training: true)
                lossSum += model.loss(ws, batch: b, seqLen: t, gradScale: 1 / Float(targetCount)).sum
                model.backward(ws, batch: b, seqLen: t)
                tokens += batch.reduce(0) { $0 + p.train[$1].tokens.count }
            }
            let loss = lossSum / Double(targetCount)
            guard loss.isFinite else { throw TrainingError.diverged(step: step, detail: "train loss is \(loss)") }
            let gradNorm = Gradients.clip(params, maxNorm: o.max_grad_norm)
            guard gradNorm.isFinite else { throw TrainingError.diverged(step: step, detail: "gradient norm is \(gradNorm)") }
            let lr = schedule.lr(at: step - 1)
            optimizer.step(params, lr: lr)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            result.steps = step
            result.trainLosses.append(loss)
            metrics.write([
                "step": step, "epoch": Double(step) / Double(stepsPerEpoch), TrainerContract.Metric.trainLoss: loss, "lr": lr,
                "grad_norm": gradNorm, "tokens_per_s": Double(tokens) / max(seconds, 1e-9)
            ])

            if !p.validation.isEmpty && (step % evalEvery == 0 || step == totalSteps) {
                let (val, byTask) = evaluateByTask(model, p.validation, ws: ws)
                guard val.isFinite else { throw TrainingError.diverged(step: step, detail: "validation loss is \(val)") }
                metrics.write(
                    [("step", step), (TrainerContract.Metric.valLoss, val)]
                        + byTask.sorted { $0.key < $1.key }.map { (TrainerContract.Metric.valLoss(task: $0.key), $0.value) })
                result.valLosses.append((step, val))
                log("step \(step)/\(totalSteps)  train/loss \(format(loss))  val/loss \(format(val))")
                if val < best?.loss ?? .infinity {
                    // Keep the best weights in memory; they reach disk only when the run ends well.
                    let values = best?.values ?? params.map { Tensor($0.value.shape) }
                    for (dst, src) in zip(values, params) { dst.copy(from: src.value) }
                    best = (val, step, values)
                }
            }
        }

        try saveCheckpoint(model, name: "checkpoint")
        if let best {
            for (src, dst) in zip(best.values, params) { dst.value.copy(from: src) }
            try saveCheckpoint(model, name: "checkpoint-best")
            result.bestStep = best.step
        }
        metrics.write([
            "event": "done", "checkpoint": "checkpoint", "best_checkpoint": best == nil ? nil : "checkpoint-best",
            "best_step": best?.step
        ])
        return result
    }

    /// Mean loss per target token over the examples and over each task type's examples (when more than one task
    /// type is present). One batched pass in file order; each example's loss sum is grouped afterwards, so a task
    /// type costs nothing extra and the overall mean pools every token.
    public func evaluateByTask(_ model: LlamaModel<Float>, _ examples: [Example], ws: Workspace<Float>) -> (
        all: Double, byTask: [String: Double]
    ) {
        var sum = 0.0, count = 0
        var byTask: [String: (sum: Double, count: Int)] = [:]
        for (example, loss) in zip(examples, exampleLosses(model, examples, ws: ws)) {
            sum += loss.sum; count += loss.count
            if let task = example.taskType {
                byTask[task, default: (0, 0)].sum += loss.sum; byTask[task, default: (0, 0)].count += loss.count
            }
        }
        let types = Set(examples.map(\.taskType))
        return (sum / Double(max(count, 1)), types.count > 1 ? byTask.mapValues { $0.sum / Double(max($0.count, 1)) } : [:])
    }

    /// Mean loss per target token over the examples, without dropout.
    public func evaluate(_ model: LlamaModel<Float>, _ examples: [Example], ws: Workspace<Float>) -> Double {
        let losses = exampleLosses(model, examples, ws: ws)
        return losses.reduce(0) { $0 + $1.sum } / Double(max(losses.reduce(0) { $0 + $1.count }, 1))
    }

    /// Each example's loss sum and target count, in batches of the workspace's size.
    func exampleLosses(_ model: LlamaModel<Float>, _ examples: [Example], ws: Workspace<Float>) -> [(sum: Double, count: Int)] {
        var out: [(sum: Double, count: Int)] = []
        var start = 0
        while start < examples.count {
            let end = min(examples.count, start + ws.batch)
            let (b, t) = Batching.load(examples, start..<end, into: ws)
            model.forward(ws, batch: b, seqLen: t, training: false)
            out += model.exampleLosses(ws, batch: b, seqLen: t)
            start = end
        }
        return out
    }

    /// A full model folder, or for LoRA a PEFT adapter folder (plus merged weights in `merged/` with `merge`).
    func saveCheckpoint(_ model: LlamaModel<Float>, name: String) throws {
        try Checkpoint.replaceDirectory(runDir.appendingPathComponent(name)) { dir in
            guard let lora = model.lora else {
                try Checkpoint.saveModel(model.weights, config: model.config, to: dir)
                return
            }
            try Checkpoint.saveAdapter(lora, baseModel: baseModelURL?.path, to: dir)
            if merge {
                let merged = LlamaWeights<Float>(model.config)
                merged.copy(from: model.weights)
                lora.merge(into: merged)
                try Checkpoint.saveModel(merged, config: model.config, to: dir.appendingPathComponent("merged"))
            }
        }
    }

    private func format(_ x: Double) -> String { String(format: "%.4f", x) }
}
