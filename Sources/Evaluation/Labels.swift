import Foundation
import HarrowCore

// Human labels of judged replies (docs/DESIGN.md "Judged evalsets"): the files people fill in, as CSV or as a Label
// Studio project, and what comes back from them. Pure: text in, text out; reading and writing files is the caller's.

/// One dimension of a judged evalset's rubric, as a label file shows it.
public struct LabelDimension: Sendable, Equatable {
    public var name: String
    public var scale: ClosedRange<Int>
    /// Descriptions of some levels (1: "harmful", 5: "harmless"); a level without one shows only its number.
    public var levels: [Int: String]

    public init(name: String, scale: ClosedRange<Int>, levels: [Int: String] = [:]) {
        self.name = name
        self.scale = scale
        self.levels = levels
    }
}

/// One reply to label: where it comes from, what was asked, what the model said, and the rubric to score it on.
public struct LabelItem: Sendable, Equatable {
    public var run: String
    public var evalset: String
    public var item: String
    public var taskType: String
    /// The prompt as text; a chat prompt flattened by `flatten(messages:)`.
    public var prompt: String
    public var reply: String
    public var reference: String?
    public var rubric: [LabelDimension]

    public init(
        run: String, evalset: String, item: String, taskType: String, prompt: String, reply: String, reference: String? = nil,
        rubric: [LabelDimension]
    ) {
        self.run = run
        self.evalset = evalset
        self.item = item
        self.taskType = taskType
        self.prompt = prompt
        self.reply = reply
        self.reference = reference
        self.rubric = rubric
    }

    /// Chat messages as one text for a person to read: each turn "role: content", turns a blank line apart.
    public static func flatten(messages: [(role: String, content: String)]) -> String {
        messages.map { "\($0.role): \($0.content)" }.joined(separator: "\n\n")
    }
}

/// One person's scores of one reply.
public struct Label: Sendable, Equatable {
    public var run: String
    public var evalset: String
    public var item: String
    public var annotator: String
    /// Dimension → score; a dimension left blank is absent.
    public var scores: [String: Int]
    public var comment: String?

    public init(run: String, evalset: String, item: String, annotator: String, scores: [String: Int], comment: String? = nil) {
        self.run = run
        self.evalset = evalset
        self.item = item
        self.annotator = annotator
        self.scores = scores
        self.comment = comment
    }
}

/// A label file that cannot be written or read; the message names the file and the place in it.
public struct LabelError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Names a rubric dimension cannot have: they are the label files' other columns and Label Studio's other tags.
let reservedLabelNames: Set<String> = ["run", "evalset", "item", "task_type", "prompt", "reply", "reference", "annotator", "comment"]

/// The dimensions of all the items, in the order first seen; a dimension must have one scale everywhere.
func labelDimensions(_ items: [LabelItem]) throws(LabelError) -> [LabelDimension] {
    var out: [LabelDimension] = []
    var seen: [String: (LabelDimension, String)] = [:]
    for item in items {
        for d in item.rubric {
            if reservedLabelNames.contains(d.name) {
                throw LabelError("evalset '\(item.evalset)': a rubric dimension cannot be called '\(d.name)' (a column of the label file)")
            }
            if let (first, evalset) = seen[d.name] {
                if first.scale != d.scale {
                    throw LabelError(
                        "dimension '\(d.name)' is scored \(first.scale.lowerBound)…\(first.scale.upperBound) in evalset '\(evalset)' "
                            + "and \(d.scale.lowerBound)…\(d.scale.upperBound) in '\(item.evalset)': label them in separate files")
                }
            } else {
                seen[d.name] = (d, item.evalset)
                out.append(d)
            }
        }
    }
    return out
}

/// A score cell or value as a whole number within the dimension's scale.
func labelScore(_ text: String, _ dimension: LabelDimension) -> Result<Int, LabelError> {
    let t = text.trimmingCharacters(in: .whitespaces)
    let scale = "\(dimension.scale.lowerBound)…\(dimension.scale.upperBound)"
    // A spreadsheet may write 4 as "4.0".
    guard let n = Int(t) ?? Double(t).flatMap({ $0.rounded() == $0 && abs($0) < 1e9 ? Int($0) : nil }) else {
        return .failure(LabelError("'\(t)' is not a whole number in \(scale)"))
    }
    guard dimension.scale.contains(n) else { return .failure(LabelError("\(n) is outside the scale \(scale)")) }
    return .success(n)
}

// MARK: - CSV

/// The CSV label file: one row per reply (or per reply and annotator), the reply's text, then an `annotator` column,
/// one empty column per rubric dimension and a `comment` column for people to fill in. RFC 4180
/// (https://www.rfc-editor.org/rfc/rfc4180): CRLF between records, a field quoted when it holds a comma, quote, CR or
/// LF, a quote inside doubled.
public enum LabelCSV {
    public static let leadingColumns = ["run", "evalset", "item", "task_type", "prompt", "reply", "reference", "annotator"]

    /// The file to fill in: one row per item, or with `annotators` one row per item and annotator, the annotator
    /// filled in. The dimension columns are those of every item's rubric, in the order first seen.
    public static func export(_ items: [LabelItem], annotators: [String] = []) throws(LabelError) -> String {
        let dimensions = try labelDimensions(items)
        var out = record(leadingColumns + dimensions.map(\.name) + ["comment"])
        let blanks = [String](repeating: "", count: dimensions.count + 1)
        for item in items {
            for annotator in annotators.isEmpty ? [""] : annotators {
                let text = [item.prompt, item.reply, item.reference ?? ""].map(defused)
                out += record([item.run, item.evalset, item.item, item.taskType] + text + [annotator] + blanks)
            }
        }
        return out
    }

    /// The labels in a filled file. `rubrics` maps each evalset named in the file to its rubric. Rows are (run,
    /// evalset, item, annotator); several rows per item are several annotators. A blank dimension cell is not rated;
    /// a row with no score and no comment is not filled in and is skipped. The text columns (task_type, prompt,
    /// reply, reference) are not read back and may be deleted. A problem is an error at `file:line`, naming the column.
    public static func labels(_ text: String, file: String, rubrics: [String: [LabelDimension]]) throws(LabelError) -> [Label] {
        let records = try CSVReader.records(text, file: file)
        guard let header = records.first else { throw LabelError("\(file): empty; the first line names the columns") }
        var column: [String: Int] = [:]
        let dimensionNames = Set(rubrics.values.joined().map(\.name))
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        for (i, name) in names.enumerated() {
            guard leadingColumns.contains(name) || name == "comment" || dimensionNames.contains(name) else {
                let known = leadingColumns + dimensionNames.sorted() + ["comment"]
                throw LabelError(
                    "\(file):\(header.lines[i]): column \(i + 1) '\(name)' is neither a label column nor a rubric dimension"
                        + (didYouMean(name, known).map { " (\($0))" } ?? ""))
            }
            guard column[name] == nil else { throw LabelError("\(file):\(header.lines[i]): column '\(name)' appears twice") }
            column[name] = i
        }
        for required in ["run", "evalset", "item", "annotator"] where column[required] == nil {
            throw LabelError("\(file):\(header.line): no '\(required)' column")
        }
        var labels: [Label] = []
        var firstLine: [[String]: Int] = [:]
        for row in records.dropFirst() {
            guard row.fields.count == header.fields.count else {
                throw LabelError("\(file):\(row.line): \(row.fields.count) fields where the header has \(header.fields.count)")
            }
            func cell(_ name: String) -> String {
                column[name].map { row.fields[$0].trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            }
            func fail(_ name: String, _ message: String) -> LabelError {
                let i = column[name]!
                return LabelError("\(file):\(row.lines[i]): \(name) (column \(i + 1)): \(message)")
            }
            let evalset = cell("evalset")
            var scores: [String: Int] = [:]
            for (i, name) in names.enumerated() where dimensionNames.contains(name) && !cell(name).isEmpty {
                guard let rubric = rubrics[evalset] else {
                    throw fail("evalset", evalset.isEmpty ? "empty" : "no rubric for evalset '\(evalset)'")
                }
                guard let dimension = rubric.first(where: { $0.name == name }) else {
                    throw fail(name, "not a dimension of evalset '\(evalset)' (\(rubric.map(\.name).joined(separator: ", ")))")
                }
                switch labelScore(row.fields[i], dimension) {
                case .success(let n): scores[name] = n
                case .failure(let e): throw fail(name, e.description)
                }
            }
            let comment = cell("comment")
            if scores.isEmpty && comment.isEmpty { continue }
            for name in ["run", "evalset", "item", "annotator"] where cell(name).isEmpty { throw fail(name, "empty") }
            guard rubrics[evalset] != nil else { throw fail("evalset", "no rubric for evalset '\(evalset)'") }
            let key = [cell("run"), evalset, cell("item"), cell("annotator")]
            if let earlier = firstLine[key] {
                throw LabelError("\(file):\(row.line): \(cell("annotator")) labelled this reply already on line \(earlier)")
            }
            firstLine[key] = row.line
            labels.append(
                Label(
                    run: key[0], evalset: evalset, item: key[2], annotator: key[3], scores: scores,
                    comment: comment.isEmpty ? nil : comment))
        }
        return labels
    }

    /// One record: fields joined by commas, each quoted when it must be, and CRLF.
    static func record(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }

    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A spreadsheet reads a cell that starts with = + - or @ as a formula, so a reply like "=HYPERLINK(…)" or a
    /// bulleted "- step one" would run or show an error; a leading apostrophe makes it text
    /// (https://owasp.org/www-community/attacks/CSV_Injection). Only the text columns, which are not read back.
    static func defused(_ s: String) -> String {
        guard let c = s.first, "=+-@".contains(c) else { return s }
        return "'" + s
    }
}

/// An RFC 4180 reader that knows the line each field starts on. SwiftCSV 0.10.0 (swiftcsv/SwiftCSV, mirrored here)
/// keeps newlines inside quotes, but it drops the leading spaces of an unquoted field, drops an empty last field
/// when the file does not end in a newline (the empty `comment` column), accepts a quote that never closes, and
/// gives no line numbers, which errors in a filled file need: so this small reader instead.
enum CSVReader {
    struct Record {
        var fields: [String]
        /// The line each field starts on.
        var lines: [Int]
        var line: Int { lines.first ?? 1 }
    }

    static func records(_ text: String, file: String) throws(LabelError) -> [Record] {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }  // the byte-order mark spreadsheets write
        var records: [Record] = []
        var fields: [String] = [], lines: [Int] = []
        var field = String.UnicodeScalarView()
        var line = 1, fieldLine = 1
        var quoted = false, closed = false, quoteLine = 1
        func endField() {
            fields.append(String(field))
            lines.append(fieldLine)
            field = String.UnicodeScalarView()
            closed = false
            fieldLine = line
        }
        func endRecord() {
            endField()
            // A blank line is no record.
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(fields: fields, lines: lines)) }
            fields = []
            lines = []
        }
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < scalars.count && scalars[i + 1] == "\"" {
                        field.append(c)
                        i += 1
                    } else {
                        quoted = false
                        closed = true
                    }
                } else {
                    if c == "\n" || (c == "\r" && !(i + 1 < scalars.count && scalars[i + 1] == "\n")) { line += 1 }
                    field.append(c)
                }
            } else if c == "," {
                endField()
            } else if c == "\n" || c == "\r" {
                if c == "\r" && i + 1 < scalars.count && scalars[i + 1] == "\n" { i += 1 }
                line += 1
                endRecord()
            } else if closed {
                throw LabelError("\(file):\(line): text after the closing quote of field \(fields.count + 1)")
            } else if c == "\"" {
                guard field.isEmpty else {
                    throw LabelError(
                        "\(file):\(line): a quote inside unquoted field \(fields.count + 1) (quote the field and double the quote)")
                }
                quoted = true
                quoteLine = line
            } else {
                field.append(c)
            }
            i += 1
        }
        if quoted { throw LabelError("\(file):\(quoteLine): the quote that opens field \(fields.count + 1) is never closed") }
        if !field.isEmpty || !fields.isEmpty || closed { endRecord() }
        return records
    }
}

// MARK: - Label Studio

/// A Label Studio project to label in: the tasks to import and the labeling config, and the labels in its JSON export.
///
/// Formats, from HumanSignal/label-studio: tasks are a JSON list of `{"data": {…}}` whose keys the config's `$name`
/// variables read (https://labelstud.io/guide/tasks, "Basic Label Studio JSON format"); `<Rating name toName
/// maxRating>` rates 1…maxRating (docs/source/tags/rating.md, commit 62d4b0c7); `<Choices>` of `<Choice value
/// alias hint>`, the alias replacing the value in results (docs/source/tags/choices.md commit 621a3228,
/// docs/source/tags/choice.md commit 69a009de); `<TextArea>` (docs/source/tags/textarea.md commit 6b5e99d3). The
/// export is a list of tasks with `annotations`, each with `completed_by` (a user id, docs/source/includes/task_format.md
/// commit 321ee1d9, or `{id, email, first_name, last_name}`, label_studio/data_export/serializers.py commit 5eb2a6c8),
/// `was_cancelled` and `result` entries `{from_name, to_name, type, value}`: `{"rating": 4}`
/// (web/libs/editor/tests/integration/data/control_tags/per-item.ts commit b8dc9616), `{"choices": ["4"]}`,
/// `{"text": ["…"]}` (docs/source/includes/result_format.md).
public enum LabelStudio {
    /// The tasks to import: one `{"data": {run, evalset, item, task_type, prompt, reply, reference}}` per item,
    /// `reference` empty where there is none (imported data must hold every variable the config uses).
    public static func tasks(_ items: [LabelItem]) -> String {
        let rows = items.map { item in
            let data = [
                ("run", item.run), ("evalset", item.evalset), ("item", item.item), ("task_type", item.taskType),
                ("prompt", item.prompt), ("reply", item.reply), ("reference", item.reference ?? "")
            ]
            return "  {\"data\": {" + data.map { "\(JSONText.quote($0.0)): \(JSONText.quote($0.1))" }.joined(separator: ", ") + "}}"
        }
        return rows.isEmpty ? "[]\n" : "[\n" + rows.joined(separator: ",\n") + "\n]\n"
    }

    /// The labeling config: the prompt, the reply and (when an item has one) the reference as `<Text>`, then per
    /// dimension a `<Rating>` (a 1…N scale with no level described: stars say all there is) or `<Choices>`, one
    /// radio button per level showing its description, its alias the bare number; then a `<TextArea>` comment.
    public static func config(_ items: [LabelItem]) throws(LabelError) -> String {
        let dimensions = try labelDimensions(items)
        func attr(_ s: String) -> String { "\"" + Markup.escape(s) + "\"" }
        var x = "<View>\n"
        var texts = [("prompt", "Prompt"), ("reply", "Reply")]
        if items.contains(where: { $0.reference != nil }) { texts.append(("reference", "Reference")) }
        for (name, title) in texts {
            x += "  <Header value=\(attr(title))/>\n  <Text name=\(attr(name)) value=\(attr("$" + name))/>\n"
        }
        for d in dimensions {
            x += "  <Header value=\(attr(d.name))/>\n"
            if d.scale.lowerBound == 1 && d.levels.isEmpty {
                x += "  <Rating name=\(attr(d.name)) toName=\"reply\" maxRating=\"\(d.scale.upperBound)\"/>\n"
            } else {
                x += "  <Choices name=\(attr(d.name)) toName=\"reply\" choice=\"single-radio\">\n"
                for level in d.scale {
                    let shown = d.levels[level].map { "\(level) — \($0)" } ?? "\(level)"
                    x += "    <Choice value=\(attr(shown)) alias=\"\(level)\"/>\n"
                }
                x += "  </Choices>\n"
            }
        }
        x += "  <Header value=\"Comment\"/>\n  <TextArea name=\"comment\" toName=\"reply\" rows=\"2\"/>\n</View>\n"
        return x
    }

    /// The labels in a JSON export (a list of tasks, or one task). `rubrics` maps each evalset to its rubric. Cancelled
    /// (skipped) annotations and annotations with no score and no comment are left out; the annotator is the
    /// `completed_by` user's email, or else their id. A problem is an error naming the file, task and annotation.
    public static func labels(_ export: Data, file: String, rubrics: [String: [LabelDimension]]) throws(LabelError) -> [Label] {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: export, options: .fragmentsAllowed) } catch {
            let e = error as NSError
            throw LabelError("\(file): not JSON (\(e.userInfo[NSDebugDescriptionErrorKey] as? String ?? e.localizedDescription))")
        }
        guard let tasks = (root as? [Any]) ?? (root is [String: Any] ? [root] : nil) else {
            throw LabelError("\(file): a Label Studio export is a JSON list of tasks")
        }
        var labels: [Label] = []
        var seen = Set<[String]>()
        for (t, task) in tasks.enumerated() {
            let taskObject = task as? [String: Any]
            let taskName = "task \(t + 1)" + (taskObject?["id"].map { " (id \(jsonText($0)))" } ?? "")
            guard let taskObject, let data = taskObject["data"] as? [String: Any] else {
                throw LabelError("\(file): \(taskName): not a task with \"data\"")
            }
            var key: [String: String] = [:]
            for name in ["run", "evalset", "item"] {
                guard let v = data[name].map(jsonText), !v.isEmpty else {
                    throw LabelError("\(file): \(taskName): data has no '\(name)' (was it exported by harrow?)")
                }
                key[name] = v
            }
            let evalset = key["evalset"]!
            guard let rubric = rubrics[evalset] else { throw LabelError("\(file): \(taskName): no rubric for evalset '\(evalset)'") }
            for (a, annotation) in ((taskObject["annotations"] as? [Any]) ?? []).enumerated() {
                guard let annotation = annotation as? [String: Any] else {
                    throw LabelError("\(file): \(taskName): annotation \(a + 1) is not an object")
                }
                let place = "\(file): \(taskName), annotation " + (annotation["id"].map(jsonText) ?? "\(a + 1)")
                if annotation["was_cancelled"] as? Bool == true { continue }
                let annotator: String
                switch annotation["completed_by"] {
                case let user as [String: Any]:
                    let email = (user["email"] as? String) ?? ""
                    annotator = email.isEmpty ? user["id"].map(jsonText) ?? "" : email
                case let other?: annotator = jsonText(other)
                case nil: annotator = ""
                }
                guard !annotator.isEmpty else { throw LabelError("\(place): no completed_by") }
                var scores: [String: Int] = [:]
                var comment: [String] = []
                for (r, result) in ((annotation["result"] as? [Any]) ?? []).enumerated() {
                    guard let result = result as? [String: Any], let from = result["from_name"] as? String else {
                        throw LabelError("\(place): result \(r + 1) has no from_name")
                    }
                    let value = result["value"] as? [String: Any] ?? [:]
                    if from == "comment" {
                        comment += (value["text"] as? [String]) ?? []
                        continue
                    }
                    guard let dimension = rubric.first(where: { $0.name == from }) else {
                        throw LabelError(
                            "\(place): '\(from)' is neither a dimension of evalset '\(evalset)' "
                                + "(\(rubric.map(\.name).joined(separator: ", "))) nor comment")
                    }
                    let type = result["type"] as? String ?? ""
                    let raw: String
                    switch type {
                    case "rating":
                        guard let n = value["rating"] as? NSNumber else { throw LabelError("\(place): \(from): rating has no number") }
                        raw = n.stringValue
                    case "choices":
                        guard let choices = value["choices"] as? [String], choices.count == 1 else {
                            throw LabelError("\(place): \(from): choices must hold exactly one choice")
                        }
                        // "4", or the shown "4 — …" where the alias was lost.
                        raw = String(choices[0].prefix { !$0.isWhitespace })
                    default:
                        throw LabelError("\(place): \(from): a result of type '\(type)', where rating or choices was expected")
                    }
                    switch labelScore(raw, dimension) {
                    case .success(let n): scores[from] = n
                    case .failure(let e): throw LabelError("\(place): \(from): \(e.description)")
                    }
                }
                let text = comment.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                if scores.isEmpty && text.isEmpty { continue }
                guard seen.insert([key["run"]!, evalset, key["item"]!, annotator]).inserted else {
                    throw LabelError("\(place): \(annotator) labelled this reply already")
                }
                labels.append(
                    Label(
                        run: key["run"]!, evalset: evalset, item: key["item"]!, annotator: annotator, scores: scores,
                        comment: text.isEmpty ? nil : text))
            }
        }
        return labels
    }

    /// A JSON scalar as text: a string as it is, a number as written (ids are often numbers).
    static func jsonText(_ v: Any) -> String {
        if let s = v as? String { return s }
        if let n = v as? NSNumber { return n.stringValue }
        return "\(v)"
    }
}
