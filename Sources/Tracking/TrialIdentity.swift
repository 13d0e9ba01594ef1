import Crypto
import Foundation

/// Everything a trial's result depends on: its parameters and command template (`paramsKey`), the code
/// that ran, and the files it read. A finished run is reused only when all of it matches.
public struct TrialIdentity: Codable, Equatable, Sendable {
    /// SHA-256 of the resolved parameters and the command template (`Trial.key`).
    public var paramsKey: String
    /// HEAD of the repository holding the experiment file, nil outside git.
    public var commit: String?
    /// Tracked files with uncommitted changes → sha256 of each file's patch. The experiment file itself is
    /// left out: what it says reaches the trial through `paramsKey`.
    public var uncommitted: [String: String]
    /// Trainer programs (harrow-train's binary, a script named by path) → sha256.
    public var programs: [String: String]
    /// Data files and starting weights named by the parameters → sha256.
    public var inputs: [String: String]

    public init(
        paramsKey: String, commit: String? = nil, uncommitted: [String: String] = [:], programs: [String: String] = [:],
        inputs: [String: String] = [:]
    ) {
        self.paramsKey = paramsKey
        self.commit = commit
        self.uncommitted = uncommitted
        self.programs = programs
        self.inputs = inputs
    }

    /// The key a run is stored under: SHA-256 of this identity's canonical JSON (sorted keys).
    public var key: String { sha256Hex(Data(json.utf8)) }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public init?(json: String?) {
        guard let json, let decoded = try? JSONDecoder().decode(TrialIdentity.self, from: Data(json.utf8)) else { return nil }
        self = decoded
    }

    /// What changed since `earlier`, said as a user reads it: "code changed: commit a1b2c3d → d4e5f6a
    /// (train.py); data changed: datasets/domain.jsonl". `committedFiles` are the files that differ
    /// between the two commits, when git could tell.
    public func changes(since earlier: TrialIdentity?, committedFiles: [String]? = nil) -> String {
        guard let earlier else { return "recorded before code and data were part of a trial's identity" }
        var code: [String] = []
        var named = Set<String>()
        if earlier.commit != commit {
            var part = "commit \(Self.short(earlier.commit)) → \(Self.short(commit))"
            if let files = committedFiles, !files.isEmpty {
                part += " (" + Self.list(files) + ")"
                named.formUnion(files)
            }
            code.append(part)
        }
        let edited = Self.differing(earlier.uncommitted, uncommitted)
        if !edited.isEmpty {
            code.append("uncommitted changes to " + Self.list(edited))
            named.formUnion(edited)
        }
        let programs = Self.differing(earlier.programs, self.programs).filter { !named.contains($0) }
        if !programs.isEmpty { code.append((programs.count == 1 ? "program " : "programs ") + Self.list(programs)) }
        let inputs = Self.differing(earlier.inputs, self.inputs)
        var parts: [String] = []
        if !code.isEmpty { parts.append("code changed: " + code.joined(separator: ", ")) }
        if !inputs.isEmpty { parts.append("data changed: " + Self.list(inputs)) }
        return parts.isEmpty ? "parameters and command unchanged" : parts.joined(separator: "; ")
    }

    static func differing(_ a: [String: String], _ b: [String: String]) -> [String] {
        Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
    }

    static func short(_ commit: String?) -> String { commit.map { String($0.prefix(7)) } ?? "none" }

    static func list(_ names: [String], limit: Int = 4) -> String {
        names.count <= limit
            ? names.joined(separator: ", ") : names.prefix(limit).joined(separator: ", ") + " and \(names.count - limit) more"
    }
}
