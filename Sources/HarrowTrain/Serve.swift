import ArgumentParser
import FlyingFox
import FlyingSocks
import Foundation
import HarrowCore
import Synchronization
import TrainingCore

/// `harrow-train serve`: OpenAI's chat completions API over HTTP on a model folder, the API vLLM, llama.cpp's server and
/// TGI serve, so a judge client (docs/DESIGN.md's judged evalsets) can be tested against a real server on loopback.
/// The HTTP layer is thin: requests are read and replies written by TrainingCore's ChatCompletions.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over OpenAI's chat completions API (GET /v1/models, POST /v1/chat/completions).",
        discussion: """
            Decoding is greedy: temperature, top_p and seed are accepted and have no effect, n must be 1 and \
            stream false. response_format json_object asks nothing of the model (its reply may not be JSON); json_schema \
            decodes a flat object of integer (minimum and maximum, or enum), number (enum), string and boolean properties: \
            the structure is written as the schema orders it, each integer, enum and boolean is the allowed value the \
            model finds most likely, each string is generated to its closing quote (at most maxLength characters, \
            default \(ObjectSchema.defaultStringLength)). A conversation longer than the model's context is cut from \
            the left. One line per request goes to stderr; SIGTERM or SIGINT stops the server.
            """)

    @Option(help: "Model folder (config.json + model.safetensors); base or chat mean models/base or models/chat.")
    var model: String
    @Option(help: "PEFT adapter folder to apply on top of the model.") var adapter: String?
    @Option(help: "Address to listen on (an IPv4 or IPv6 address; localhost means 127.0.0.1).") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 takes any free port (see --port-file).") var port = 8000
    @Option(help: "File to write the port to once the server listens.") var portFile: String?
    @Option(help: "Model id served (default: the model folder's name).") var name: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535, not \(port)") }
    }

    func run() async throws {
        BLAS.applyEnvironmentThreads()
        let path = TrainerContract.modelPath(model)
        let folder = URL(fileURLWithPath: path).standardizedFileURL
        let scorer: Scorer
        do {
            scorer = try Scorer(modelDir: folder, adapterDir: adapter.map { URL(fileURLWithPath: $0) }, maxBatch: 1, threads: 1)
        } catch {
            throw fail(error)
        }
        let weights = folder.appendingPathComponent("model.safetensors").path
        let modified = (try? FileManager.default.attributesOfItem(atPath: weights)[.modificationDate]) as? Date ?? Date()
        let api = ChatServer(
            name: name ?? folder.lastPathComponent, created: Int(modified.timeIntervalSince1970), model: ModelWorker(scorer))

        let address: any SocketAddress
        do {
            let ip = host == "localhost" ? "127.0.0.1" : host
            address =
                ip.contains(":") ? try sockaddr_in6.inet6(ip6: ip, port: UInt16(port)) : try sockaddr_in.inet(ip4: ip, port: UInt16(port))
        } catch {
            throw fail(TrainingError.config(["--host \(host): not an IPv4 or IPv6 address"]))
        }
        // Generation can take long on a big model: the handler's timeout is the client's business.
        let server = HTTPServer(
            address: address, timeout: 3600, logger: .disabled, handler: ClosureHTTPHandler { await api.respond(to: $0) })
        try await serve(server, api)
    }

    private enum Event: Sendable {
        case listening, signal(Int32), ended((any Error)?)
    }

    private func serve(_ server: HTTPServer, _ api: ChatServer) async throws {
        let signals = AsyncStream<Int32> { continuation in
            let sources = [SIGTERM, SIGINT].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                return source
            }
            let held = SignalSources(sources)
            continuation.onTermination = { _ in held.cancel() }
        }
        try await withThrowingTaskGroup(of: Event.self) { group in
            group.addTask {
                do { try await server.run() } catch { return .ended(error) }
                return .ended(nil)
            }
            group.addTask {
                try await server.waitUntilListening(timeout: 60)
                return .listening
            }
            var stopping = false
            while let event = try await group.next() {
                switch event {
                case .listening:
                    switch await server.listeningAddress {
                    case .ip4(_, let port)?, .ip6(_, let port)?: try announce(port, api)
                    default: break
                    }
                    group.addTask {
                        for await number in signals { return .signal(number) }
                        return .signal(0)
                    }
                case .signal(let number):
                    log("stopping on \(number == SIGINT ? "SIGINT" : "SIGTERM")")
                    stopping = true
                    // Requests being answered finish first; then idle keep-alive connections (every OpenAI client keeps
                    // one) are closed at once rather than waited for.
                    let deadline = ContinuousClock.now + .seconds(600)
                    while api.requestsInFlight > 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
                    await server.stop(timeout: 0.5)
                    log("stopped after \(api.requestsServed) requests")
                case .ended(let error):
                    group.cancelAll()
                    if let error, !stopping { throw fail(TrainingError.file("cannot serve on \(host):\(port): \(error)")) }
                    return
                }
            }
        }
    }

    private func announce(_ port: UInt16, _ api: ChatServer) throws {
        if let portFile {
            do { try "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8) } catch {
                throw fail(TrainingError.file("cannot write \(portFile): \(error.localizedDescription)"))
            }
        }
        log("serving \(api.name) on http://\(host.contains(":") ? "[\(host)]" : host):\(port)/v1")
    }
}

/// Signal sources kept alive until the stream of signals ends (libdispatch sources are not Sendable).
private final class SignalSources: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
    func cancel() { sources.forEach { $0.cancel() } }
}

private func log(_ line: String) { FileHandle.standardError.write(Data("harrow-train serve: \(line)\n".utf8)) }

/// The model answers one request at a time on a thread of its own: HTTP tasks never wait on compute, and the
/// decoder's key/value cache is never shared.
final class ModelWorker: @unchecked Sendable {
    private let scorer: Scorer
    private let queue = DispatchQueue(label: "harrow-train.serve.model")

    init(_ scorer: Scorer) { self.scorer = scorer }

    func complete(_ request: ChatCompletionRequest) async -> Result<ChatReply, ChatAPIError> {
        await withCheckedContinuation { done in
            queue.async { done.resume(returning: Result { () throws(ChatAPIError) in try self.scorer.complete(request) }) }
        }
    }
}

/// Routes, status codes and the request log: one stderr line per request (method, path, status, tokens, seconds).
final class ChatServer: Sendable {
    let name: String, created: Int, model: ModelWorker
    private let served = Mutex(0), inFlight = Mutex(0)

    init(name: String, created: Int, model: ModelWorker) {
        self.name = name
        self.created = created
        self.model = model
    }

    var requestsServed: Int { served.withLock { $0 } }
    var requestsInFlight: Int { inFlight.withLock { $0 } }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let start = ContinuousClock.now
        inFlight.withLock { $0 += 1 }
        let (status, body, reply) = await answer(request)
        served.withLock { $0 += 1 }
        inFlight.withLock { $0 -= 1 }
        var line = "\(request.method.rawValue) \(request.path) \(status)"
        if let reply {
            line += " prompt_tokens=\(reply.promptTokens) completion_tokens=\(reply.completionTokens)"
            if reply.promptTokensRead < reply.promptTokens { line += " (prompt cut to its last \(reply.promptTokensRead))" }
        }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        log(line + " " + String(format: "%.3f s", seconds))
        var headers: HTTPHeaders = [.contentType: "application/json"]
        if status == 405 { headers[HTTPHeader("Allow")] = request.path.hasSuffix("/chat/completions") ? "POST" : "GET" }
        return HTTPResponse(
            statusCode: HTTPStatusCode(status, phrase: phrases[status] ?? ""), headers: headers, body: Data((body + "\n").utf8))
    }

    private let phrases = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"]

    private func answer(_ request: HTTPRequest) async -> (Int, String, ChatReply?) {
        let path = request.path.count > 1 && request.path.hasSuffix("/") ? String(request.path.dropLast()) : request.path
        let notAllowed = { (method: String) in
            ChatAPIError(
                status: 405, message: "\(request.method.rawValue) \(path) is not allowed: use \(method).", code: "method_not_allowed")
        }
        switch path {
        case "/v1/models":
            guard request.method == .GET else { return error(notAllowed("GET")) }
            return (200, ChatCompletionJSON.modelList(id: name, created: created), nil)
        case "/v1/chat/completions":
            guard request.method == .POST else { return error(notAllowed("POST")) }
            guard let body = try? await request.bodyData else { return error(.invalid("The request body could not be read.", param: nil)) }
            let parsed: ChatCompletionRequest
            do { parsed = try ChatCompletionRequest.parse(body, servedModel: name) } catch { return self.error(error) }
            switch await model.complete(parsed) {
            case .success(let reply):
                let json = ChatCompletionJSON.completion(
                    id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                    created: Int(Date().timeIntervalSince1970), model: name, content: reply.content, finishReason: reply.finishReason,
                    promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
                return (200, json, reply)
            case .failure(let e): return error(e)
            }
        case _ where path.hasPrefix("/v1/models/"):
            guard request.method == .GET else { return error(notAllowed("GET")) }
            let id = String(path.dropFirst("/v1/models/".count))
            guard id == name else { return error(.modelNotFound(id)) }
            return (200, ChatCompletionJSON.model(id: name, created: created), nil)
        default:
            return error(
                ChatAPIError(
                    status: 404,
                    message:
                        "Invalid URL (\(request.method.rawValue) \(path)): this server answers GET /v1/models and POST /v1/chat/completions."
                ))
        }
    }

    private func error(_ e: ChatAPIError) -> (Int, String, ChatReply?) { (e.status, e.json, nil) }
}
