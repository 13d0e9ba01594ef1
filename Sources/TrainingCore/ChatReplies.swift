import HarrowCore

/// What the model answered to a chat completions request.
public struct ChatReply: Equatable, Sendable {
    public var content: String
    public var finishReason: FinishReason
    /// Tokens of the rendered conversation (the chat template's, up to and with `<|assistant|>`).
    public var promptTokens: Int
    /// The ones the model read: a conversation longer than the context leaves is cut from the left, as the score
    /// protocol cuts a context, so that the reply has room.
    public var promptTokensRead: Int
    public var completionTokens: Int
}

extension Scorer {
    /// Answers a chat completions request on the first decoder (the caller runs one request at a time): greedy
    /// generation for text and json_object replies, and for json_schema the object's structure written literally,
    /// each closed value the one of highest log-likelihood after the reply so far (`logLikelihoods`, as the score
    /// protocol scores choices) and each open string generated greedily to its closing quote.
    public func complete(_ request: ChatCompletionRequest) throws(ChatAPIError) -> ChatReply {
        let prompt = ChatTemplate.prompt(request.messages)
        switch request.format {
        case .text, .jsonObject: return generatedReply(prompt, request)
        case .jsonSchema(let schema): return try schemaReply(prompt, schema, maxTokens: request.maxTokens)
        }
    }

    /// A prompt too long for the context keeps its last tokens, leaving `room` for the reply.
    private func read(_ prompt: [Int32], leaving room: Int) -> [Int32] { Array(prompt.suffix(maxLength - room)) }

    /// Free generation; a prompt that fills the context leaves the reply max_tokens or half the context, the fewer.
    private func generatedReply(_ prompt: [Int32], _ request: ChatCompletionRequest) -> ChatReply {
        let context = read(prompt, leaving: min(request.maxTokens ?? maxLength / 2, maxLength / 2))
        let limit = min(request.maxTokens ?? .max, maxLength - context.count)
        let g = generate(context: context, maxTokens: limit, stop: request.stop, on: decoders[0])
        return ChatReply(
            content: g.text, finishReason: g.ended ? .stop : .length, promptTokens: prompt.count, promptTokensRead: context.count,
            completionTokens: g.tokens)
    }

    /// The schema's reply. It parses and satisfies the schema unless max_tokens cuts it (finish reason `length`, as
    /// OpenAI answers then).
    private func schemaReply(_ prompt: [Int32], _ schema: ObjectSchema, maxTokens: Int?) throws(ChatAPIError) -> ChatReply {
        let segments = schema.segments
        // The most tokens the reply can take: its structure, its longest choices, its strings at full length.
        let longest = segments.reduce(0) { total, s in
            switch s {
            case .literal(let text): total + text.utf8.count
            case .choice(let values, let then): total + (values.map(\.utf8.count).max() ?? 0) + then.utf8.count
            case .string(let n): total + n
            }
        }
        guard longest < maxLength else {
            throw .invalid(
                "The schema's reply may take \(longest) tokens; this model's context holds \(maxLength). Give its strings a smaller maxLength.",
                param: "response_format.json_schema", code: "context_length_exceeded")
        }
        let context = read(prompt, leaving: longest), budget = maxTokens ?? .max
        var reply: [Int32] = [], whole = true
        for segment in segments {
            guard reply.count < budget else { whole = false; break }
            switch segment {
            case .literal(let text): reply += Tokenizer.encode(text)
            case .choice(let values, let then):
                let scores = logLikelihoods(context: context + reply, values.map { Tokenizer.encode($0 + then) }, on: decoders[0])
                var best = 0
                for i in scores.indices where scores[i].logprob > scores[best].logprob { best = i }
                reply += Tokenizer.encode(values[best])
            case .string(let n):
                let text = generate(context: context + reply, maxTokens: min(n, budget - reply.count), stop: ["\""], on: decoders[0]).text
                reply += Tokenizer.encode(String(JSONText.quote(text).dropFirst().dropLast()))
            }
        }
        if reply.count > budget { reply.removeLast(reply.count - budget); whole = false }
        return ChatReply(
            content: Tokenizer.decode(reply), finishReason: whole ? .stop : .length, promptTokens: prompt.count,
            promptTokensRead: context.count, completionTokens: reply.count)
    }
}
