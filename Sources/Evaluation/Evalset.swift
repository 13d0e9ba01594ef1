import HarrowCore
import BoundedYAML
import Foundation
import Yams

/// One evaluation item (docs/DESIGN.md): multiple choice, or generative with a named check.
public struct EvalItem: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case choice(choices: [String], answer: Int)
        /// `check` is exact | contains | regex | refusal | abstain.
        case generative(check: String, references: [String])
        /// Answered by the model, scored on every rubric dimension by the evalset's judge.
        case judged(messages: [ChatMessage]?, reference: String?, notes: String?, avoid: [String])
    }

    public var id: String
    public var dimension: String
    public var taskType: String
    public var prompt: String
    public var kind: Kind

    public init(id: String, dimension: String, taskType: String, prompt: String, kind: Kind) {
        self.id = id
        self.dimension = dimension
        self.taskType = taskType
        self.prompt = prompt
        self.kind = kind
    }
}

/// An evaluation set: `manifest.yaml` plus `items.jsonl`.
public struct Evalset: Sendable {
    public var name: String
    public var description: String
    /// `chat` wraps prompts in the model's chat template; `raw` sends them as they are.
    public var template: String
    /// Weights of the dimensions in the total; a dimension without a weight counts 1.
    public var weights: [String: Double]
    public var refusalPatterns: [String]
    public var abstainPatterns: [String]
    public var maxTokens: Int
    public var stop: [String]
    public var items: [EvalItem]
    /// A judged set's rubric, usability rule and judge (nil for a set without judged items).
    public var rubric: Rubric?
    public var usability: Usability?
    public var judge: JudgeSpec?

    /// Whether the set's items are judged replies (scored on the rubric) rather than choices or checks.
    public var isJudged: Bool { rubric != nil }

    public static let defaultRefusal = [
        "I can't help", "I cannot help", "I can't assist", "I cannot assist", "I won't", "I will not", "I'm not able to help",
        "I am not able to help", "I refuse"
    ]
    public static let defaultAbstain = [
        "I don't know", "I do not know", "not sure", "no information", "I'm not aware", "I am not aware", "does not exist", "doesn't exist"
    ]

    public init(
        name: String, description: String = "", template: String = "chat", weights: [String: Double] = [:],
        refusalPatterns: [String] = Evalset.defaultRefusal, abstainPatterns: [String] = Evalset.defaultAbstain,
        maxTokens: Int = 64, stop: [String] = ["\n"], items: [EvalItem]
    ) {
        self.name = name
        self.description = description
        self.template = template
        self.weights = weights
        self.refusalPatterns = refusalPatterns
        self.abstainPatterns = abstainPatterns
        self.maxTokens = maxTokens
        self.stop = stop
        self.items = items
    }
}

public struct EvalsetError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

extension Evalset {
    /// Loads a folder: `manifest.yaml` + `items.jsonl`, or a BIG-bench task (`task.json`, or subtask folders).
    public static func load(_ directory: String) throws(EvalsetError) -> Evalset {
        let fm = FileManager.default
        let manifestPath = directory + "/manifest.yaml"
        var manifestText: String?
        if fm.fileExists(atPath: manifestPath) {
            guard let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) else {
                throw EvalsetError("cannot read \(manifestPath)")
            }
            manifestText = text
        }
        let manifest = try parseManifest(manifestText, path: manifestPath)
        let items: [EvalItem]
        var bigbench = false
        if fm.fileExists(atPath: directory + "/items.jsonl") {
            items = try readItems(directory + "/items.jsonl")
        } else if let found = try BigBench.load(directory, dimensions: manifest.dimensions) {
            items = found
            bigbench = true
        } else {
            throw EvalsetError("\(directory) has neither items.jsonl nor a BIG-bench task.json")
        }
        return try assemble(manifest, manifestPath: manifestPath, directory: directory, items: items, bigbench: bigbench)
    }

    /// The manifest and items of a folder from text in memory, as `load` reads them (no file is touched).
    public static func parse(manifest: String?, items: Data, directory: String) throws(EvalsetError) -> Evalset {
        let manifestPath = directory + "/manifest.yaml"
        let fields = try parseManifest(manifest, path: manifestPath)
        let parsed = try parseItems(items, path: directory + "/items.jsonl")
        return try assemble(fields, manifestPath: manifestPath, directory: directory, items: parsed, bigbench: false)
    }

    /// The items of one BIG-bench `task.json` from its bytes; nil when it has no `examples`.
    public static func parseBigBenchTask(
        _ data: Data, path: String, subtask: String? = nil,
        dimensions: [String: String] = [:]
    ) throws(EvalsetError) -> [EvalItem]? {
        try BigBench.task(data, path: path, dimension: subtask, dimensions: dimensions)
    }

    static func parseManifest(_ text: String?, path manifestPath: String) throws(EvalsetError) -> Manifest {
        try Manifest.parse(text, path: manifestPath)
    }

    static func assemble(
        _ manifest: Manifest, manifestPath: String, directory: String, items: [EvalItem],
        bigbench: Bool
    ) throws(EvalsetError) -> Evalset {
        // BIG-bench prompts are raw text.
        let template = manifest.template ?? (bigbench ? "raw" : "chat")
        var set = Evalset(
            name: manifest.name ?? (directory as NSString).lastPathComponent, description: manifest.description,
            template: template, weights: manifest.weights, refusalPatterns: manifest.refusalPatterns,
            abstainPatterns: manifest.abstainPatterns, maxTokens: manifest.maxTokens, stop: manifest.stop, items: items)
        let judged = items.filter { if case .judged = $0.kind { true } else { false } }.count
        if judged > 0 || manifest.rubric != nil {
            guard let rubric = manifest.rubric else {
                throw EvalsetError("\(manifestPath): judged items need a rubric (rubric: {helpful: {scale: [1, 5], threshold: 4}, …})")
            }
            guard judged == items.count else {
                throw EvalsetError("\(directory): a set with a rubric holds judged items only (\(items.count - judged) are not)")
            }
            set.rubric = rubric
            if case .expression(let e)? = manifest.usability {
                do {
                    _ = try e.bound(to: Dictionary(uniqueKeysWithValues: rubric.names.enumerated().map { ($1, $0) }))
                } catch {
                    throw EvalsetError("\(manifestPath): usable: \(error.message)\(error.hint.map { " (\($0))" } ?? "")")
                }
            }
            set.usability = manifest.usability ?? .default(rubric)
            set.judge = manifest.judge ?? .reference
        }
        return set
    }

    /// `items.jsonl`; a bad line is reported as `file:line: message`.
    static func readItems(_ path: String) throws(EvalsetError) -> [EvalItem] {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalsetError("cannot read \(path)") }
        return try parseItems(data, path: path)
    }

    static func parseItems(_ data: Data, path: String) throws(EvalsetError) -> [EvalItem] {
        var items: [EvalItem] = []
        var seen = Set<String>()
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            func fail(_ m: String) -> EvalsetError { EvalsetError("\(path):\(n + 1): \(m)") }
            guard let o = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            let id = (o["id"] as? String) ?? (o["id"] as? Int).map(String.init)
            guard let id else { throw fail("missing id") }
            guard seen.insert(id).inserted else { throw fail("duplicate id '\(id)'") }
            let taskType = o["task_type"] as? String ?? "general"
            if o["kind"] as? String == "judged" {
                items.append(try judgedItem(o, id: id, taskType: taskType, fail: fail))
                continue
            }
            if let kind = o["kind"] { throw fail("kind must be judged (choice and generative items need no kind), found \(kind)") }
            guard let dimension = o["dimension"] as? String, let prompt = o["prompt"] as? String else {
                throw fail("needs dimension and prompt")
            }
            if let choices = o["choices"] as? [String] {
                guard let answer = o["answer"] as? Int, choices.indices.contains(answer) else { throw fail("answer must index choices") }
                items.append(
                    EvalItem(
                        id: id, dimension: dimension, taskType: taskType, prompt: prompt, kind: .choice(choices: choices, answer: answer)))
            } else if let check = o["check"] as? String {
                guard ["exact", "contains", "regex", "refusal", "abstain"].contains(check) else {
                    throw fail("check must be exact, contains, regex, refusal or abstain")
                }
                let refs = (o["references"] as? [String]) ?? (o["reference"] as? String).map { [$0] } ?? []
                if ["exact", "contains", "regex"].contains(check), refs.isEmpty {
                    throw fail("check '\(check)' needs reference or references")
                }
                if check == "regex" {
                    for r in refs where (try? NSRegularExpression(pattern: r)) == nil { throw fail("bad regex '\(r)'") }
                }
                items.append(
                    EvalItem(
                        id: id, dimension: dimension, taskType: taskType, prompt: prompt, kind: .generative(check: check, references: refs))
                )
            } else {
                throw fail("needs choices and answer, or check")
            }
        }
        return items
    }
}

extension Evalset {
    /// `{"kind": "judged", "prompt": "…" | "messages": [{"role", "content"}], "reference"?, "notes"?, "avoid"?}`.
    static func judgedItem(
        _ o: [String: Any], id: String, taskType: String, fail: (String) -> EvalsetError
    ) throws(EvalsetError) -> EvalItem {
        var messages: [ChatMessage]?
        if let raw = o["messages"] {
            guard let list = raw as? [[String: Any]], !list.isEmpty else { throw fail("messages must be a list of {role, content}") }
            var parsed: [ChatMessage] = []
            for m in list {
                guard let role = m["role"] as? String, ["system", "user", "assistant"].contains(role), let content = m["content"] as? String
                else { throw fail("each message needs role (system, user or assistant) and content") }
                parsed.append(ChatMessage(role: role, content: content))
            }
            guard parsed.last?.role == "user" else { throw fail("the last message must be the user's") }
            messages = parsed
        }
        guard let prompt = o["prompt"] as? String ?? messages?.last?.content else { throw fail("a judged item needs prompt or messages") }
        for key in ["reference", "notes"] where o[key] != nil && !(o[key] is String) { throw fail("\(key) must be text") }
        guard let avoid = o["avoid"] as? [String] ?? (o["avoid"] == nil ? [] : nil) else { throw fail("avoid must be a list of patterns") }
        for pattern in avoid where (try? NSRegularExpression(pattern: pattern)) == nil { throw fail("bad pattern in avoid: '\(pattern)'") }
        return EvalItem(
            id: id, dimension: "usable", taskType: taskType, prompt: prompt,
            kind: .judged(messages: messages, reference: o["reference"] as? String, notes: o["notes"] as? String, avoid: avoid))
    }
}

/// BIG-bench JSON tasks (google/BIG-bench `json_task.py`): `task.json` with `examples`, or a folder of subtask
/// folders. Multiple-choice examples become choice items; the prompt is input_prefix + input + output_prefix,
/// with the choices listed when `append_choices_to_input` (the default).
enum BigBench {
    static func load(_ directory: String, dimensions: [String: String]) throws(EvalsetError) -> [EvalItem]? {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory + "/task.json"),
            let items = try task(directory + "/task.json", dimension: nil, dimensions: dimensions), !items.isEmpty
        {
            return items
        }
        var all: [EvalItem] = []
        for sub in ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        where fm.fileExists(atPath: "\(directory)/\(sub)/task.json") {
            all += try task("\(directory)/\(sub)/task.json", dimension: sub, dimensions: dimensions) ?? []
        }
        return all.isEmpty ? nil : all
    }

    static func task(_ path: String, dimension sub: String?, dimensions: [String: String]) throws(EvalsetError) -> [EvalItem]? {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvalsetError("\(path): not a JSON object") }
        return try task(data, path: path, dimension: sub, dimensions: dimensions)
    }

    static func task(_ data: Data, path: String, dimension sub: String?, dimensions: [String: String]) throws(EvalsetError) -> [EvalItem]? {
        guard let t = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EvalsetError("\(path): not a JSON object")
        }
        guard let examples = t["examples"] as? [[String: Any]] else { return nil }
        let name = t["name"] as? String ?? sub ?? "task"
        let dimension = dimensions[sub ?? name] ?? sub ?? name
        let inputPrefix = t["example_input_prefix"] as? String ?? "\nQ: "
        let outputPrefix = t["example_output_prefix"] as? String ?? "\nA: "
        let choicePrefix = t["choice_prefix"] as? String ?? "\n  choice: "
        let append = t["append_choices_to_input"] as? Bool ?? true
        var items: [EvalItem] = []
        for (i, ex) in examples.enumerated() {
            guard let input = ex["input"] as? String, let scores = ex["target_scores"] as? [String: Any] else { continue }
            // Keep the file's order of choices (JSONSerialization loses it), so read them back from the raw text.
            let choices = orderedKeys(of: scores, in: data, after: input)
            guard let best = choices.indices.max(by: { score(scores[choices[$0]]) < score(scores[choices[$1]]) }) else { continue }
            var prompt = inputPrefix + input
            if append { prompt += choices.map { choicePrefix + $0 }.joined() }
            prompt += outputPrefix
            items.append(
                EvalItem(
                    id: "\(name)/\(i)", dimension: dimension, taskType: name, prompt: prompt,
                    kind: .choice(choices: choices, answer: best)))
        }
        return items
    }

    static func score(_ v: Any?) -> Double { (v as? Double) ?? (v as? Int).map(Double.init) ?? 0 }

    /// The keys of `target_scores` in file order.
    static func orderedKeys(of scores: [String: Any], in data: Data, after input: String) -> [String] {
        let text = String(decoding: data, as: UTF8.self)
        var positions: [(String, String.Index)] = []
        let anchor = text.range(of: jsonString(input))?.upperBound ?? text.startIndex
        for key in scores.keys {
            if let r = text.range(of: jsonString(key) + ":", range: anchor..<text.endIndex)
                ?? text.range(of: jsonString(key) + " :", range: anchor..<text.endIndex)
            {
                positions.append((key, r.lowerBound))
            } else {
                positions.append((key, text.endIndex))
            }
        }
        return positions.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.map(\.0)
    }

    static func jsonString(_ s: String) -> String { JSONText.quote(s) }
}
