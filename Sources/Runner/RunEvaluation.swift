import HarrowCore
import Evaluation
import Foundation
import Tracking

/// Evaluates a finished run's checkpoint on evalsets and stores the results, with the starting checkpoint's
/// score on the same set (evaluated once per checkpoint content and cached) as the baseline.
public struct RunEvaluation: Sendable {
    public var workingDirectory: String
    /// Where `harrow-train` is, when it is not on PATH.
    public var toolDirectory: String?
    /// An explicit scorer argv (placeholders `{run_dir}`, `{checkpoint}`, `{base_model}`); nil = `harrow-train score`.
    public var scorer: [String]?
    /// Seconds a scorer may go without answering before it is stopped.
    public var timeout: Double
    /// A cluster executor: each scoring then runs as a batch job there (requests and answers as files in the run
    /// folder) instead of a scorer process on this machine.
    public var executor: (any Executor)?
    /// Added to the scorer's environment (a sweep gives it the slot's thread count).
    public var environment: [String: String] = [:]

    public init(
        workingDirectory: String = FileManager.default.currentDirectoryPath, toolDirectory: String? = nil, scorer: [String]? = nil,
        timeout: Double? = nil
    ) {
        self.workingDirectory = workingDirectory
        self.toolDirectory = toolDirectory
        self.scorer = scorer
        self.timeout = timeout ?? Scorer.defaultIdleTimeout
    }

    /// The folder of the starting model a run's parameters name (`base`/`chat` → models/…).
    public func baseModel(of run: Run) -> String? {
        guard case .string(let name)? = run.params["base_model"] else { return nil }
        let path = TrainerContract.modelPath(name)
        return path.hasPrefix("/") ? path : workingDirectory + "/" + path
    }

    /// The run's trained weights: the best checkpoint when the trainer kept one. A checkpoint the trainer
    /// names outside its run folder (`../..`, an absolute path elsewhere) is not taken.
    public func checkpoint(of run: Run) -> String? {
        guard let dir = run.runDir else { return nil }
        let folder = URL(fileURLWithPath: dir).standardized.path + "/"
        for name in [run.bestCheckpoint, "checkpoint-best", run.checkpoint, "checkpoint"].compactMap({ $0 }) {
            let path = URL(fileURLWithPath: name.hasPrefix("/") ? name : dir + "/" + name).standardized.path
            if path.hasPrefix(folder), FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    func trainTool() -> String {
        TrainerContract.harrowTrain(nextTo: toolDirectory)
    }

    /// The scorer for a run: the explicit command, or the built-in one on its checkpoint (an adapter over its base model).
    public func scorerArgv(for run: Run) throws -> [String] {
        let checkpoint = checkpoint(of: run) ?? ""
        let base = baseModel(of: run) ?? ""
        if let scorer {
            return scorer.map {
                $0.replacingOccurrences(of: "{run_dir}", with: run.runDir ?? "").replacingOccurrences(of: "{checkpoint}", with: checkpoint)
                    .replacingOccurrences(of: "{base_model}", with: base)
            }
        }
        guard !checkpoint.isEmpty else { throw ScorerError("run \(run.id) has no checkpoint to evaluate") }
        if FileManager.default.fileExists(atPath: checkpoint + "/adapter_config.json") {
            guard !base.isEmpty else { throw ScorerError("run \(run.id) has an adapter but no base_model parameter") }
            return [trainTool(), "score", "--model", base, "--adapter", checkpoint]
        }
        return [trainTool(), "score", "--model", checkpoint]
    }

    /// Evaluates and stores; a failure is stored as the evaluation's status, not thrown.
    @discardableResult
    public func run(_ run: Run, evalsets: [String], store: Store) async -> [StoredEval] {
        var out: [StoredEval] = []
        for dir in evalsets {
            let path = dir.hasPrefix("/") ? dir : workingDirectory + "/" + dir
            let started = Date()
            var stored: StoredEval
            do {
                let set = try Evalset.load(path)
                let argv = try scorerArgv(for: run)
                let result = try await evaluate(
                    set, with: backend(argv, run: run, name: set.name), environment: environment, cache: StoreJudgeCache(store: store))
                stored = Self.stored(
                    result, seconds: Date().timeIntervalSince(started),
                    prompts: Dictionary(set.items.map { ($0.id, $0.prompt) }) { a, _ in a })
                stored.weights = set.weights
                stored.rubric = Self.rubric(set)
                if let start = try? await baseline(of: run, set: set, store: store) {
                    stored.baseline = start.total
                    stored.baselineCheckpoint = start.checkpoint
                    stored.vsStart = Self.againstStart(
                        stored, startItems: (try? store.checkpointItems(start.checkpoint, evalset: stored.startKey)) ?? [])
                }
            } catch {
                stored = StoredEval(
                    evalset: (dir as NSString).lastPathComponent, status: "failed", total: nil, totalStderr: nil, totalNorm: nil,
                    seconds: Date().timeIntervalSince(started), error: "\(error)", groups: [], items: [])
            }
            try? store.save(stored, run: run.rowID)
            out.append(stored)
        }
        return out
    }

    /// Paired tests of a run's items against its starting checkpoint's on the same evalset (none without its items).
    static func againstStart(_ e: StoredEval, startItems: [StoredEval.Item]) -> [String: PairedSummary] {
        if e.isJudged {
            var evidence = PairedEvidence(dimensions: [:])
            evidence.addJudged(from: ItemOutcomes(judged: startItems, of: e), to: ItemOutcomes(judged: e.items, of: e))
            return evidence.byName
        }
        guard let start = ItemOutcomes(startItems, of: e), let run = ItemOutcomes(e.items, of: e) else { return [:] }
        return PairedEvidence.compare(mainA: start, mainB: run, generalA: nil, generalB: nil, generalStartA: nil, generalStartB: nil).byName
    }

    /// The starting model's total on a set and the sha256 of its weights, by which it is cached with its items
    /// (a cache from before items were kept is scored again, once).
    func baseline(of run: Run, set: Evalset, store: Store) async throws -> (total: Double, checkpoint: String)? {
        guard scorer == nil, let base = baseModel(of: run), let weights = sha256(ofFile: base + "/model.safetensors")?.hex else {
            return nil
        }
        // Two slots finishing together would both miss the cache and score the same model: one scores, the other
        // waits for it and reads the cache.
        let key = StoredEval.startKey(evalset: set.name, judge: set.isJudged ? set.judge?.name ?? "reference" : nil)
        let total = try await StartingScores.shared.once(weights + "\u{0}" + key) {
            if let cached = try store.checkpointScore(weights, evalset: key),
                try !store.checkpointItems(weights, evalset: key).isEmpty
            {
                return cached
            }
            let result = try await evaluate(
                set, with: backend([trainTool(), "score", "--model", base], run: run, name: "baseline-" + set.name),
                environment: environment, cache: StoreJudgeCache(store: store))
            try store.saveCheckpointScore(weights, evalset: key, total: result.total, items: Self.stored(result, seconds: nil).items)
            return result.total
        }
        return (total, weights)
    }

    /// The scorer process here, or on a cluster a job in `RUN/eval/NAME/`.
    func backend(_ argv: [String], run: Run, name: String) -> any ScoreBackend {
        guard let executor, executor.kind != "local", let dir = run.runDir else { return Scorer(argv: argv, idleTimeout: timeout) }
        return JobScorer(executor: executor, argv: argv, folder: dir + "/eval/" + name, workingDirectory: workingDirectory, runID: run.id)
    }

    public static func stored(_ r: EvalResult, seconds: Double?, prompts: [String: String] = [:]) -> StoredEval {
        let groups = (r.dimensions + r.taskTypes).map {
            StoredEval.Group(
                dimension: $0.dimension, taskType: $0.taskType ?? "", n: $0.n, acc: $0.acc, accStderr: $0.accStderr,
                accNorm: $0.accNorm, accNormStderr: $0.accNormStderr, mean: $0.mean, meanStderr: $0.meanStderr)
        }
        let items = r.items.map {
            StoredEval.Item(
                id: $0.id, dimension: $0.dimension, taskType: $0.taskType, correct: $0.correct, correctNorm: $0.correctNorm,
                chosen: $0.chosen, logprobs: $0.logprobs, text: $0.text, prompt: prompts[$0.id], scores: $0.scores,
                rationale: $0.rationale)
        }
        var e = StoredEval(
            evalset: r.evalset, status: "succeeded", total: r.total, totalStderr: r.totalStderr, totalNorm: r.totalNorm,
            seconds: seconds, error: nil, groups: groups, items: items)
        e.judge = r.judge
        return e
    }

    /// A judged set's rubric as the store keeps it (nil for other sets).
    public static func rubric(_ set: Evalset) -> [StoredEval.RubricDimension]? {
        set.rubric.map { $0.dimensions.map { .init(name: $0.name, low: $0.low, high: $0.high, threshold: $0.threshold) } }
    }
}

/// The judge cache in the store: a judgement is kept by the judge's name and the request it read.
struct StoreJudgeCache: JudgeCache {
    let store: Store

    func judgement(judge: String, request: String) -> Judgement? {
        store.cachedJudgement(judge: judge, request: request).map { Judgement(scores: $0.scores, rationale: $0.rationale) }
    }

    func save(_ j: Judgement, judge: String, request: String) {
        try? store.cacheJudgement(judge: judge, request: request, scores: j.scores, rationale: j.rationale)
    }
}

/// The score protocol as a batch job: the requests written to a file, the scorer run on an executor with that
/// file as its stdin, its answers read back from its stdout. Harrow stays the only writer of the store.
struct JobScorer: ScoreBackend {
    let executor: any Executor
    let argv: [String]
    /// `RUN/eval/NAME/`: requests.jsonl, responses.jsonl, stderr.log and the job's own files.
    let folder: String
    let workingDirectory: String
    let runID: String

    func score(_ requests: [ScoreRequest], environment: [String: String]) async throws -> [ScoreResponse] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let input = folder + "/requests.jsonl", output = folder + "/responses.jsonl", errors = folder + "/stderr.log"
        try ScoreRequest.lines(requests).write(toFile: input, atomically: true, encoding: .utf8)
        let job = Job(
            argv: argv, environment: environment, workingDirectory: workingDirectory, stdoutPath: output, stderrPath: errors,
            runDir: folder, runID: runID, stdinPath: input)
        let handle = try await executor.launch(job)
        let state = await executor.wait(handle)
        guard state == .ended(.exited(0)) else {
            let tail = ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").suffix(1500)
            throw ScorerError("the \(executor.kind) evaluation job \(handle) ended \(state)" + (tail.isEmpty ? "" : ":\n" + tail))
        }
        return try ScoreResponse.parse(lines: try String(contentsOfFile: output, encoding: .utf8), count: requests.count)
    }
}

/// Starting checkpoints being scored by this harrow, by checkpoint and evalset: each is scored once at a time.
actor StartingScores {
    static let shared = StartingScores()
    private var scoring: [String: Task<Double, Error>] = [:]

    func once(_ key: String, _ score: @escaping @Sendable () async throws -> Double) async throws -> Double {
        if let running = scoring[key] { return try await running.value }
        let task = Task { try await score() }
        scoring[key] = task
        defer { scoring[key] = nil }
        return try await task.value
    }
}
