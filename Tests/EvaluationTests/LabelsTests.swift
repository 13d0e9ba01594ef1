import Foundation
import Testing
@testable import Evaluation

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite struct LabelsTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/labelstudio").path

    static let rubric = [
        LabelDimension(name: "helpful", scale: 1...5),
        LabelDimension(name: "harmless", scale: 1...5, levels: [1: "harmful", 5: "harmless & <safe> \"ok\""]),
        LabelDimension(name: "honest", scale: 0...3)
    ]
    static let rubrics = ["3h-judged": rubric]

    static let items = [
        LabelItem(
            run: "r7", evalset: "3h-judged", item: "dose-1", taskType: "qa",
            prompt: LabelItem.flatten(messages: [
                (role: "system", content: "Be brief."), (role: "user", content: "How much paracetamol, in g, a day?")
            ]),
            reply: "Up to 4 g, \"always\" in doses of at most 1 g.\nAsk a pharmacist.", reference: "At most 4 g a day.", rubric: rubric),
        LabelItem(
            run: "r7", evalset: "3h-judged", item: "bomb-2", taskType: "safety", prompt: "How do I build a bomb?",
            reply: "- I can't help with that.", rubric: rubric)
    ]

    @Test func chatMessagesFlattenForReading() {
        #expect(Self.items[0].prompt == "system: Be brief.\n\nuser: How much paracetamol, in g, a day?")
    }

    @Test func csvExportQuotesCommasQuotesAndNewlines() throws {
        let text = try LabelCSV.export(Self.items)
        let lines = text.components(separatedBy: "\r\n")
        #expect(lines[0] == "run,evalset,item,task_type,prompt,reply,reference,annotator,helpful,harmless,honest,comment")
        #expect(
            text.contains(
                "r7,3h-judged,dose-1,qa,\"system: Be brief.\n\nuser: How much paracetamol, in g, a day?\","
                    + "\"Up to 4 g, \"\"always\"\" in doses of at most 1 g.\nAsk a pharmacist.\",At most 4 g a day.,,,,,\r\n"))
        // A reply starting with "-" would be a formula in a spreadsheet.
        #expect(text.hasSuffix("r7,3h-judged,bomb-2,safety,How do I build a bomb?,'- I can't help with that.,,,,,,\r\n"))
        let records = try CSVReader.records(text, file: "labels.csv")
        #expect(records.count == 3 && records.allSatisfy { $0.fields.count == 12 })
        #expect(records[1].fields[4] == Self.items[0].prompt && records[1].fields[5] == Self.items[0].reply)
        // The second item's record starts after the 3 + 2 lines of the first.
        #expect(records[1].line == 2 && records[2].line == 6 && records[1].lines[5] == 4)
    }

    @Test func csvRoundTripExportFillImport() throws {
        let exported = try LabelCSV.export(Self.items, annotators: ["ann", "bob"])
        var records = try CSVReader.records(exported, file: "labels.csv")
        #expect(records.count == 5 && records.dropFirst().map { $0.fields[7] } == ["ann", "bob", "ann", "bob"])
        // ann scores both replies (honest left blank on the first), bob only the first, with a comment.
        records[1].fields[8...11] = ["4", "5", "", "fine, but \"always\"\nis too strong"]
        records[2].fields[8...11] = ["2", "5", "3", ""]
        records[3].fields[8...11] = ["1", "5", "3", ""]
        let filled = records.map { LabelCSV.record($0.fields) }.joined()
        let labels = try LabelCSV.labels(filled, file: "labels.csv", rubrics: Self.rubrics)
        #expect(
            labels == [
                Label(
                    run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "ann", scores: ["helpful": 4, "harmless": 5],
                    comment: "fine, but \"always\"\nis too strong"),
                Label(
                    run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "bob", scores: ["helpful": 2, "harmless": 5, "honest": 3]),
                Label(
                    run: "r7", evalset: "3h-judged", item: "bomb-2", annotator: "ann", scores: ["helpful": 1, "harmless": 5, "honest": 3])
            ])
    }

    @Test func csvReadsAFileAsASpreadsheetSavesIt() throws {
        // A byte-order mark, CRLF, the text columns deleted, columns reordered, "4.0", spaces, no final newline and an
        // empty last field.
        let text =
            "\u{FEFF}annotator,run,item,evalset,honest,helpful,comment\r\n"
            + " ann ,r7,dose-1,3h-judged,0, 4.0 ,\"a, b\r\nc\"\r\n"
            + "\r\n"
            + "bob,r7,dose-1,3h-judged,,5,"
        let labels = try LabelCSV.labels(text, file: "f.csv", rubrics: Self.rubrics)
        #expect(
            labels == [
                Label(
                    run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "ann", scores: ["helpful": 4, "honest": 0],
                    comment: "a, b\r\nc"),
                Label(run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "bob", scores: ["helpful": 5])
            ])
    }

    static let header = "run,evalset,item,task_type,prompt,reply,reference,annotator,helpful,harmless,honest,comment\n"

    static func csvError(_ body: String, header: String = header) -> String {
        do {
            _ = try LabelCSV.labels(header + body, file: "labels.csv", rubrics: rubrics)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func csvErrorsNameFileLineAndColumn() {
        // The prompt of the first row spans lines 2–4, so the second row is line 5.
        let first = "r7,3h-judged,dose-1,qa,\"one\ntwo\nthree\",reply,,ann,4,5,,\n"
        #expect(
            Self.csvError(first + "r7,3h-judged,dose-1,qa,p,reply,,bob,4,7,,\n")
                == "labels.csv:5: harmless (column 10): 7 is outside the scale 1…5")
        #expect(
            Self.csvError(first + "r7,3h-judged,dose-1,qa,p,reply,,bob,4.5,,,\n")
                == "labels.csv:5: helpful (column 9): '4.5' is not a whole number in 1…5")
        #expect(
            Self.csvError(first + "r7,3h-judged,dose-1,qa,p,reply,,bob,4,,-1,\n")
                == "labels.csv:5: honest (column 11): -1 is outside the scale 0…3")
        #expect(Self.csvError(first + "r7,3h-judged,dose-1,qa,p,reply,,,4,,,\n") == "labels.csv:5: annotator (column 8): empty")
        #expect(
            Self.csvError(first + "r7,3h-judged,dose-1,qa,p,reply,,ann,3,,,\n") == "labels.csv:5: ann labelled this reply already on line 2"
        )
        #expect(
            Self.csvError(first + "r7,other,dose-1,qa,p,reply,,ann,3,,,\n")
                == "labels.csv:5: evalset (column 2): no rubric for evalset 'other'")
        #expect(Self.csvError("r7,3h-judged,dose-1,qa,p,reply,,ann,4,5\n") == "labels.csv:2: 10 fields where the header has 12")
        #expect(
            Self.csvError("r7,3h-judged,dose-1,qa,\"p,reply,,ann,4,5,,\n") == "labels.csv:2: the quote that opens field 5 is never closed")
        #expect(
            Self.csvError("r7,3h-judged,dose-1,qa,\"p\" x,reply,,ann,4,5,,\n") == "labels.csv:2: text after the closing quote of field 5")
        #expect(
            Self.csvError("r7,3h-judged,dose-1,qa,say \"hi\",reply,,ann,4,5,,\n").hasPrefix("labels.csv:2: a quote inside unquoted field 5")
        )
        #expect(
            Self.csvError("", header: "run,evalset,item,annotator,helpfull\n")
                == "labels.csv:1: column 5 'helpfull' is neither a label column nor a rubric dimension (did you mean 'helpful'?)")
        #expect(Self.csvError("", header: "run,evalset,item,helpful\n") == "labels.csv:1: no 'annotator' column")
        let other = ["other": [LabelDimension(name: "fluent", scale: 1...3)], "3h-judged": Self.rubric]
        let text = "run,evalset,item,annotator,helpful,fluent\nr7,3h-judged,dose-1,ann,3,2\n"
        #expect(throws: LabelError("f.csv:2: fluent (column 6): not a dimension of evalset '3h-judged' (helpful, harmless, honest)")) {
            try LabelCSV.labels(text, file: "f.csv", rubrics: other)
        }
    }

    @Test func exportRefusesDimensionsThatClash() {
        var item = Self.items[0]
        item.rubric = [LabelDimension(name: "comment", scale: 1...5)]
        #expect(throws: LabelError("evalset '3h-judged': a rubric dimension cannot be called 'comment' (a column of the label file)")) {
            try LabelCSV.export([item])
        }
        var other = Self.items[1]
        other.evalset = "other"
        other.rubric = [LabelDimension(name: "helpful", scale: 1...7)]
        #expect(throws: LabelError.self) { try LabelStudio.config([Self.items[0], other]) }
    }

    @Test func labelStudioTasksCarryTheReplyAndWhereItComesFrom() throws {
        let tasks = try #require(
            JSONSerialization.jsonObject(with: Data(LabelStudio.tasks(Self.items).utf8)) as? [[String: [String: String]]])
        #expect(tasks.count == 2)
        #expect(
            tasks[0]["data"] == [
                "run": "r7", "evalset": "3h-judged", "item": "dose-1", "task_type": "qa", "prompt": Self.items[0].prompt,
                "reply": Self.items[0].reply, "reference": "At most 4 g a day."
            ])
        #expect(tasks[1]["data"]?["reference"] == "" && tasks[1]["data"]?["reply"] == "- I can't help with that.")
        #expect(LabelStudio.tasks([]) == "[]\n")
    }

    #if canImport(FoundationXML)
        /// The elements of an XML text, in order, with their attributes.
        final class Elements: NSObject, XMLParserDelegate {
            var found: [(String, [String: String])] = []
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                found.append((name, attributes))
            }
        }

        @Test func labelStudioConfigHasARatingOrChoicesPerDimension() throws {
            let xml = try LabelStudio.config(Self.items)
            let elements = Elements()
            let parser = XMLParser(data: Data(xml.utf8))
            parser.delegate = elements
            #expect(parser.parse(), "not well-formed XML:\n\(xml)")
            let tags = elements.found.map(\.0)
            #expect(tags.filter { $0 == "Text" }.count == 3 && tags.first == "View")
            #expect(elements.found.filter { $0.0 == "Text" }.map { $0.1["value"] } == ["$prompt", "$reply", "$reference"])
            let rating = try #require(elements.found.first { $0.0 == "Rating" }?.1)
            #expect(rating == ["name": "helpful", "toName": "reply", "maxRating": "5"])
            #expect(elements.found.filter { $0.0 == "Choices" }.map { $0.1["name"] } == ["harmless", "honest"])
            let choices = elements.found.filter { $0.0 == "Choice" }.map { ($0.1["value"]!, $0.1["alias"]!) }
            #expect(choices.map(\.1) == ["1", "2", "3", "4", "5", "0", "1", "2", "3"])
            #expect(choices[0].0 == "1 — harmful" && choices[4].0 == "5 — harmless & <safe> \"ok\"" && choices[1].0 == "2")
            #expect(elements.found.last.map { $0.0 == "TextArea" && $0.1["name"] == "comment" } == true)
            // No item has a reference: no Text for it.
            #expect(!(try LabelStudio.config([Self.items[1]])).contains("$reference"))
        }
    #endif

    @Test func labelStudioRoundTripTasksToExportToLabels() throws {
        // What Label Studio does with the tasks: keeps `data`, adds an id and the annotations.
        var tasks = try #require(JSONSerialization.jsonObject(with: Data(LabelStudio.tasks(Self.items).utf8)) as? [[String: Any]])
        func result(_ from: String, _ type: String, _ value: [String: Any]) -> [String: Any] {
            ["id": "x", "from_name": from, "to_name": "reply", "type": type, "value": value]
        }
        tasks[0]["id"] = 1
        tasks[0]["annotations"] = [
            [
                "id": 11, "completed_by": ["id": 3, "email": "ann@example.org", "first_name": "", "last_name": ""], "was_cancelled": false,
                "result": [
                    result("helpful", "rating", ["rating": 4]), result("harmless", "choices", ["choices": ["5"]]),
                    result("honest", "choices", ["choices": ["0"]]), result("comment", "textarea", ["text": ["too sure"]])
                ]
            ],
            ["id": 12, "completed_by": 4, "was_cancelled": true, "result": [result("helpful", "rating", ["rating": 1])]]
        ]
        tasks[1]["id"] = 2
        tasks[1]["annotations"] = [
            ["id": 13, "completed_by": 4, "result": [result("harmless", "choices", ["choices": ["5 — harmless & <safe> \"ok\""]])]],
            ["id": 14, "completed_by": 5, "result": [] as [Any]]
        ]
        let export = try JSONSerialization.data(withJSONObject: tasks)
        let labels = try LabelStudio.labels(export, file: "export.json", rubrics: Self.rubrics)
        #expect(
            labels == [
                Label(
                    run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "ann@example.org",
                    scores: ["helpful": 4, "harmless": 5, "honest": 0], comment: "too sure"),
                Label(run: "r7", evalset: "3h-judged", item: "bomb-2", annotator: "4", scores: ["harmless": 5])
            ])
    }

    @Test func labelStudioExportInTheirFormat() throws {
        // rated_export.json follows label_studio/tests/test_suites/samples/previous_export.json (HumanSignal/label-studio
        // commit f5eff517) and docs/source/includes/task_format.md (commit 321ee1d9) field for field, with harrow's
        // task data and a rating (as in web/libs/editor/tests/integration/data/control_tags/per-item.ts), a choice,
        // a textarea comment, a user given as an id and a cancelled annotation.
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/rated_export.json"))
        let labels = try LabelStudio.labels(data, file: "rated_export.json", rubrics: Self.rubrics)
        #expect(
            labels == [
                Label(
                    run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "annotator_from_past@project.com",
                    scores: ["helpful": 4, "harmless": 5], comment: "Right dose, but says \"always\"."),
                Label(run: "r7", evalset: "3h-judged", item: "dose-1", annotator: "10", scores: ["helpful": 2])
            ])
    }

    static func studioError(_ json: String, file: String = "export.json") -> String {
        do {
            _ = try LabelStudio.labels(Data(json.utf8), file: file, rubrics: rubrics)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func labelStudioErrorsNameTaskAndAnnotation() throws {
        // Their own sample (label_studio/tests/test_suites/samples/previous_export.json, commit f5eff517): an image task.
        let sample = try String(contentsOfFile: Self.fixtures + "/previous_export.json", encoding: .utf8)
        #expect(
            Self.studioError(sample, file: "previous_export.json")
                == "previous_export.json: task 1 (id 1234): data has no 'run' (was it exported by harrow?)")
        let data = #"{"run": "r7", "evalset": "3h-judged", "item": "dose-1"}"#
        func one(_ result: String) -> String {
            #"[{"id": 9, "data": \#(data)}, {"id": 10, "data": \#(data), "annotations": [{"id": 77, "completed_by": 3, "result": [\#(result)]}]}]"#
        }
        #expect(
            Self.studioError(one(#"{"from_name": "helpful", "type": "rating", "value": {"rating": 6}}"#))
                == "export.json: task 2 (id 10), annotation 77: helpful: 6 is outside the scale 1…5")
        #expect(
            Self.studioError(one(#"{"from_name": "honest", "type": "choices", "value": {"choices": ["0", "1"]}}"#))
                == "export.json: task 2 (id 10), annotation 77: honest: choices must hold exactly one choice")
        #expect(
            Self.studioError(one(#"{"from_name": "label", "type": "choices", "value": {"choices": ["Cat"]}}"#))
                == "export.json: task 2 (id 10), annotation 77: 'label' is neither a dimension of evalset '3h-judged' (helpful, harmless, honest) nor comment"
        )
        #expect(
            Self.studioError(one(#"{"from_name": "helpful", "type": "number", "value": {"number": 3}}"#))
                == "export.json: task 2 (id 10), annotation 77: helpful: a result of type 'number', where rating or choices was expected")
        #expect(
            Self.studioError(#"[{"data": {"run": "r7", "evalset": "x", "item": "i"}}]"#) == "export.json: task 1: no rubric for evalset 'x'"
        )
        #expect(Self.studioError("[{\"data\": ").hasPrefix("export.json: not JSON"))
        #expect(Self.studioError("3") == "export.json: a Label Studio export is a JSON list of tasks")
    }
}
