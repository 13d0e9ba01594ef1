import Foundation

/// docs/DESIGN.md's score protocol over JSON lines: log-likelihood of a continuation, and greedy generation.
/// Requests that arrive together and share a context (the choices of one item) are scored together: the context
/// and the tokens all their continuations begin with run once, each continuation's rest after them, on a key/value
/// cache (`Decoder`); generation appends one token at a time to the cache. Items go to one decoder per configured
/// thread (OPENBLAS_NUM_THREADS), each item whole on one of them, so answers never depend on the thread count.
/// Answers keep request order.
public final class Scorer {
    public let model: LlamaModel<Float>
    /// Request lines read before answering.
    public let maxBatch: Int
    let decoders: [Decoder]
    var maxLength: Int { model.config.max_position_embeddings }

    /// Loads a model folder and, optionally, a PEFT adapter merged into it (merged and unmerged give the same logits).
    /// `threads`: decoders working at once (default: the configured BLAS threads).
    public init(modelDir: URL, adapterDir: URL? = nil, maxBatch: Int = 8, threads: Int? = nil) throws {
        let (config, weights) = try Checkpoint.loadModel(modelDir)
        if let adapterDir { try Checkpoint.loadAdapter(adapterDir, model: config).merge(into: weights) }
        let model = LlamaModel(config: config, weights: weights)
        self.model = model
        self.maxBatch = maxBatch
        decoders = (0..<max(1, threads ?? BLAS.threads)).map { _ in Decoder(model) }
    }

    enum Request {
        case logLikelihood(context: [Int32], continuation: [Int32])
        case generate(context: [Int32], maxTokens: Int, stop: [String])
    }

    /// Answers one JSON line per request line, in order.
    public func answer(_ lines: [String]) -> [String] {
        var answers = [String](repeating: "", count: lines.count)
        var scoring: [(Int, String, [Int32], [Int32])] = [], generating: [(Int, String, [Int32], Int, [String])] = []
        for (i, line) in lines.enumerated() {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            let id = object.map { idJSON($0["id"]) } ?? "null"
            do {
                guard let object else { throw ScoreError("not a JSON object") }
                switch try parse(object) {
                case let .logLikelihood(context, continuation): scoring.append((i, id, context, continuation))
                case let .generate(context, maxTokens, stop): generating.append((i, id, context, maxTokens, stop))
                }
            } catch {
                answers[i] = "{\"id\": \(id), \"error\": \(SafeTensors.jsonString(String(describing: error)))}"
            }
        }
        // Jobs: each run of scoring requests with one context (an item's choices), and each generation.
        var jobs: [(score: Range<Int>?, generate: Int?)] = []
        var start = 0
        while start < scoring.count {
            var end = start + 1
            while end < scoring.count && scoring[end].2 == scoring[start].2 { end += 1 }
            jobs.append((start..<end, nil))
            start = end
        }
        jobs += generating.indices.map { (nil, $0) }
        let parts = Parallel.parts(jobs.count, limit: decoders.count)
        // OpenBLAS on one thread inside each decoder, whatever the part count, so the sums never depend on it.
        answers.withUnsafeMutableBufferPointer { out in
            BLAS.withOneThreadPerCaller {
                Parallel.run(parts) { p in
                    let decoder = decoders[p]
                    for j in stride(from: p, to: jobs.count, by: parts) {
                        if let range = jobs[j].score {
                            let part = scoring[range]
                            for (r, result) in zip(part, logLikelihoods(context: part.first!.2, part.map(\.3), on: decoder)) {
                                out[r.0] =
                                    "{\"id\": \(r.1), \"logprob\": \(result.logprob), \"n_tokens\": \(result.n), \"is_greedy\": \(result.greedy)}"
                            }
                        } else if let g = jobs[j].generate {
                            let r = generating[g]
                            out[r.0] =
                                "{\"id\": \(r.1), \"text\": \(SafeTensors.jsonString(generate(context: r.2, maxTokens: r.3, stop: r.4, on: decoder).text))}"
                        }
                    }
                }
            }
        }
        return answers
    }

    struct ScoreError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    func parse(_ o: [String: Any]) throws -> Request {
        let context: [Int32]
        if let turns = o["messages"] {
            // A judged item's chat turns, rendered by the chat template, the assistant's turn opened.
            guard let list = turns as? [[String: Any]], !list.isEmpty else {
                throw ScoreError("\"messages\" must be a list of {role, content}")
            }
            var messages: [Message] = []
            for m in list {
                guard let role = (m["role"] as? String).flatMap(Role.init(rawValue:)), let content = m["content"] as? String else {
                    throw ScoreError("each message needs a role (system, user or assistant) and content")
                }
                messages.append(Message(role: role, content: content))
            }
            context = ChatTemplate.render(messages).tokens + [Tokenizer.assistant]
        } else {
            guard let prompt = o["prompt"] as? String else { throw ScoreError("\"prompt\" must be a string") }
            switch o["template"] as? String ?? "raw" {
            case "chat": context = ChatTemplate.prompt(prompt)
            case "raw": context = [Tokenizer.bos] + Tokenizer.encode(prompt)
            default: throw ScoreError("\"template\" must be \"chat\" or \"raw\"")
            }
        }
        if let c = o["continuation"] {
            guard let text = c as? String, !text.isEmpty else { throw ScoreError("\"continuation\" must be a non-empty string") }
            let continuation = Tokenizer.encode(text)
            guard continuation.count < maxLength else {
                throw ScoreError("continuation of \(continuation.count) tokens does not fit the context of \(maxLength)")
            }
            return .logLikelihood(context: context, continuation: continuation)
        }
        guard let maxTokens = o["max_tokens"] as? Int, maxTokens >= 0 else {
            throw ScoreError("needs \"continuation\" (log-likelihood) or a non-negative integer \"max_tokens\" (generation)")
        }
        guard let stop = o["stop"] as? [String] ?? (o["stop"] == nil ? [] : nil) else {
            throw ScoreError("\"stop\" must be a list of strings")
        }
        return .generate(context: context, maxTokens: maxTokens, stop: stop)
    }

    /// Sum of log p(continuation token | everything before it) for continuations of one context; the context is cut
    /// from the left so that it fits with the longest continuation.
    func logLikelihoods(context: [Int32], _ continuations: [[Int32]], on decoder: Decoder) -> [(logprob: Double, n: Int, greedy: Bool)] {
        let longest = continuations.map(\.count).max() ?? 0
        let context = Array(context.suffix(maxLength - longest))
        // The tokens every continuation begins with join the context, leaving each at least its last token.
        var shared = continuations.map(\.count).min() ?? 0
        for c in continuations { shared = min(shared, zip(c, continuations[0]).prefix { $0 == $1 }.count) }
        shared = min(shared, max(0, (continuations.map(\.count).min() ?? 1) - 1))
        let prefix = context + continuations[0].prefix(shared)
        decoder.reset()
        let vocab = model.config.vocab_size
        let prefixLogits = decoder.run([prefix], commit: true)[0]
        var sharedLogprob = 0.0, sharedGreedy = true
        for j in 0..<shared {
            let (lp, greedy) = tokenLogprob(prefixLogits, row: context.count + j - 1, token: continuations[0][j], vocab)
            sharedLogprob += lp; sharedGreedy = sharedGreedy && greedy
        }
        // Each rest runs after the prefix; its first token is predicted by the prefix's last row, the others by its own rows.
        let rests = continuations.map { Array($0[shared...]) }
        let inputs = rests.map { Array($0.dropLast()) }
        let running = inputs.indices.filter { !inputs[$0].isEmpty }
        var branchLogits = [[Float]](repeating: [], count: rests.count)
        if !running.isEmpty {
            for (i, logits) in zip(running, decoder.run(running.map { inputs[$0] })) { branchLogits[i] = logits }
        }
        return rests.enumerated().map { b, rest in
            var total = sharedLogprob, greedy = sharedGreedy
            for (i, token) in rest.enumerated() {
                let (lp, g) =
                    i == 0
                    ? tokenLogprob(prefixLogits, row: prefix.count - 1, token: token, vocab)
                    : tokenLogprob(branchLogits[b], row: i - 1, token: token, vocab)
                total += lp; greedy = greedy && g
            }
            return (total, continuations[b].count, greedy)
        }
    }

    private func tokenLogprob(_ logits: [Float], row: Int, token: Int32, _ vocab: Int) -> (Double, Bool) {
        logits.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress! + row * vocab
            let (logZ, argmax) = logSumExp(p, vocab)
            return (Double(p[Int(token)]) - logZ, argmax == Int(token))
        }
    }

    /// A greedy generation: its text, the tokens produced (a stop string's included), and whether it ended by itself
    /// (an end token or a stop string) rather than at max_tokens or a full context.
    struct Generation {
        var text: String
        var tokens: Int
        var ended: Bool
    }

    /// Greedy decoding until max_tokens, an end token, a stop string (which is cut off) or a full context.
    func generate(context: [Int32], maxTokens: Int, stop: [String], on decoder: Decoder) -> Generation {
        guard maxTokens > 0 else { return Generation(text: "", tokens: 0, ended: false) }
        let vocab = model.config.vocab_size
        decoder.reset()
        var logits = decoder.run([Array(context.suffix(maxLength - 1))], commit: true)
        var row = logits[0].count / vocab - 1
        var produced: [Int32] = [], text = ""
        while true {
            let next = logits[0].withUnsafeBufferPointer { Int32(logSumExp($0.baseAddress! + row * vocab, vocab).argmax) }
            if next == Tokenizer.endOfTurn || next == Tokenizer.eos { return Generation(text: text, tokens: produced.count, ended: true) }
            produced.append(next)
            text = Tokenizer.decode(produced)
            if let cut = stop.compactMap({ text.range(of: $0)?.lowerBound }).min() {
                return Generation(text: String(text[..<cut]), tokens: produced.count, ended: true)
            }
            if produced.count >= maxTokens || decoder.room == 0 { break }
            logits = decoder.run([[next]], commit: true)
            row = 0
        }
        return Generation(text: text, tokens: produced.count, ended: false)
    }

    private func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> (Double, argmax: Int) {
        var m = row[0], arg = 0
        for j in 1..<n where row[j] > m { m = row[j]; arg = j }
        var s = 0.0
        for j in 0..<n { s += Foundation.exp(Double(row[j] - m)) }
        return (Double(m) + Foundation.log(s), arg)
    }

    private func idJSON(_ id: Any?) -> String {
        guard let id, !(id is NSNull) else { return "null" }
        if let s = id as? String { return SafeTensors.jsonString(s) }
        if let n = id as? NSNumber { return n.stringValue }
        return "null"
    }

    /// Reads requests from a file descriptor until end of input, answering each batch of lines that is
    /// already available (up to maxBatch) before blocking for more, so a client with a bounded window never waits.
    public func serve(input: Int32 = 0, output: FileHandle = .standardOutput) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var eof = false
        func readMore(block: Bool) {
            if !block {
                var p = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 0) > 0 else { return }
            }
            let n = read(input, &chunk, chunk.count)
            if n <= 0 { eof = true } else { buffer += chunk[0..<n] }
        }
        while true {
            var lines: [String] = []
            while lines.count < maxBatch {
                if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    if !line.trimmingCharacters(in: .whitespaces).isEmpty { lines.append(line) }
                    continue
                }
                if eof {
                    let rest = String(decoding: buffer, as: UTF8.self)
                    buffer.removeAll()
                    if !rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { lines.append(rest) }
                    break
                }
                let before = buffer.count
                readMore(block: lines.isEmpty)
                if buffer.count == before && !eof && !lines.isEmpty { break }
            }
            if !lines.isEmpty {
                output.write(Data(answer(lines).map { $0 + "\n" }.joined().utf8))
            }
            if eof && buffer.isEmpty { return }
        }
    }
}
