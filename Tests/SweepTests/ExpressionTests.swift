import HarrowCore
import Testing
@testable import Sweep

@Suite struct ExpressionTests {
    func eval(_ source: String, _ vars: [String: ParamValue] = [:]) throws -> ParamValue {
        let names = vars.keys.sorted()
        let e = try Expression(source).bound(to: Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }))
        return try e.evaluate(names.map { vars[$0]! })
    }

    @Test func arithmeticKeepsIntegersWhereItCan() throws {
        #expect(try eval("2 * lora_r", ["lora_r": .int(8)]) == .int(16))
        #expect(try eval("lora_alpha / lora_r", ["lora_alpha": .int(16), "lora_r": .int(8)]) == .double(2))
        #expect(try eval("7 // 2") == .int(3))
        #expect(try eval("-7 // 2") == .int(-4))
        #expect(try eval("7 % 3") == .int(1))
        #expect(try eval("2 ** 10") == .int(1024))
        #expect(try eval("2 ** -1") == .double(0.5))
        #expect(try eval("1 + 2 * 3 - 4") == .int(3))
        #expect(try eval("-(1 + 2) * 3") == .int(-9))
        #expect(try eval("1e-4 * 10") == .double(1e-3))
    }

    @Test func logicComparisonsAndConditionals() throws {
        #expect(try eval("a > 1 and not (b == 'chat')", ["a": .int(2), "b": .string("base")]) == .bool(true))
        #expect(try eval("a > 1 && b != \"chat\" || false", ["a": .int(0), "b": .string("base")]) == .bool(false))
        #expect(try eval("m in ['base', 'chat']", ["m": .string("chat")]) == .bool(true))
        #expect(try eval("m not in [1, 2]", ["m": .double(2.0)]) == .bool(false))
        #expect(try eval("16 if r <= 8 else 2 * r", ["r": .int(32)]) == .int(64))
        #expect(try eval("(a != 1) + (b != 2) <= 1", ["a": .int(5), "b": .int(2)]) == .bool(true))
        #expect(try eval("lora.r * 2", ["lora.r": .int(4)]) == .int(8))
    }

    @Test func functions() throws {
        #expect(try eval("max(1, 5, 3)") == .int(5))
        #expect(try eval("min([4, 2.5])") == .double(2.5))
        #expect(try eval("round(2.6)") == .int(3))
        #expect(try eval("int(log2(64))") == .int(6))
        #expect(try eval("sqrt(16)") == .double(4))
        #expect(try eval("abs(-3)") == .int(3))
    }

    @Test func errorsSayWhereAndWhat() {
        func failure(_ source: String) -> ExpressionError? {
            do { _ = try Expression(source); return nil } catch { return error }
        }
        #expect(failure("2 * ")?.message == "expected a value, found end of expression")
        #expect(failure("2 * ")?.offset == 4)
        #expect(failure("a = 1")?.offset == 2)
        #expect(failure("foo(1)")?.message == "unknown function 'foo'")
        #expect(failure("'open")?.message == "unterminated string")
        #expect(failure("(1 + 2")?.message.contains("expected ')'") == true)
        #expect(failure("1 2")?.message.contains("expected end of expression") == true)
        #expect(throws: ExpressionError.self) { try eval("'a' * 2") }
        #expect(throws: ExpressionError.self) { try eval("1 / 0") }
        #expect(throws: ExpressionError.self) { try eval("1 and true") }
    }
}
