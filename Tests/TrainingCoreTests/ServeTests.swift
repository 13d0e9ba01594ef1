import Foundation
import Testing

@testable import TrainingCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `harrow-train serve` run as users run it: the built binary as a subprocess on a free port, over a tiny model the
/// test saves, spoken to over HTTP. Its replies are held to what the scorer computes in process for the same tokens.
@Suite("harrow-train serve over HTTP")
struct ServeTests {
    // Grouped kv heads, an untied head and room for a prompt and a schema's reply.
    static let config = LlamaConfig(
        hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
        num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: false)

    /// A judge's conversation: system, an earlier exchange, and the question as text parts.
    static var messages: [[String: Any]] {
        [
            ["role": "system", "content": "You grade replies."],
            ["role": "user", "content": "Grade: 2+2=4"],
            ["role": "assistant", "content": "{\"helpful\": 5}"],
            [
                "role": "developer",
                "content": [["type": "text", "text": "Grade this reply:"], ["type": "text", "text": "Paris is in France."]]
            ]
        ]
    }
    /// The same conversation as the chat template reads it (developer is system; text parts joined with newlines).
    static let rendered = [
        Message(role: .system, content: "You grade replies."), Message(role: .user, content: "Grade: 2+2=4"),
        Message(role: .assistant, content: "{\"helpful\": 5}"), Message(role: .system, content: "Grade this reply:\nParis is in France.")
    ]

    @Test func modelsAndAPlainCompletionAreOpenAIsShapesWithTheScorersGreedyText() async throws {
        let server = try ServeProcess(seed: 21)
        defer { server.stop() }

        let models = try await server.call("GET", "/v1/models")
        #expect(models.status == 200)
        let data = try #require(models.json["data"] as? [[String: Any]])
        #expect(models.json["object"] as? String == "list" && data.count == 1)
        #expect(data.first?["id"] as? String == server.name && data.first?["object"] as? String == "model")
        #expect(data.first?["owned_by"] as? String == "harrow" && data.first?["created"] is Int)
        #expect(try await server.call("GET", "/v1/models/\(server.name)").json["id"] as? String == server.name)

        let before = Int(Date().timeIntervalSince1970)
        let reply = try await server.call(
            "POST", "/v1/chat/completions",
            ["model": server.name, "messages": Self.messages, "max_tokens": 12, "temperature": 0.7, "top_p": 0.9, "seed": 3, "n": 1])
        #expect(reply.status == 200, "\(reply.json)")
        let choice = try #require((reply.json["choices"] as? [[String: Any]])?.first)
        let message = try #require(choice["message"] as? [String: Any])
        let usage = try #require(reply.json["usage"] as? [String: Int])
        #expect((reply.json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        #expect(reply.json["object"] as? String == "chat.completion" && reply.json["model"] as? String == server.name)
        #expect((reply.json["created"] as? Int).map { $0 >= before && $0 <= before + 60 } == true)
        #expect((reply.json["choices"] as? [Any])?.count == 1 && choice["index"] as? Int == 0 && choice["logprobs"] is NSNull)
        #expect(message["role"] as? String == "assistant")

        // The scorer's greedy generation on the same rendered conversation.
        let scorer = try Scorer(modelDir: server.modelDir, threads: 1)
        let prompt = ChatTemplate.prompt(Self.rendered)
        let expected = scorer.generate(context: prompt, maxTokens: 12, stop: [], on: scorer.decoders[0])
        #expect(message["content"] as? String == expected.text)
        #expect(choice["finish_reason"] as? String == (expected.ended ? "stop" : "length"))
        #expect(usage["prompt_tokens"] == prompt.count && usage["completion_tokens"] == expected.tokens)
        #expect(usage["total_tokens"] == prompt.count + expected.tokens)

        // A stop sequence cuts the text where it begins (an ASCII one: a random model writes stray UTF-8 bytes).
        if let stop = expected.text.dropFirst().first(where: \.isASCII).map(String.init) {
            let cut = try await server.call(
                "POST", "/v1/chat/completions", ["model": server.name, "messages": Self.messages, "max_tokens": 12, "stop": stop])
            let text = try #require(((cut.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String)
            #expect(text == String(expected.text[..<expected.text.range(of: stop)!.lowerBound]))
            #expect((cut.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "stop")
        }
    }

    @Test func aJSONSchemaReplyParsesSatisfiesTheSchemaAndTakesTheLikeliestValues() async throws {
        let server = try ServeProcess(seed: 22)
        defer { server.stop() }
        let schema: [String: Any] = [
            "type": "object", "additionalProperties": false, "title": "Judgement",
            "required": ["helpful", "rationale", "honest", "harmless", "flagged"],
            "properties": [
                "helpful": ["type": "integer", "minimum": 1, "maximum": 5],
                "rationale": ["type": "string", "maxLength": 40, "description": "why"],
                "honest": ["type": "integer", "enum": [1, 3, 5]],
                "harmless": ["type": "integer", "minimum": 1, "maximum": 10],
                "flagged": ["type": "boolean"]
            ]
        ]
        let request: [String: Any] = [
            "model": server.name, "messages": Self.messages,
            "response_format": ["type": "json_schema", "json_schema": ["name": "judgement", "strict": true, "schema": schema]]
        ]
        let reply = try await server.call("POST", "/v1/chat/completions", request)
        #expect(reply.status == 200, "\(reply.json)")
        let choice = try #require((reply.json["choices"] as? [[String: Any]])?.first)
        let content = try #require((choice["message"] as? [String: Any])?["content"] as? String)
        #expect(choice["finish_reason"] as? String == "stop")
        let usage = try #require(reply.json["usage"] as? [String: Int])
        #expect(usage["completion_tokens"] == content.utf8.count, "a byte-level model: one token per byte")

        let object = try #require(try JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any], "\(content)")
        #expect(Set(object.keys) == ["helpful", "rationale", "honest", "harmless", "flagged"])
        let helpful = try #require(object["helpful"] as? Int), honest = try #require(object["honest"] as? Int)
        let harmless = try #require(object["harmless"] as? Int)
        #expect((1...5).contains(helpful) && [1, 3, 5].contains(honest) && (1...10).contains(harmless))
        let rationale = try #require(object["rationale"] as? String)
        #expect(rationale.count <= 40)
        #expect(object["flagged"] is Bool)

        // Each closed value is the likeliest of its allowed values after the reply before it (scored with the
        // character that closes it, so "1," and "10," compete as whole values).
        let scorer = try Scorer(modelDir: server.modelDir, threads: 1)
        let prompt = ChatTemplate.prompt(Self.rendered)
        var from = content.startIndex
        for (key, allowed) in [
            ("helpful", (1...5).map(String.init)), ("honest", ["1", "3", "5"]), ("harmless", (1...10).map(String.init)),
            ("flagged", ["true", "false"])
        ] {
            let keyEnd = try #require(content.range(of: "\"\(key)\": ", range: from..<content.endIndex)?.upperBound, "\(key) in \(content)")
            let valueEnd = try #require(content[keyEnd...].firstIndex { $0 == "," || $0 == "}" })
            let served = String(content[keyEnd..<valueEnd]), closing = String(content[valueEnd])
            let scores = scorer.logLikelihoods(
                context: prompt + Tokenizer.encode(String(content[..<keyEnd])), allowed.map { Tokenizer.encode($0 + closing) },
                on: Decoder(scorer.model))
            let best = scores.map(\.logprob).max()!
            let servedScore = try #require(allowed.firstIndex(of: served).map { scores[$0].logprob }, "\(key): \(served) not allowed")
            #expect(servedScore >= best - 1e-4, "\(key): served \(served) (\(servedScore)) but the likeliest scores \(best)")
            from = valueEnd
        }

        // max_tokens cuts the same reply short.
        var short = request
        short["max_tokens"] = 9
        let cut = try await server.call("POST", "/v1/chat/completions", short)
        let cutChoice = try #require((cut.json["choices"] as? [[String: Any]])?.first)
        #expect(
            (cutChoice["message"] as? [String: Any])?["content"] as? String
                == String(decoding: Array(content.utf8.prefix(9)), as: UTF8.self))
        #expect(cutChoice["finish_reason"] as? String == "length")
    }

    @Test func badRequestsGetOpenAIErrorsAndEveryRequestIsLogged() async throws {
        let server = try ServeProcess(seed: 23)
        var stopped = false
        defer { if !stopped { server.stop() } }
        let messages = [["role": "user", "content": "hi"]]
        let cases: [(String, String, Any?, Int, String?, String?)] = [
            ("POST", "/v1/chat/completions", ["model": server.name, "messages": messages, "stream": true], 400, "stream", nil),
            ("POST", "/v1/chat/completions", ["model": server.name, "messages": messages, "n": 2], 400, "n", nil),
            ("POST", "/v1/chat/completions", ["model": "gpt-4o", "messages": messages], 404, "model", "model_not_found"),
            ("POST", "/v1/chat/completions", "{\"model\": ", 400, nil, nil),
            (
                "POST", "/v1/chat/completions", ["model": server.name, "messages": [["role": "tool", "content": "x"]]], 400,
                "messages[0].role", nil
            ),
            (
                "POST", "/v1/chat/completions",
                [
                    "model": server.name, "messages": messages,
                    "response_format": [
                        "type": "json_schema",
                        "json_schema": ["name": "s", "schema": ["type": "object", "properties": ["n": ["type": "integer"]]]]
                    ]
                ], 400, "response_format.json_schema.schema.properties.n", nil
            ),
            ("GET", "/v1/chat/completions", nil, 405, nil, "method_not_allowed"),
            ("GET", "/v1/models/other", nil, 404, "model", "model_not_found"),
            ("GET", "/v2/anything", nil, 404, nil, nil)
        ]
        for (method, path, body, status, param, code) in cases {
            let answer = try await server.call(method, path, body)
            #expect(answer.status == status, "\(method) \(path) \(String(describing: body))")
            let error = try #require(answer.json["error"] as? [String: Any], "\(answer.json)")
            #expect(error["type"] as? String == "invalid_request_error" && !((error["message"] as? String) ?? "").isEmpty)
            #expect(error["param"] as? String == param && error["code"] as? String == code, "\(error)")
        }
        let ok = try await server.call("POST", "/v1/chat/completions", ["model": server.name, "messages": messages, "max_tokens": 3])
        #expect(ok.status == 200)

        let (status, log) = server.stop()
        stopped = true
        #expect(status == 0, "\(log)")
        let lines = log.split(separator: "\n").filter { $0.contains(" /v1/") || $0.contains(" /v2/") }
        #expect(lines.count == cases.count + 1, "\(log)")
        #expect(lines.contains { $0.contains("POST /v1/chat/completions 404") })
        #expect(lines.last?.contains("POST /v1/chat/completions 200 prompt_tokens=") == true, "\(log)")
        #expect(log.contains("stopping on SIGTERM") && log.contains("stopped after \(cases.count + 1) requests"), "\(log)")
    }
}

/// The built `harrow-train serve` on a free port of 127.0.0.1, over a random tiny model saved in a new folder.
final class ServeProcess {
    let name = "tiny-judge"
    let modelDir: URL
    let port: Int
    private let process = Process()
    private let logFile: URL

    static let packageRoot = #filePath.components(separatedBy: "/Tests/")[0]

    /// The built `harrow-train` next to the test bundle (any --scratch-path), or in the default build folder.
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("harrow-train").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot + "/.build/debug/harrow-train"
    }()

    init(seed: UInt64) throws {
        let dir = temporaryDirectory()
        modelDir = dir.appendingPathComponent("model")
        var rng = SeededGenerator(seed: seed)
        let weights = LlamaWeights<Float>(ServeTests.config)
        weights.initialise(std: 0.1, rng: &rng)
        try Checkpoint.saveModel(weights, config: ServeTests.config, to: modelDir)
        let portFile = dir.appendingPathComponent("port")
        logFile = dir.appendingPathComponent("serve.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--model", modelDir.path, "--port", "0", "--port-file", portFile.path, "--name", name]
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The port file appears once the server listens.
        let deadline = Date().addingTimeInterval(20)
        var port: Int?
        while port == nil && process.isRunning && Date() < deadline {
            port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if port == nil { usleep(20_000) }
        }
        guard let port else {
            if process.isRunning { process.terminate() }
            throw ServeError(description: "no port: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
        }
        self.port = port
    }

    struct ServeError: Error, CustomStringConvertible { let description: String }

    /// Sends a request (a JSON-serialisable body, or raw text) and reads the JSON answer.
    func call(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (status: Int, json: [String: Any]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let text = body as? String {
            request.httpBody = Data(text.utf8)
        } else if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, json)
    }

    /// SIGTERM, then the exit status and what the server wrote to stderr.
    @discardableResult
    func stop() -> (status: Int32, log: String) {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: modelDir.deletingLastPathComponent())
        return (process.terminationStatus, log)
    }
}

/// The request checks and the schema's reply structure, without a server.
@Suite("Chat completions requests")
struct ChatCompletionsTests {
    func parse(_ body: [String: Any]) throws(ChatAPIError) -> ChatCompletionRequest {
        var full: [String: Any] = ["model": "m", "messages": [["role": "user", "content": "hi"]]]
        full.merge(body) { _, new in new }
        return try ChatCompletionRequest.parse(try! JSONSerialization.data(withJSONObject: full), servedModel: "m")
    }

    func rejected(_ body: [String: Any]) -> ChatAPIError? {
        do { _ = try parse(body) } catch { return error }
        return nil
    }

    @Test func parametersAreReadWithTheirExactTypes() throws {
        let r = try parse(["max_completion_tokens": 5, "max_tokens": 9, "stop": "\n", "temperature": 0, "seed": 1, "stream": false])
        #expect(r.maxTokens == 5 && r.stop == ["\n"] && r.format == .text)
        #expect(try parse(["stop": ["a", "b"], "response_format": ["type": "json_object"]]).format == .jsonObject)
        for (body, param) in [
            (["max_tokens": true], "max_tokens"), (["max_tokens": 0], "max_tokens"), (["max_tokens": 2.5], "max_tokens"),
            (["stop": ["a", "b", "c", "d", "e"]], "stop"), (["temperature": 3], "temperature"), (["seed": "1"], "seed"),
            (["n": true], "n"), (["logprobs": true], "logprobs"),
            (["messages": [["role": "user", "content": [["type": "image_url", "image_url": ["url": "x"]]]]]], "messages[0].content"),
            (["response_format": ["type": "grammar"]], "response_format.type")
        ] as [([String: Any], String)] {
            #expect(rejected(body)?.param == param, "\(body)")
            #expect(rejected(body)?.status == 400)
        }
    }

    @Test func aSchemaIsWrittenInRequiredOrderWithEachValueClosedByItsDelimiter() throws {
        // As openai-python's parse helper sends a pydantic model: titles, additionalProperties false.
        let spec: [String: JSONInput] = [
            "name": .string("j"), "strict": .bool(true),
            "schema": .object([
                "type": .string("object"), "title": .string("J"), "additionalProperties": .bool(false),
                "required": .array([.string("score"), .string("why")]),
                "properties": .object([
                    "why": .object(["type": .string("string"), "maxLength": .int(30)]),
                    "score": .object(["type": .string("integer"), "minimum": .int(1), "maximum": .int(3), "title": .string("Score")]),
                    "ok": .object(["type": .string("boolean")])
                ])
            ])
        ]
        let schema = try ObjectSchema.parse(spec)
        #expect(schema.properties.map(\.name) == ["score", "why", "ok"])
        #expect(
            schema.segments == [
                .literal("{\"score\": "), .choice(["1", "2", "3"], then: ","), .literal(", \"why\": \""), .string(maxLength: 30),
                .literal("\", \"ok\": "), .choice(["true", "false"], then: "}"), .literal("}")
            ])
    }

    @Test func schemasTheServerCannotSatisfyAreRefusedByName() {
        func refusal(_ property: [String: JSONInput]) -> String? {
            let spec: [String: JSONInput] = [
                "name": .string("j"),
                "schema": .object(["type": .string("object"), "properties": .object(["x": .object(property)])])
            ]
            do { _ = try ObjectSchema.parse(spec) } catch { return error.status == 400 ? error.message : nil }
            return nil
        }
        #expect(refusal(["type": .string("integer")])?.contains("minimum and maximum") == true)
        #expect(refusal(["type": .string("integer"), "minimum": .int(0), "maximum": .int(1000)])?.contains("1001 values") == true)
        #expect(refusal(["type": .string("number")])?.contains("enum") == true)
        #expect(refusal(["type": .string("string"), "pattern": .string("a+")])?.contains("pattern is not supported") == true)
        #expect(refusal(["type": .string("object"), "properties": .object([:])])?.contains("not supported") == true)
        #expect(refusal(["type": .array([.string("string"), .string("null")])]) != nil)
        #expect(refusal(["type": .string("integer"), "enum": .array([.int(1), .string("2")])])?.contains("not of type integer") == true)
        #expect(refusal(["type": .string("integer"), "minimum": .int(1), "maximum": .int(5)]) == nil)
    }
}
