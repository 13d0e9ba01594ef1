import HarrowCore
import ArgumentParser
import Foundation
import TrainingCore

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the score protocol (JSON lines on stdin/stdout): continuation log-likelihoods and greedy generation.")

    @Option(help: "Model folder (config.json + model.safetensors); base or chat mean models/base or models/chat.")
    var model: String
    @Option(help: "PEFT adapter folder to apply on top of the model.") var adapter: String?
    @Option(help: "Request lines read before answering (the choices of an item share one pass over their prompt).") var batchSize = 64

    func run() throws {
        BLAS.applyEnvironmentThreads()
        let path = TrainerContract.modelPath(model)
        do {
            let scorer = try Scorer(
                modelDir: URL(fileURLWithPath: path), adapterDir: adapter.map { URL(fileURLWithPath: $0) },
                maxBatch: max(1, batchSize))
            scorer.serve()
        } catch {
            throw fail(error)
        }
    }
}
