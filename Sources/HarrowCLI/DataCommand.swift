import ArgumentParser
import Evaluation
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Check training data before a sweep trains on it.",
        discussion: """
            Exit status: 0 the data is clean, 1 a malformed line or an evaluation prompt in the data, 2 a missing \
            file or bad usage.
            """,
        subcommands: [DataCheckCommand.self]
    )
}

struct DataCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check fine-tuning data files: format, lengths, task types, duplicates, overlap.",
        discussion: """
            Reads JSON lines or a JSON array of Alpaca (instruction, input, output), ShareGPT (conversations), \
            OpenAI (messages) or prompt/response records, with Harrow's task_type when there is one. Per file: \
            records, malformed lines (file:line), response and record lengths in tokens (estimated as UTF-8 bytes / 4, \
            or exactly with --tokens harrow-train), records over --max-seq-len (their responses are cut short), empty \
            responses, the share of each task type and of its first level, types under 2% of the records, and \
            responses repeated exactly or nearly (MinHash over word 5-gram shingles, 64 hashes, Jaccard 0.8 or \
            more). With --against, every prompt is looked up among the evalset's prompts (a folder with \
            items.jsonl) or another file's; a prompt found exactly or nearly is contamination. The files are \
            only read.

            Exit status: 0 clean (warnings allowed), 1 a malformed line, or an overlap without --allow-overlap, \
            2 a missing file or bad usage.

            Examples:
              harrow data check datasets/domain/train.jsonl --against evalsets/domain-3h
              harrow data check datasets/general/*.jsonl --json
            """
    )

    @Argument(help: "Data files: JSON lines or a JSON array.") var files: [String]
    @Option(
        name: .customLong("against"), parsing: .upToNextOption,
        help: ArgumentHelp("Evalset folders or data files whose prompts must not be in the data.", valueName: "path"))
    var against: [String] = []
    @Flag(help: "Report overlap with --against as a warning, not an error.") var allowOverlap = false
    @Option(help: "Flag records longer than this many tokens (their responses are cut short in training).") var maxSeqLen: Int?
    @Option(
        help: ArgumentHelp(
            "How tokens are counted: 'estimate' (UTF-8 bytes / 4) or 'harrow-train' (its tokenizer, exactly).",
            valueName: "count"))
    var tokens = "estimate"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var settings = DataCheck.Settings()
        switch tokens {
        case "estimate": settings.tokens = .estimate
        case "harrow-train": settings.tokens = .harrowTrain
        default: throw usage("--tokens takes 'estimate' or 'harrow-train', not '\(tokens)'")
        }
        if let maxSeqLen, maxSeqLen < 1 { throw usage("--max-seq-len must be 1 or more") }
        settings.maxSeqLen = maxSeqLen
        // Every path first: a missing one is a usage error before anything is printed.
        let fm = FileManager.default
        var referenceFiles: [String] = []
        for path in against {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw usage("no such file or folder '\(path)'") }
            if isDirectory.boolValue {
                let items = (path.hasSuffix("/") ? path : path + "/") + "items.jsonl"
                guard fm.fileExists(atPath: items) else { throw usage("'\(path)' is a folder without items.jsonl (not an evalset)") }
                referenceFiles.append(items)
            } else {
                referenceFiles.append(path)
            }
        }
        var contents: [(String, Data)] = []
        for path in files {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw usage("no such file '\(path)'") }
            guard !isDirectory.boolValue, let data = fm.contents(atPath: path) else { throw usage("cannot read '\(path)' (a folder?)") }
            contents.append((path, data))
        }

        var referenceRecords: [DataCheck.Record] = [], referenceMalformed: [DataCheck.Malformed] = []
        var referenceCounts: [(String, Int)] = []
        for path in referenceFiles {
            guard let data = fm.contents(atPath: path) else { throw usage("cannot read '\(path)'") }
            let (records, malformed) = DataCheck.parse(data, file: path, requireResponse: false)
            referenceRecords += records
            referenceMalformed += malformed
            referenceCounts.append((path, records.reduce(0) { $0 + $1.prompts.count }))
        }
        let reference = against.isEmpty ? nil : DataCheck.reference(referenceRecords, settings: settings)
        let reports = contents.map { DataCheck.check($0.1, file: $0.0, against: reference, settings: settings) }

        let overlaps = reports.reduce(0) { $0 + ($1.overlap.map { $0.exact.count + $0.near.count } ?? 0) }
        let malformed = reports.reduce(0) { $0 + $1.malformed.count } + referenceMalformed.count
        let errors = malformed + (allowOverlap ? 0 : overlaps)
        let warnings = reports.reduce(0) { $0 + $1.warnings } + (allowOverlap ? overlaps : 0)

        if json {
            print(
                jsonText(
                    DataCheckJSON(
                        ok: errors == 0, errors: errors, warnings: warnings, settings: .init(settings),
                        against: referenceCounts.map { .init(path: $0.0, prompts: $0.1) },
                        againstMalformed: referenceMalformed.map {
                            .init(file: $0.location.file, line: $0.location.line, message: $0.message)
                        },
                        files: reports.map(DataCheckJSON.File.init))))
        } else {
            for (path, count) in referenceCounts { print("against    \(path): \(count) prompts") }
            for m in referenceMalformed.prefix(20) { print("error      \(m)") }
            if !referenceCounts.isEmpty { print("") }
            for report in reports { print(text(report) + "\n") }
            print(
                "\(reports.count) file\(reports.count == 1 ? "" : "s"): \(malformed) malformed line\(malformed == 1 ? "" : "s"), "
                    + (reference == nil
                        ? "" : "\(overlaps) prompt\(overlaps == 1 ? "" : "s") found in --against\(allowOverlap ? " (allowed)" : ""), ")
                    + "\(warnings) warning\(warnings == 1 ? "" : "s")")
        }
        if errors > 0 { throw ExitCode(1) }
    }

    func usage(_ message: String) -> ExitCode {
        printError("harrow data check: \(message)")
        return ExitStatus.configuration
    }

    func text(_ r: DataCheck.FileReport) -> String {
        var lines = [r.file]
        let formats = r.formats.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        lines.append("  records        \(r.records)" + (formats.isEmpty ? "" : " (\(formats))"))
        lines.append("  malformed      \(r.malformed.count)")
        let counted = r.tokens == .estimate ? "UTF-8 bytes / 4" : "harrow-train's tokenizer"
        if let s = r.responseTokens {
            lines.append(
                String(
                    format: "  response       min %.0f  median %.0f  p95 %.0f  max %.0f tokens (%@)", s.min, s.median, s.p95, s.max, counted
                ))
        }
        if let s = r.recordTokens {
            lines.append(
                String(
                    format: "  record         min %.0f  median %.0f  p95 %.0f  max %.0f tokens (every turn)", s.min, s.median, s.p95, s.max)
            )
        }
        lines.append("  empty          \(r.emptyResponses.count)")
        if let limit = r.maxSeqLen { lines.append("  truncated      \(r.truncated.count) (over max_seq_len \(limit))") }
        if !r.taskTypes.isEmpty {
            let width = max(10, (r.taskTypes + r.taskGroups).map(\.name.count).max() ?? 0)
            lines.append(
                "  task types     " + r.taskGroups.map { "\($0.name) \(percent($0.share))" }.joined(separator: ", ")
                    + (r.untyped > 0 ? ", none \(r.untyped)" : ""))
            for t in r.taskTypes {
                lines.append(
                    "    " + t.name.padding(toLength: width, withPad: " ", startingAt: 0)
                        + String(format: " %5d  %6.1f%%", t.count, t.share * 100) + (r.rareTaskTypes.contains(t.name) ? "  rare" : ""))
            }
        }
        lines.append("  duplicates     \(r.duplicateResponses.count) exact, \(r.nearDuplicateResponses.count) near (responses)")
        if let o = r.overlap { lines.append("  in --against   \(o.exact.count) exact, \(o.near.count) near (prompts)") }

        // Findings, errors first.
        for m in r.malformed.prefix(20) { lines.append("  error    \(m)") }
        if r.malformed.count > 20 { lines.append("  error    … and \(r.malformed.count - 20) more malformed lines") }
        if let o = r.overlap {
            let kind = allowOverlap ? "warning" : "error  "
            let all =
                o.exact.map { ($0, "the same prompt as") } + o.near.map { ($0, String(format: "a prompt %.2f similar to", $0.jaccard)) }
            for (p, what) in all.prefix(20) { lines.append("  \(kind)  \(p.a): \(what) \(p.b)") }
            if all.count > 20 { lines.append("  \(kind)  … and \(all.count - 20) more prompts found in --against") }
        }
        for l in r.truncated.prefix(3) {
            lines.append("  warning  \(l): longer than max_seq_len \(r.maxSeqLen ?? 0) tokens: the response is cut short")
        }
        if r.truncated.count > 3 { lines.append("  warning  … and \(r.truncated.count - 3) more records over max_seq_len") }
        for l in r.emptyResponses.prefix(3) { lines.append("  warning  \(l): empty response") }
        if r.emptyResponses.count > 3 { lines.append("  warning  … and \(r.emptyResponses.count - 3) more empty responses") }
        for t in r.taskTypes where r.rareTaskTypes.contains(t.name) {
            lines.append("  warning  task type \(t.name): \(t.count) of \(r.records) records (\(percent(t.share)), under 2%)")
        }
        for p in r.duplicateResponses.examples { lines.append("  warning  \(p.b): the same response as \(p.a)") }
        if r.duplicateResponses.count > r.duplicateResponses.examples.count {
            lines.append("  warning  … \(r.duplicateResponses.count) records repeat an earlier response")
        }
        for p in r.nearDuplicateResponses.examples {
            lines.append(String(format: "  warning  %@: a response %.2f similar to %@", p.b.description, p.jaccard, p.a.description))
        }
        if r.nearDuplicateResponses.count > r.nearDuplicateResponses.examples.count {
            lines.append("  warning  … \(r.nearDuplicateResponses.count) pairs of nearly equal responses")
        }
        return lines.joined(separator: "\n")
    }

    func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }
}

/// `harrow data check --json`.
struct DataCheckJSON: Encodable, Sendable {
    struct Settings: Encodable, Sendable {
        var minhashHashes: Int, lshBands: Int, jaccardThreshold: Double, shingleWords: Int, rareShare: Double, tokens: String
        @OrNull var maxSeqLen: Int?
        var percentiles = "nearest_rank"
        enum CodingKeys: String, CodingKey {
            case minhashHashes = "minhash_hashes", lshBands = "lsh_bands", jaccardThreshold = "jaccard_threshold"
            case shingleWords = "shingle_words", rareShare = "rare_share", tokens, maxSeqLen = "max_seq_len", percentiles
        }
        init(_ s: DataCheck.Settings) {
            minhashHashes = s.hashes; lshBands = s.bands; jaccardThreshold = s.threshold; shingleWords = s.shingleWords
            rareShare = s.rareShare; tokens = s.tokens.rawValue; maxSeqLen = s.maxSeqLen
        }
    }
    struct Reference: Encodable, Sendable { var path: String; var prompts: Int }
    struct Malformed: Encodable, Sendable { var file: String; var line: Int; var message: String }

    /// One checked file.
    struct File: Encodable, Sendable {
        struct Line: Encodable, Sendable { var line: Int; var message: String }
        /// Two records by `file:line` and their Jaccard similarity to three places.
        struct Pair: Encodable, Sendable {
            var a: String, b: String, jaccard: Double
            init(_ p: DataCheck.Pair) { a = p.a.description; b = p.b.description; jaccard = (p.jaccard * 1000).rounded() / 1000 }
        }
        struct Duplicates: Encodable, Sendable {
            var count: Int, examples: [Pair]
            init(_ d: DataCheck.Duplicates) { count = d.count; examples = d.examples.map(Pair.init) }
        }
        struct Count: Encodable, Sendable { var count: Int; var share: Double }
        struct Overlap: Encodable, Sendable { var exact: [Pair]; var near: [Pair] }

        var path: String, records: Int, formats: [String: Int]
        var malformed: [Line]
        var emptyResponses: [Int]
        @OrNull var responseTokens: DataCheck.Spread?
        @OrNull var recordTokens: DataCheck.Spread?
        var truncated: [Int]
        var taskTypes: [String: Count], taskTypeGroups: [String: Count]
        var untyped: Int, rareTaskTypes: [String]
        var duplicateResponses: Duplicates, nearDuplicateResponses: Duplicates
        @OrNull var overlap: Overlap?

        enum CodingKeys: String, CodingKey {
            case path, records, formats, malformed, emptyResponses = "empty_responses", responseTokens = "response_tokens"
            case recordTokens = "record_tokens", truncated, taskTypes = "task_types", taskTypeGroups = "task_type_groups", untyped
            case rareTaskTypes = "rare_task_types", duplicateResponses = "duplicate_responses"
            case nearDuplicateResponses = "near_duplicate_responses", overlap
        }

        init(_ r: DataCheck.FileReport) {
            func counts(_ list: [DataCheck.Share]) -> [String: Count] {
                Dictionary(uniqueKeysWithValues: list.map { ($0.name, Count(count: $0.count, share: $0.share)) })
            }
            path = r.file; records = r.records; formats = r.formats
            malformed = r.malformed.map { Line(line: $0.location.line, message: $0.message) }
            emptyResponses = r.emptyResponses.map(\.line)
            responseTokens = r.responseTokens; recordTokens = r.recordTokens
            truncated = r.truncated.map(\.line)
            taskTypes = counts(r.taskTypes); taskTypeGroups = counts(r.taskGroups)
            untyped = r.untyped; rareTaskTypes = r.rareTaskTypes
            duplicateResponses = Duplicates(r.duplicateResponses); nearDuplicateResponses = Duplicates(r.nearDuplicateResponses)
            overlap = r.overlap.map { Overlap(exact: $0.exact.map(Pair.init), near: $0.near.map(Pair.init)) }
        }
    }

    var ok: Bool, errors: Int, warnings: Int
    var settings: Settings
    var against: [Reference]
    var againstMalformed: [Malformed]
    var files: [File]
    enum CodingKeys: String, CodingKey { case ok, errors, warnings, settings, against, againstMalformed = "against_malformed", files }
}
