import Foundation
import Testing
import Yams
@testable import BoundedYAML
@testable import Evaluation
@testable import Gate
@testable import Reporting
@testable import Sweep

/// "Billion laughs": `levels` anchors, each a list of nine aliases of the one before (9^levels nodes), under `key`.
func aliasBomb(levels: Int, key: String) -> String {
    var lines = ["l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in 1..<levels {
        lines.append("l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]")
    }
    lines.append("\(key): *l\(levels - 1)")
    return lines.joined(separator: "\n") + "\n"
}

@Suite(.timeLimit(.minutes(1)))
struct BoundedYAMLTests {
    @Test func ordinaryAliasesStillLoad() throws {
        let root = try #require(try BoundedYAML.compose(yaml: "base: &b {lr: 0.1}\nother: *b\nlist: [*b, *b]\n"))
        #expect(root["other"]?["lr"]?.float == 0.1)
        #expect(try BoundedYAML.compose(yaml: "") == nil)
    }

    @Test func aBombIsRefusedAtItsLine() {
        // 9^9 = 387 million nodes from ten lines; the walk stops after the budget, at the first anchor (line 6,
        // 9^6 nodes) that takes the file past it.
        #expect { try BoundedYAML.compose(yaml: aliasBomb(levels: 9, key: "parameters")) } throws: { error in
            guard case YamlError.composer(_, let problem, let mark, _) = error else { return false }
            return problem.contains("more than 100000 YAML nodes") && mark.line == 6 && mark.column == 1
        }
        // Well under the bound passes: four levels are about 15,000 nodes in all.
        #expect(throws: Never.self) { try BoundedYAML.compose(yaml: aliasBomb(levels: 4, key: "x")) }
    }

    /// Every reader of YAML from a pull request refuses the bomb with file:line:column.
    @Test func everyYAMLReaderRefusesIt() throws {
        let bomb = aliasBomb(levels: 9, key: "parameters")
        #expect { try Experiment.parse(yaml: bomb, file: "exp.yaml") } throws: {
            "\($0)".contains("exp.yaml:6:1:") && "\($0)".contains("aliases")
        }
        #expect { try Dashboard.parse(yaml: aliasBomb(levels: 9, key: "panels"), file: "dash.yaml") } throws: {
            "\($0)".contains("dash.yaml:6:1:") && "\($0)".contains("aliases")
        }
        #expect { try GateRules.parse(yaml: aliasBomb(levels: 9, key: "thresholds"), file: "gate.yaml") } throws: {
            "\($0)".contains("gate.yaml:6:1:") && "\($0)".contains("aliases")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bomb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try aliasBomb(levels: 9, key: "weights").write(toFile: dir + "/manifest.yaml", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/items.jsonl", atomically: true, encoding: .utf8)
        #expect { try Evalset.load(dir) } throws: { "\($0)".contains("manifest.yaml:6:1:") && "\($0)".contains("aliases") }
    }
}
