import Foundation
import Testing

@Suite struct EvalCommandTests {
    static let fixtures = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures"

    @Test func anyScorerOnAnEvalset() throws {
        let r = try Harrow.run("eval", "--scorer", "python3 \(Self.fixtures)/scorer.py", "--evalset", Self.fixtures + "/toy", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(list.first?["total"] as? Double == 0.375)
        #expect((list.first?["dimensions"] as? [[String: Any]])?.count == 3)
        let table = try Harrow.run("eval", "--scorer", "python3 \(Self.fixtures)/scorer.py", "--evalset", Self.fixtures + "/toy")
        #expect(table.stdout.contains("weighted total 0.375 ± 0.125 (acc_norm 0.500)"))
    }

    @Test func usageErrorsExitTwo() throws {
        let usage = try Harrow.run("eval", "--evalset", "x")
        #expect(usage.status == 2, "\(usage.stderr)")
        let missing = try Harrow.run("eval", "--scorer", "python3 \(Self.fixtures)/scorer.py", "--evalset", "/nonexistent")
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent"))
    }
}
