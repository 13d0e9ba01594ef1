import Foundation

/// DESIGN.md's score protocol over JSON lines: log-likelihood of a continuation, and greedy generation.
/// Requests that arrive together are scored together in batches; answers keep request order.
public final class Scorer {
    public let model: LlamaModel<Float>
    public let maxBatch: Int
    private let ws: Workspace<Float>
    private var maxLength: Int { model.config.max_position_embeddings }

    /// Loads a model folder and, optionally, a PEFT adapter merged into it (merged and unmerged give the same logits).
    public init(modelDir: URL, adapterDir: URL? = nil, maxBatch: Int = 8) throws {
        let (config, weights) = try Checkpoint.loadModel(modelDir)
        if let adapterDir { try Checkpoint.loadAdapter(adapterDir, model: config).merge(into: weights) }
        model = LlamaModel(config: config, weights: weights)
        self.maxBatch = maxBatch
        ws = model.makeWorkspace(batch: maxBatch, seqLen: config.max_position_embeddings)
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
        for chunk in stride(from: 0, to: scoring.count, by: maxBatch) {
            let part = scoring[chunk..<min(scoring.count, chunk + maxBatch)]
            for (r, result) in zip(part, logLikelihoods(part.map { ($0.2, $0.3) })) {
                answers[r.0] = "{\"id\": \(r.1), \"logprob\": \(result.logprob), \"n_tokens\": \(result.n), \"is_greedy\": \(result.greedy)}"
            }
        }
        for chunk in stride(from: 0, to: generating.count, by: maxBatch) {
            let part = generating[chunk..<min(generating.count, chunk + maxBatch)]
            for (r, text) in zip(part, generate(part.map { ($0.2, $0.3, $0.4) })) {
                answers[r.0] = "{\"id\": \(r.1), \"text\": \(SafeTensors.jsonString(text))}"
            }
        }
        return answers
    }

    struct ScoreError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    func parse(_ o: [String: Any]) throws -> Request {
        guard let prompt = o["prompt"] as? String else { throw ScoreError("\"prompt\" must be a string") }
        let template = o["template"] as? String ?? "raw"
        let context: [Int32]
        switch template {
        case "chat": context = ChatTemplate.prompt(prompt)
        case "raw": context = [Tokenizer.bos] + Tokenizer.encode(prompt)
        default: throw ScoreError("\"template\" must be \"chat\" or \"raw\"")
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
        guard let stop = o["stop"] as? [String] ?? (o["stop"] == nil ? [] : nil) else { throw ScoreError("\"stop\" must be a list of strings") }
        return .generate(context: context, maxTokens: maxTokens, stop: stop)
    }

    /// Sum of log p(continuation token | everything before it); the context is cut from the left to fit.
    func logLikelihoods(_ requests: [([Int32], [Int32])]) -> [(logprob: Double, n: Int, greedy: Bool)] {
        let sequences = requests.map { context, continuation in
            Array((context + continuation).suffix(maxLength))
        }
        let t = sequences.map(\.count).max() ?? 1
        run(sequences, seqLen: t)
        let vocab = model.config.vocab_size
        return zip(requests, sequences).enumerated().map { b, pair in
            let (continuation, seq) = (pair.0.1, pair.1)
            var total = 0.0, greedy = true
            for i in (seq.count - continuation.count)..<seq.count {
                let row = ws.logits.data + (b * t + i - 1) * vocab
                let (logZ, argmax) = logSumExp(row, vocab)
                total += Double(row[Int(seq[i])]) - logZ
                greedy = greedy && argmax == Int(seq[i])
            }
            return (total, continuation.count, greedy)
        }
    }

    /// Greedy decoding until max_tokens, an end token, or a stop string (which is cut off).
    func generate(_ requests: [([Int32], Int, [String])]) -> [String] {
        var sequences = requests.map { Array($0.0.suffix(maxLength - 1)) }
        var produced = [[Int32]](repeating: [], count: requests.count)
        var done = requests.map { $0.1 == 0 }
        var texts = [String](repeating: "", count: requests.count)
        let vocab = model.config.vocab_size
        while done.contains(false) {
            let t = sequences.map(\.count).max()!
            run(sequences, seqLen: t)
            for b in requests.indices where !done[b] {
                let next = Int32(logSumExp(ws.logits.data + (b * t + sequences[b].count - 1) * vocab, vocab).argmax)
                if next == Tokenizer.endOfTurn || next == Tokenizer.eos { done[b] = true; continue }
                produced[b].append(next)
                sequences[b].append(next)
                if sequences[b].count > maxLength { sequences[b].removeFirst() }
                texts[b] = Tokenizer.decode(produced[b])
                if let cut = requests[b].2.compactMap({ texts[b].range(of: $0)?.lowerBound }).min() {
                    texts[b] = String(texts[b][..<cut])
                    done[b] = true
                }
                if produced[b].count >= requests[b].1 { done[b] = true }
            }
        }
        return texts
    }

    private func run(_ sequences: [[Int32]], seqLen t: Int) {
        for (b, s) in sequences.enumerated() {
            for i in 0..<t { ws.tokens[b * t + i] = i < s.count ? s[i] : Tokenizer.eos }
        }
        model.forward(ws, batch: sequences.count, seqLen: t, training: false)
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
