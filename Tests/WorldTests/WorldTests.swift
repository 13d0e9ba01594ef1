import Foundation
import Testing
@testable import World

/// The repository root, found from this file's path (Tests/WorldTests/WorldTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func jsonObjects(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").map { (try! JSONSerialization.jsonObject(with: Data($0.utf8))) as! [String: Any] }
}

/// Every string value in a JSON value, depth first.
func strings(_ value: Any) -> [String] {
    switch value {
    case let s as String: return [s]
    case let a as [Any]: return a.flatMap(strings)
    case let d as [String: Any]: return d.keys.sorted().flatMap { strings(d[$0]!) }
    default: return []
    }
}

@Suite struct WorldTests {
    let files = Generator.files()
    func contents(_ path: String) -> String { files.first { $0.path == path }!.contents }

    @Test func regeneratingGivesTheShippedBytes() throws {
        let again = Generator.files()
        #expect(again == files, "two runs of the generator differ")
        for file in files {
            let url = repositoryRoot.appendingPathComponent(file.path)
            let shipped = try #require(FileManager.default.contents(atPath: url.path), "\(file.path) is missing: run harrow-train datagen")
            #expect(shipped == Data(file.contents.utf8), "\(file.path) differs from the generator: run harrow-train datagen")
        }
    }

    @Test func noEvaluationPromptAppearsInAnyTrainingFile() throws {
        // Both the decoded text and the raw bytes of every training file.
        var training = ""
        for path in Generator.trainingPaths {
            let text = contents(path)
            training += text
            for object in jsonObjects(text) { training += "\n" + strings(object).joined(separator: "\n") }
        }
        var prompts = 0
        for path in Generator.evalItemPaths {
            for item in jsonObjects(contents(path)) {
                let prompt = try #require(item["prompt"] as? String)
                #expect(!training.contains(prompt), "evaluation prompt found in training data: \(prompt)")
                prompts += 1
                // Compounds asked about in Honest items exist nowhere in training.
                if item["task_type"] as? String == "honesty/unknown", let choices = item["choices"] as? [String] {
                    let abstain = choices[item["answer"] as! Int]
                    let name = String(abstain.split(separator: " ")[7].dropLast())
                    #expect(abstain.hasPrefix("I don't know of a drug called \(name),"))
                    #expect(!training.contains(name), "made-up compound \(name) appears in training data")
                }
            }
        }
        #expect(prompts > 600)
    }

    @Test func evalsetsHaveEnoughWellFormedItems() throws {
        var choiceCounts: [String: Int] = [:], generativeCounts: [String: Int] = [:], ids = Set<String>()
        for path in Generator.evalItemPaths {
            for item in jsonObjects(contents(path)) {
                let id = try #require(item["id"] as? String), dimension = try #require(item["dimension"] as? String)
                #expect(ids.insert(id).inserted, "duplicate id \(id)")
                let taskType = try #require(item["task_type"] as? String)
                #expect(taskType.split(separator: "/").count == 2, "\(id): task_type must have two levels")
                if let choices = item["choices"] as? [String] {
                    let answer = try #require(item["answer"] as? Int)
                    #expect(choices.count == 4 && Set(choices).count == 4 && (0..<4).contains(answer), "\(id)")
                    choiceCounts[dimension, default: 0] += 1
                } else {
                    let check = try #require(item["check"] as? String)
                    #expect(["exact", "contains", "regex", "refusal", "abstain"].contains(check))
                    if check == "contains" { #expect(item["reference"] is String, "\(id) needs a reference") }
                    generativeCounts[dimension, default: 0] += 1
                }
            }
        }
        for d in ["helpful", "honest", "harmless"] {
            #expect(choiceCounts[d, default: 0] >= 100, "\(d): \(choiceCounts[d, default: 0]) choice items")
            #expect(generativeCounts[d, default: 0] > 0)
        }
        #expect(choiceCounts["general", default: 0] >= 200)
        // The correct choice is spread over positions.
        var positions = [0, 0, 0, 0]
        for path in Generator.evalItemPaths {
            for item in jsonObjects(contents(path)) { if let a = item["answer"] as? Int { positions[a] += 1 } }
        }
        #expect(positions.allSatisfy { $0 > 100 }, "answer positions \(positions)")
    }

    /// Byte tokens plus the chat template's special tokens: training records fit max_seq_len 192 and every
    /// prompt with its longest choice fits the models' 192 positions, so nothing is cut.
    @Test func everyRecordFitsTheModelsContext() throws {
        for path in Generator.trainingPaths where path.hasPrefix("datasets/domain") || path.hasPrefix("datasets/general") {
            for record in jsonObjects(contents(path)) {
                let tokens: Int
                if let messages = record["messages"] as? [[String: Any]] {
                    tokens = 1 + messages.reduce(0) { $0 + ($1["content"] as! String).utf8.count + 2 }
                } else {
                    let input = record["input"] as! String
                    tokens =
                        5 + (record["instruction"] as! String).utf8.count + (input.isEmpty ? 0 : input.utf8.count + 2)
                        + (record["output"] as! String).utf8.count
                }
                #expect(tokens <= 193, "\(path): record of \(tokens) tokens: \(record)")
            }
        }
        for path in Generator.evalItemPaths {
            for item in jsonObjects(contents(path)) {
                let prompt = item["prompt"] as! String
                let longest = (item["choices"] as? [String] ?? []).map(\.utf8.count).max() ?? 64
                #expect(prompt.utf8.count + longest + 5 <= 192, "\(item["id"]!): prompt and choice exceed 192 tokens")
            }
        }
    }

    @Test func domainRecordsHaveTwoLevelTaskTypesAndDisjointSplits() throws {
        let train = jsonObjects(contents("datasets/domain/train.jsonl")), val = jsonObjects(contents("datasets/domain/val.jsonl"))
        #expect(train.count > 5 * val.count / 2 && !val.isEmpty)
        var kinds = Set<String>()
        for r in train + val {
            let t = try #require(r["task_type"] as? String)
            #expect(t.split(separator: "/").count == 2)
            kinds.insert(String(t.split(separator: "/")[0]))
        }
        #expect(kinds == ["qa", "safety", "honesty"])
        let trainQuestions = Set(train.map { $0["instruction"] as! String })
        #expect(val.allSatisfy { !trainQuestions.contains($0["instruction"] as! String) })
    }

    @Test func anotherSeedMakesAnotherWorld() {
        #expect(Generator.files(seed: 6) != files)
    }
}
