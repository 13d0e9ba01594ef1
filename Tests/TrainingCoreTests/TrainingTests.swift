import HarrowCore
import Foundation
import Testing
@testable import TrainingCore

/// Data and a tiny base model built by really pretraining it, shared by the training tests.
enum Fixtures {
    static let root = temporaryDirectory()

    static func write(_ name: String, _ lines: [String]) -> URL {
        let url = root.appendingPathComponent(name)
        try! (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static let text: URL = {
        var rng = SeededGenerator(seed: 11)
        let words = "the cat sat on a mat and the dog ran to the big red house".split(separator: " ")
        return write(
            "text.txt",
            (0..<300).map { _ in (0..<10).map { _ in String(words[Int(rng.next() % UInt64(words.count))]) }.joined(separator: " ") + "." })
    }()

    static func alpaca(_ name: String, count: Int, seed: UInt64) -> URL {
        var rng = SeededGenerator(seed: seed)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return write(
            name,
            (0..<count).map { i in
                let code = String((0..<6).map { _ in letters[Int(rng.next() % 26)] })
                return #"{"instruction": "code for item \#(seed * 100 + UInt64(i))", "input": "", "output": "\#(code)"}"#
            })
    }

    static var pretrainParameters: [String: Any] {
        [
            "dataset": text.path, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "max_position_embeddings": 64, "max_seq_len": 48, "batch_size": 8, "epochs": 3, "lr": 3e-3, "eval_steps": 10, "seed": 3
        ]
    }

    /// (run folder, result) of pretraining the tiny base; its checkpoint/ is the base model of the SFT tests.
    static let base: (dir: URL, result: TrainResult) = {
        let dir = root.appendingPathComponent("base")
        let trainer = Trainer(mode: .pretrain, options: try! TrainOptions(mode: .pretrain, parameters: pretrainParameters), runDir: dir)
        trainer.log = { _ in }
        return (dir, try! trainer.run())
    }()

    static func sft(_ parameters: [String: Any], runDir: URL? = nil) throws -> (dir: URL, result: TrainResult) {
        var p: [String: Any] = [
            "base_model": base.dir.appendingPathComponent("checkpoint").path, "max_seq_len": 48, "batch_size": 8,
            "epochs": 2, "lr": 1e-2, "seed": 5
        ]
        p.merge(parameters) { $1 }
        let dir = runDir ?? temporaryDirectory()
        let trainer = Trainer(mode: .sft, options: try TrainOptions(mode: .sft, parameters: p), runDir: dir)
        trainer.log = { _ in }
        return (dir, try trainer.run())
    }

    static func metrics(_ dir: URL) -> [[String: Any]] {
        let text = (try? String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }
}

@Suite("Training runs", .serialized)
struct TrainingTests {
    @Test func pretrainingLossFalls() {
        let losses = Fixtures.base.result.trainLosses
        let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
        #expect(last < 0.6 * first, "first \(first), last \(last)")
        #expect(FileManager.default.fileExists(atPath: Fixtures.base.dir.appendingPathComponent("checkpoint/model.safetensors").path))
    }

    @Test func metricsFollowTheTrainerContract() throws {
        let lines = Fixtures.metrics(Fixtures.base.dir)
        let start = try #require(lines.first), done = try #require(lines.last)
        #expect(start["event"] as? String == "start" && start["total_steps"] as? Int == Fixtures.base.result.steps)
        #expect(start["steps_per_epoch"] is Int && start["warmup_steps"] is Int)
        let train = lines.filter { $0["train/loss"] != nil }
        #expect(train.count == Fixtures.base.result.steps)
        #expect(train.allSatisfy { ["step", "epoch", "lr", "grad_norm", "tokens_per_s"].allSatisfy($0.keys.contains) })
        #expect(lines.contains { $0["val/loss"] != nil && $0["step"] as? Int == 10 })
        #expect(done["event"] as? String == "done" && done["checkpoint"] as? String == "checkpoint")
        #expect(done["best_checkpoint"] as? String == "checkpoint-best" && done["best_step"] is Int)
    }

    /// Val loss per task type (`val/loss@TASK`) beside the overall val loss, which pools their tokens.
    @Test func valLossIsAlsoLoggedPerTaskType() throws {
        let train = Fixtures.alpaca("tasks-train.jsonl", count: 20, seed: 31)
        let val = Fixtures.write(
            "tasks-val.jsonl",
            (0..<8).map { i in
                #"{"instruction": "code for item \#(i)", "input": "", "output": "\#(i % 2 == 0 ? "abcdef" : "zyx wvu tsr")", "task_type": "\#(i % 2 == 0 ? "qa/dose" : "safety/refusal")"}"#
            })
        let run = try Fixtures.sft(["dataset": train.path, "val_dataset": val.path, "eval_steps": 2])
        let evals = Fixtures.metrics(run.dir).filter { $0["val/loss"] != nil }
        #expect(evals.count >= 2)
        for line in evals {
            let all = try #require(line["val/loss"] as? Double)
            let dose = try #require(line["val/loss@qa/dose"] as? Double), refusal = try #require(line["val/loss@safety/refusal"] as? Double)
            #expect(dose != refusal)
            #expect(all > min(dose, refusal) && all < max(dose, refusal), "\(line)")
        }
        // Records without a task type log the overall val loss only.
        let plain = Fixtures.metrics(Fixtures.base.dir).filter { $0["val/loss"] != nil }
        #expect(!plain.isEmpty && plain.allSatisfy { $0.keys.allSatisfy { !$0.hasPrefix("val/loss@") } })
    }

    @Test func sftWritesAdapterAndMergedWeights() throws {
        let data = Fixtures.alpaca("merge.jsonl", count: 20, seed: 1)
        let dir = temporaryDirectory()
        let val = Fixtures.alpaca("merge-val.jsonl", count: 8, seed: 5)
        let p: [String: Any] = ["dataset": data.path, "val_dataset": val.path, "lora_targets": ["q_proj", "v_proj", "down_proj"]]
        let trainer = Trainer(
            mode: .sft,
            options: try TrainOptions(
                mode: .sft,
                parameters: p.merging(
                    [
                        "base_model": Fixtures.base.dir.appendingPathComponent("checkpoint").path, "max_seq_len": 48, "epochs": 40,
                        "lr": 0.01, "warmup_ratio": 0, "lora_r": 16
                    ]) { $1 }), runDir: dir)
        trainer.log = { _ in }
        trainer.merge = true
        let result = try trainer.run()
        // 40 epochs on 20 records over-fit: the best checkpoint is an earlier step (36 of 120 here), so its merged
        // weights differ from the last ones and a merge of the wrong adapter shows.
        try #require(
            result.bestStep.map { $0 < result.steps } == true,
            "best step \(String(describing: result.bestStep)) of \(result.steps): \(result.valLosses)")
        var mergedWeights: [String: [[UInt32]]] = [:]
        for name in ["checkpoint", "checkpoint-best"] {
            let folder = dir.appendingPathComponent(name)
            let base = URL(fileURLWithPath: Fixtures.base.dir.appendingPathComponent("checkpoint").path)
            let unmerged = try Scorer(modelDir: base, adapterDir: folder)
            let merged = try Scorer(modelDir: folder.appendingPathComponent("merged"))
            let request = [#"{"id": 1, "prompt": "code for item 7", "continuation": "abc", "template": "chat"}"#]
            #expect(unmerged.answer(request) == merged.answer(request), "\(name)")
            // The merged weights themselves, tensor by tensor: the base plus this folder's own adapter.
            let (config, expected) = try Checkpoint.loadModel(base)
            try Checkpoint.loadAdapter(folder, model: config).merge(into: expected)
            let (_, written) = try Checkpoint.loadModel(folder.appendingPathComponent("merged"))
            #expect(written.named.map(\.name) == expected.named.map(\.name), "\(name)")
            for (a, b) in zip(expected.named, written.named) {
                #expect(a.tensor.array.map(\.bitPattern) == b.tensor.array.map(\.bitPattern), "\(name): \(a.name)")
            }
            mergedWeights[name] = written.named.map { $0.tensor.array.map(\.bitPattern) }
        }
        #expect(mergedWeights["checkpoint"] != mergedWeights["checkpoint-best"], "the best step's merged weights are the last step's")
    }

    /// ~30 records, ~40 epochs: the validation loss turns up while the training loss keeps falling.
    @Test func overfittingIsVisible() throws {
        let train = Fixtures.alpaca("train30.jsonl", count: 30, seed: 2), val = Fixtures.alpaca("val10.jsonl", count: 10, seed: 3)
        let run = try Fixtures.sft([
            "dataset": train.path, "val_dataset": val.path, "epochs": 40, "full_finetune": true,
            "lr": 1e-2, "eval_steps": 8, "warmup_ratio": 0
        ])
        let vals = run.result.valLosses
        let best = try #require(vals.min { $0.loss < $1.loss })
        let last = try #require(vals.last)
        #expect(
            best.step < last.step && last.loss > best.loss + 0.1, "val losses \(vals.map(\.loss)) train \(run.result.trainLosses.suffix(3))"
        )
        let losses = run.result.trainLosses
        let atBest = losses[(best.step - 4)..<best.step].reduce(0, +) / 4, atEnd = losses.suffix(4).reduce(0, +) / 4
        #expect(atEnd < atBest, "train loss near the val minimum \(atBest), at the end \(atEnd)")
        #expect(run.result.bestStep == best.step)
    }

    /// max_samples keeps the first N domain records before mixing, as LLaMA-Factory does.
    @Test func maxSamplesTrainsOnTheFirstRecordsOnly() throws {
        let data = Fixtures.alpaca("many.jsonl", count: 40, seed: 21), val = Fixtures.alpaca("many-val.jsonl", count: 8, seed: 22)
        func stepsPerEpoch(_ extra: [String: Any]) throws -> Int? {
            let run = try Fixtures.sft(["dataset": data.path, "val_dataset": val.path, "epochs": 1].merging(extra) { $1 })
            return Fixtures.metrics(run.dir).first?["steps_per_epoch"] as? Int
        }
        #expect(try stepsPerEpoch([:]) == 5)
        #expect(try stepsPerEpoch(["max_samples": 16]) == 2)
        #expect(try stepsPerEpoch(["max_samples": 1000]) == 5)
    }

    @Test func sameSeedSameLosses() throws {
        let data = Fixtures.alpaca("seed.jsonl", count: 24, seed: 4)
        let p: [String: Any] = ["dataset": data.path, "lora_dropout": 0.1, "grad_accum": 2, "batch_size": 4]
        let a = try Fixtures.sft(p), b = try Fixtures.sft(p), c = try Fixtures.sft(p.merging(["seed": 6]) { $1 })
        #expect(a.result.trainLosses == b.result.trainLosses)
        #expect(a.result.valLosses.map(\.loss) == b.result.valLosses.map(\.loss))
        #expect(a.result.trainLosses != c.result.trainLosses)
    }

    @Test func missingBaseModelIsAClearError() {
        // In an empty working directory, so a models/base made by `make models` in the checkout does not count.
        let empty = temporaryDirectory()
        #expect {
            let options = try TrainOptions(mode: .sft, parameters: ["dataset": "x.jsonl", "base_model": "base"])
            let trainer = Trainer(mode: .sft, options: options, runDir: empty.appendingPathComponent("run"), workingDirectory: empty)
            trainer.log = { _ in }
            return try trainer.run()
        } throws: { String(describing: $0).contains("models/base does not exist") }
    }

    @Test func nonFiniteLossStopsWithDiverged() throws {
        // A base model with one NaN weight: the first step's loss is NaN.
        let broken = temporaryDirectory()
        let (config, weights) = try Checkpoint.loadModel(Fixtures.base.dir.appendingPathComponent("checkpoint"))
        weights.layers[0][.q_proj].data[0] = .nan
        try Checkpoint.saveModel(weights, config: config, to: broken)
        let data = Fixtures.alpaca("nan.jsonl", count: 10, seed: 5)
        let dir = temporaryDirectory()
        #expect(throws: TrainingError.diverged(step: 1, detail: "train loss is nan")) {
            try Fixtures.sft(["dataset": data.path, "base_model": broken.path], runDir: dir)
        }
        #expect(Fixtures.metrics(dir).first?["event"] as? String == "start")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoint").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoint-best").path))
    }
}

@Suite("harrow-train score over pipes")
struct ScoreProcessTests {
    static let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "harrow-train")

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: executable.path)))
    func scoreProtocolEndToEnd() throws {
        let model = Fixtures.base.dir.appendingPathComponent("checkpoint")
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["score", "--model", model.path, "--batch-size", "2"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let requests = [
            #"{"id": 1, "prompt": "the cat", "max_tokens": 12, "template": "raw"}"#,
            #"{"id": 2, "prompt": "the dog", "continuation": " ran", "template": "raw"}"#,
            #"{"id": 3, "prompt": "hello", "template": "fancy", "continuation": "x"}"#,
            #"{"id": 4, "prompt": "the dog ", "continuation": "ran", "template": "raw"}"#
        ]
        input.fileHandleForWriting.write(Data((requests.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let answers = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(answers.map { $0["id"] as? Int } == [1, 2, 3, 4])
        let text = try #require(answers[0]["text"] as? String)
        #expect(!text.isEmpty)
        #expect(answers[2]["error"] is String)
        // raw joins prompt and continuation as given, so both splits of "the dog ran" score the same tokens.
        let a = try #require(answers[1]["logprob"] as? Double), b = try #require(answers[3]["logprob"] as? Double)
        #expect(answers[1]["n_tokens"] as? Int == 4 && answers[3]["n_tokens"] as? Int == 3)
        #expect(a < b && a < 0)

        // What greedy generation produced is, scored as a continuation, greedy.
        let scorer = try Scorer(modelDir: model)
        let check = scorer.answer([#"{"id": 5, "prompt": "the cat", "continuation": \#(SafeTensors.jsonString(text)), "template": "raw"}"#])
        #expect(check.first?.contains("\"is_greedy\": true") == true, "\(check)")
    }
}
