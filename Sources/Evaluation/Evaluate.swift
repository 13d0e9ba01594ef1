import Foundation

/// Scores an evalset with a scorer: one log-likelihood request per choice, one generation per generative item.
public func evaluate(_ set: Evalset, with scorer: some ScoreBackend, environment: [String: String] = [:]) async throws -> EvalResult {
    var requests: [ScoreRequest] = []
    var spans: [Range<Int>] = []
    for item in set.items {
        let start = requests.count
        switch item.kind {
        case .choice(let choices, _):
            for c in choices { requests.append(.loglikelihood(prompt: item.prompt, continuation: c, template: set.template)) }
        case .generative:
            requests.append(.generate(prompt: item.prompt, maxTokens: set.maxTokens, stop: set.stop, template: set.template))
        }
        spans.append(start..<requests.count)
    }
    let responses = try await scorer.score(requests, environment: environment)
    var results: [ItemResult] = []
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
        }
    }
    return Scoring.aggregate(results, evalset: set.name, weights: set.weights)
}
