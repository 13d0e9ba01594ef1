import Foundation

/// Scores an evalset with a scorer: one log-likelihood request per choice, one generation per generative item.
/// A judged set's replies then go to its judge (`judge`, or the one its manifest names), through `cache`.
public func evaluate(
    _ set: Evalset, with scorer: some ScoreBackend, environment: [String: String] = [:], judge: (any JudgeBackend)? = nil,
    cache: (any JudgeCache)? = nil
) async throws -> EvalResult {
    var requests: [ScoreRequest] = []
    var spans: [Range<Int>] = []
    for item in set.items {
        let start = requests.count
        switch item.kind {
        case .choice(let choices, _):
            for c in choices { requests.append(.loglikelihood(prompt: item.prompt, continuation: c, template: set.template)) }
        case .generative, .judged(nil, _, _, _):
            requests.append(.generate(prompt: item.prompt, maxTokens: set.maxTokens, stop: set.stop, template: set.template))
        case .judged(let messages?, _, _, _):
            requests.append(.chat(messages: messages, maxTokens: set.maxTokens, stop: set.stop))
        }
        spans.append(start..<requests.count)
    }
    let responses = try await scorer.score(requests, environment: environment)
    var results: [ItemResult] = []
    var replies: [JudgeRequest] = []
    for (item, span) in zip(set.items, spans) {
        switch item.kind {
        case .choice(let choices, let answer):
            let logprobs = try span.map { i -> Double in
                switch responses[i] {
                case .loglikelihood(let lp, _, _): return lp
                case .error(let e): throw ScorerError("item \(item.id): \(e)")
                case .text: throw ScorerError("item \(item.id): the scorer generated text where a log-likelihood was asked")
                }
            }
            results.append(Scoring.choice(item, choices: choices, answer: answer, logprobs: logprobs))
        case .generative(let check, let references):
            guard case .text(let text) = responses[span.lowerBound] else {
                if case .error(let e) = responses[span.lowerBound] { throw ScorerError("item \(item.id): \(e)") }
                throw ScorerError("item \(item.id): the scorer gave a log-likelihood where text was asked")
            }
            results.append(Scoring.generative(item, check: check, references: references, text: text, set: set))
        case .judged(let messages, let reference, let notes, let avoid):
            guard case .text(let text) = responses[span.lowerBound], let rubric = set.rubric else {
                if case .error(let e) = responses[span.lowerBound] { throw ScorerError("item \(item.id): \(e)") }
                throw ScorerError("item \(item.id): the scorer gave a log-likelihood where text was asked")
            }
            replies.append(
                JudgeRequest(
                    item: item.id, prompt: item.prompt, messages: messages, reply: text, reference: reference, notes: notes, avoid: avoid,
                    rubric: rubric)
            )
        }
    }
    guard let rubric = set.rubric, let usability = set.usability else {
        return Scoring.aggregate(results, evalset: set.name, weights: set.weights)
    }
    let backend = try judge ?? set.makeJudge(environment: environment)
    let (judgements, cached) = try await backend.judge(
        replies, judge: set.judge?.name ?? "reference", cache: cache, environment: environment)
    let taskTypes = Dictionary(set.items.map { ($0.id, $0.taskType) }) { a, _ in a }
    var judged: [ItemResult] = []
    for (reply, j) in zip(replies, judgements) {
        judged.append(try Scoring.judged(reply, taskType: taskTypes[reply.item] ?? "general", judgement: j, usability: usability))
    }
    var result = Scoring.aggregateJudged(judged, evalset: set.name, rubric: rubric)
    result.judge = set.judge?.name
    result.cachedJudgements = cached
    return result
}

extension Evalset {
    /// The judge the manifest names; an OpenAI-compatible server's key is read from `api_key_env` (the environment
    /// given, then the process's).
    public func makeJudge(environment: [String: String] = [:]) throws -> any JudgeBackend {
        switch judge ?? .reference {
        case .reference: return ReferenceJudge(refusal: refusalPatterns, abstain: abstainPatterns)
        case .command(let argv): return JudgeProcess(argv: argv)
        case .openai(let url, let model, let keyEnv):
            let key = keyEnv.flatMap { environment[$0] ?? ProcessInfo.processInfo.environment[$0] }
            if let keyEnv, key == nil { throw ScorerError("the judge's api_key_env \(keyEnv) is not set") }
            return OpenAIJudge(baseURL: url, model: model, apiKey: key)
        }
    }
}
