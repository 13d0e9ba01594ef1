import ArgumentParser
import Evaluation
import Foundation
import HarrowCore
import Tracking

struct LabelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels",
        abstract: "People's scores of judged replies: export them to label, import what people scored, and see how far the judge agrees.",
        discussion: """
            A judge's scores are only as good as the judge. Export a run's judged replies for people to score on the \
            same rubric (a CSV to fill in a spreadsheet, or a Label Studio project), import their scores (several \
            annotators per reply), and read Cohen's kappa between the judge and the people's median score and \
            Fleiss' kappa among the people, per dimension.

            Examples:
              harrow labels export k3x9 --evalset evalsets/domain-judged -o replies.csv
              harrow labels export k3x9 --evalset evalsets/domain-judged --label-studio \\
                -o ls/
              harrow labels import filled.csv --evalset evalsets/domain-judged
              harrow labels agreement k3x9 --evalset evalsets/domain-judged
            """,
        subcommands: [LabelsExport.self, LabelsImport.self, LabelsAgreement.self])
}

/// The rubric of a judged evalset folder, as the label files state it.
func labelRubric(_ set: Evalset) throws -> [LabelDimension] {
    guard let rubric = set.rubric else { throw ValidationError("\(set.name) is not a judged evalset (its manifest has no rubric)") }
    return rubric.dimensions.map { LabelDimension(name: $0.name, scale: $0.low...$0.high, levels: $0.levels) }
}

struct LabelsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a run's judged replies for people to score: a CSV, or a Label Studio project.")

    @Argument(help: "Run id (or a unique prefix, or a tag).") var runID: String
    @Option(help: ArgumentHelp("The judged evalset folder the run was scored on.", valueName: "dir")) var evalset: String
    @Flag(help: "Write Label Studio's tasks.json and config.xml into the --output folder instead of a CSV.") var labelStudio = false
    @Option(
        name: [.short, .customLong("output")], help: "Where to write (a file; a folder with --label-studio). Default: stdout for a CSV.")
    var output: String?
    @Option(help: ArgumentHelp("Annotators to give a row each per reply (comma-separated); default one unnamed row.", valueName: "names"))
    var annotators: String?
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if labelStudio && output == nil { throw ValidationError("--label-studio writes two files: give a folder with --output") }
    }

    func run() throws {
        let set = try Evalset.load(evalset)
        let rubric = try labelRubric(set)
        let store = try storeOptions.open()
        let run = try store.requireRun(runID)
        guard let eval = try store.evals(run: run.rowID, items: true).first(where: { $0.evalset == set.name && $0.status == "succeeded" })
        else {
            throw ValidationError(
                "run \(run.id) has no succeeded evaluation on \(set.name): run harrow eval \(run.id) --evalset \(evalset)")
        }
        let byID = Dictionary(set.items.map { ($0.id, $0) }) { a, _ in a }
        let items = eval.items.map { i -> LabelItem in
            var prompt = i.prompt ?? byID[i.id]?.prompt ?? ""
            var reference: String?
            if case .judged(let messages, let ref, _, _)? = byID[i.id]?.kind {
                reference = ref
                if let messages { prompt = LabelItem.flatten(messages: messages.map { ($0.role, $0.content) }) }
            }
            return LabelItem(
                run: run.id, evalset: set.name, item: i.id, taskType: i.taskType, prompt: prompt, reply: i.text ?? "", reference: reference,
                rubric: rubric)
        }
        if labelStudio, let output {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try LabelStudio.tasks(items).write(toFile: output + "/tasks.json", atomically: true, encoding: .utf8)
            try LabelStudio.config(items).write(toFile: output + "/config.xml", atomically: true, encoding: .utf8)
            printError("wrote \(items.count) tasks to \(output)/tasks.json and the labeling config to \(output)/config.xml")
        } else {
            let csv = try LabelCSV.export(items, annotators: annotators.map { $0.split(separator: ",").map(String.init) } ?? [])
            if let output {
                try csv.write(toFile: output, atomically: true, encoding: .utf8)
                printError("wrote \(items.count) replies to \(output)")
            } else {
                print(csv, terminator: "")
            }
        }
        printError("the rubric, for the people who score:")
        for d in set.rubric?.dimensions ?? [] {
            let levels = d.levels.keys.sorted().map { "\($0) \(d.levels[$0]!)" }.joined(separator: "; ")
            printError("  \(d.name) \(d.low)–\(d.high): \(levels)")
        }
    }
}

struct LabelsImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Read people's scores from a filled CSV or a Label Studio JSON export into the store.")

    @Argument(help: "A filled CSV (.csv) or a Label Studio export (.json).") var file: String
    @Option(
        name: .customLong("evalset"),
        help: ArgumentHelp("The judged evalset folder(s) the replies come from (repeatable).", valueName: "dir"))
    var evalsets: [String]
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if evalsets.isEmpty { throw ValidationError("give the judged evalset folder with --evalset DIR") }
    }

    func run() throws {
        var rubrics: [String: [LabelDimension]] = [:]
        for dir in evalsets {
            let set = try Evalset.load(dir)
            rubrics[set.name] = try labelRubric(set)
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let labels =
            file.hasSuffix(".json")
            ? try LabelStudio.labels(data, file: file, rubrics: rubrics)
            : try LabelCSV.labels(String(decoding: data, as: UTF8.self), file: file, rubrics: rubrics)
        let store = try storeOptions.openForWriting()
        for run in Set(labels.map(\.run)) { _ = try store.requireRun(run) }
        let rows = labels.flatMap { l in
            l.scores.map {
                StoredLabel(
                    run: l.run, evalset: l.evalset, item: l.item, annotator: l.annotator, dimension: $0.key, score: Double($0.value),
                    comment: l.comment)
            }
        }
        try store.save(labels: rows)
        let summary = LabelsImportJSON(
            file: file, labels: labels.count, scores: rows.count, annotators: Set(labels.map(\.annotator)).sorted(),
            runs: Set(labels.map(\.run)).sorted())
        print(
            json
                ? jsonText(summary)
                : "imported \(rows.count) scores of \(labels.count) replies by \(summary.annotators.joined(separator: ", ")) "
                    + "(runs \(summary.runs.joined(separator: ", "))); see harrow labels agreement RUN --evalset DIR")
    }
}

struct LabelsImportJSON: Encodable {
    var file: String, labels: Int, scores: Int, annotators: [String], runs: [String]
}

struct LabelsAgreement: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agreement",
        abstract: "How far the judge agrees with people on runs' replies, per dimension (Cohen's and Fleiss' kappa).")

    @Argument(help: "Run ids (or unique prefixes, or tags); their labelled replies are pooled.") var runIDs: [String]
    @Option(help: ArgumentHelp("The judged evalset folder.", valueName: "dir")) var evalset: String
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let set = try Evalset.load(evalset)
        let rubric = try labelRubric(set)
        let store = try storeOptions.open()
        var runs: [Run] = []
        for id in runIDs { runs.append(try store.requireRun(id)) }
        let results = try agreement(runs: runs, set: set, rubric: rubric, store: store)
        let named = runs.map(\.id).joined(separator: ", ")
        if json {
            print(jsonText(results.map(AgreementJSON.init)))
            return
        }
        guard let first = results.first, first.items > 0 else {
            print("no labels for \(named) on \(set.name): harrow labels export RUN --evalset \(evalset), then import them")
            return
        }
        func show(_ k: Agreement.Kappa?) -> String {
            guard let k else { return "–" }
            guard let v = k.value else { return "undefined" }
            return String(format: "%.2f (%@)", v, k.words ?? "")
        }
        let rows = results.map { a in
            [
                a.dimension, String(a.items), String(a.annotators), show(a.betweenPeople),
                show(a.judgeQuadratic) + (a.judgeInterval.map { String(format: " [%.2f, %.2f]", $0.low, $0.high) } ?? ""),
                show(a.judgeExact)
            ]
        }
        print("\(set.name) on \(named), judged by \(set.judge?.name ?? "?"):")
        print(
            TextTable.render(
                header: ["dimension", "replies", "people", "among people (Fleiss)", "judge vs people (quadratic)", "exact"], rows: rows
            ).joined(separator: "\n"))
    }

    /// Each reply is keyed by its run and item, so several runs' replies pool.
    func agreement(runs: [Run], set: Evalset, rubric: [LabelDimension], store: Store) throws -> [JudgeAgreement] {
        var labels: [StoredLabel] = [], judged: [(run: String, item: StoredEval.Item)] = []
        for run in runs {
            labels += try store.labels(run: run.id, evalset: set.name)
            judged += (try store.evals(run: run.rowID, items: true).first { $0.evalset == set.name }?.items ?? []).map { (run.id, $0) }
        }
        return rubric.map { d in
            var byItem: [String: [String: Int]] = [:]
            for l in labels where l.dimension == d.name { byItem["\(l.run)/\(l.item)", default: [:]][l.annotator] = Int(l.score) }
            let judge = Dictionary(judged.compactMap { r, i in i.scores?[d.name].map { ("\(r)/\(i.id)", Int($0)) } }) { a, _ in a }
            return JudgeAgreement.measure(dimension: d.name, labels: byItem, judge: judge)
        }
    }
}

struct AgreementJSON: Encodable {
    struct KappaJSON: Encodable {
        var value: Double?, items: Int, undefined: String?, words: String?
        init?(_ k: Agreement.Kappa?) {
            guard let k else { return nil }
            value = k.value; items = k.items; undefined = k.undefined; words = k.words
        }
    }
    var dimension: String, replies: Int, annotators: Int
    var betweenPeople: KappaJSON?, judgeQuadratic: KappaJSON?, judgeInterval: [Double]?, judgeExact: KappaJSON?
    enum CodingKeys: String, CodingKey {
        case dimension, replies, annotators, betweenPeople = "between_people", judgeQuadratic = "judge_quadratic"
        case judgeInterval = "judge_interval", judgeExact = "judge_exact"
    }
    init(_ a: JudgeAgreement) {
        dimension = a.dimension; replies = a.items; annotators = a.annotators
        betweenPeople = KappaJSON(a.betweenPeople); judgeQuadratic = KappaJSON(a.judgeQuadratic)
        judgeInterval = a.judgeInterval.map { [$0.low, $0.high] }; judgeExact = KappaJSON(a.judgeExact)
    }
}
