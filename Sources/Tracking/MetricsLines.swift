import Foundation
import HarrowCore

/// What a stretch of `metrics.jsonl` said (docs/DESIGN.md's metrics lines). Pure: bytes in, points out.
public struct MetricsBatch: Sendable {
    public struct Series: Sendable {
        public var steps: [Int32] = []
        public var values: [Double] = []
    }

    /// Points by metric name, in file order.
    public var series: [String: Series] = [:]
    /// Bytes of complete lines read; a partial last line waits for the next read.
    public var consumed = 0
    public var lines = 0
    public var malformed = 0
    public var nonfinite = 0
    /// The first few malformed lines, for the user.
    public var malformedExamples: [String] = []
    public var totalSteps: Int?
    public var stepsPerEpoch: Int?
    public var warmupSteps: Int?
    public var done = false
    public var checkpoint: String?
    public var bestCheckpoint: String?
    public var bestStep: Int?

    public var pointCount: Int { series.values.reduce(0) { $0 + $1.steps.count } }

    public init() {}

    /// Steps per epoch from the `epoch` series when no start event gave it (Hugging Face and LLaMA-Factory logs
    /// carry a fractional epoch on every line): global step over epoch, past half an epoch.
    mutating func inferStepsPerEpoch() {
        guard stepsPerEpoch == nil, let e = series[TrainerContract.Metric.epoch] else { return }
        // The median ratio, so a resumed run whose epoch counter restarted does not decide it.
        let ratios = e.values.indices.filter { e.values[$0] >= 0.5 && e.steps[$0] > 0 }.map { Double(e.steps[$0]) / e.values[$0] }.sorted()
        guard !ratios.isEmpty else { return }
        stepsPerEpoch = max(1, Int(ratios[ratios.count / 2].rounded()))
    }

    mutating func add(_ key: String, step: Int32, value: Double) {
        series[key, default: Series()].steps.append(step)
        series[key, default: Series()].values.append(value)
    }
}

/// A fast reader for flat JSON objects, one per line. Malformed or non-finite lines are counted, never fatal.
public enum MetricsLines {
    /// Parses the complete lines in `bytes`. `rename` maps other tools' names onto canonical keys.
    public static func parse(_ bytes: UnsafeRawBufferPointer, rename: (String) -> String? = { $0 }) -> MetricsBatch {
        var batch = MetricsBatch()
        var lineStart = 0
        let n = bytes.count
        while lineStart < n {
            guard let newline = memchrIndex(bytes, from: lineStart, byte: 0x0A) else { break }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<newline])
            lineStart = newline + 1
            batch.consumed = lineStart
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            batch.lines += 1
            var fields: [(String, Value)] = []
            var parser = FlatObjectParser(line)
            guard parser.parse(into: &fields) else {
                batch.malformed += 1
                if batch.malformedExamples.count < 3 { batch.malformedExamples.append(String(decoding: line.prefix(200), as: UTF8.self)) }
                continue
            }
            apply(fields, to: &batch, rename: rename, line: line)
        }
        return batch
    }

    public static func parse(_ data: Data, rename: (String) -> String? = { $0 }) -> MetricsBatch {
        data.withUnsafeBytes { parse($0, rename: rename) }
    }

    enum Value {
        case number(Double)
        case string(String)
        case other
    }

    private static func apply(
        _ fields: [(String, Value)], to batch: inout MetricsBatch, rename: (String) -> String?, line: UnsafeRawBufferPointer
    ) {
        func int(_ name: String) -> Int? {
            // Int(exactly:) after truncation: a finite number past Int's range is not an integer here, not a trap.
            for (k, v) in fields where k == name { if case .number(let d) = v, d.isFinite { return Int(exactly: d.rounded(.towardZero)) } }
            return nil
        }
        func string(_ name: String) -> String? {
            for (k, v) in fields where k == name { if case .string(let s) = v { return s } }
            return nil
        }
        if let event = string("event") {
            switch event {
            case "start":
                batch.totalSteps = int("total_steps") ?? batch.totalSteps
                batch.stepsPerEpoch = int("steps_per_epoch") ?? batch.stepsPerEpoch
                batch.warmupSteps = int("warmup_steps") ?? batch.warmupSteps
            case "done":
                batch.done = true
                batch.checkpoint = string("checkpoint") ?? batch.checkpoint
                batch.bestCheckpoint = string("best_checkpoint") ?? batch.bestCheckpoint
                batch.bestStep = int("best_step") ?? batch.bestStep
            default: break
            }
            return
        }
        guard let step = int("step"), step >= 0, step <= Int(Int32.max) else {
            batch.malformed += 1
            if batch.malformedExamples.count < 3 { batch.malformedExamples.append(String(decoding: line.prefix(200), as: UTF8.self)) }
            return
        }
        for (key, value) in fields where key != "step" {
            guard case .number(let d) = value, let name = rename(key) else { continue }
            if d.isFinite { batch.add(name, step: Int32(step), value: d) } else { batch.nonfinite += 1 }
        }
    }

    private static func memchrIndex(_ bytes: UnsafeRawBufferPointer, from: Int, byte: UInt8) -> Int? {
        guard let base = bytes.baseAddress, from < bytes.count else { return nil }
        guard let hit = memchr(base + from, Int32(byte), bytes.count - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }
}

/// `{"key": value, ...}` with numbers, strings, true/false/null, NaN/Infinity (Python's json writes them),
/// and nested values skipped.
private struct FlatObjectParser {
    let bytes: UnsafeRawBufferPointer
    var i = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var current: UInt8 { i < bytes.count ? bytes[i] : 0 }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
    }

    mutating func parse(into fields: inout [(String, MetricsLines.Value)]) -> Bool {
        skipSpace()
        guard current == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace()
        if current == UInt8(ascii: "}") { i += 1; skipSpace(); return i == bytes.count }
        while true {
            skipSpace()
            guard let key = string() else { return false }
            skipSpace()
            guard current == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace()
            guard let value = value() else { return false }
            fields.append((key, value))
            skipSpace()
            if current == UInt8(ascii: ",") { i += 1; continue }
            if current == UInt8(ascii: "}") { i += 1; break }
            return false
        }
        skipSpace()
        return i == bytes.count
    }

    mutating func string() -> String? {
        guard current == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        var escaped = false
        while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
            if bytes[i] == UInt8(ascii: "\\") { escaped = true; i += 1 }
            i += 1
        }
        guard i < bytes.count else { return nil }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
        i += 1
        if !escaped { return String(decoding: raw, as: UTF8.self) }
        // Rare: let Foundation decode the escapes.
        let quoted = Data([UInt8(ascii: "\"")] + raw + [UInt8(ascii: "\"")])
        return try? JSONDecoder().decode(String.self, from: quoted)
    }

    mutating func value() -> MetricsLines.Value? {
        switch current {
        case UInt8(ascii: "\""): return string().map { .string($0) }
        case UInt8(ascii: "{"), UInt8(ascii: "["): return skipNested() ? .other : nil
        case UInt8(ascii: "t"): return literal("true", .other)
        case UInt8(ascii: "f"): return literal("false", .other)
        case UInt8(ascii: "n"): return literal("null", .other)
        case UInt8(ascii: "N"): return literal("NaN", .number(.nan))
        case UInt8(ascii: "I"): return literal("Infinity", .number(.infinity))
        case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "I"):
            i += 1
            return literal("Infinity", .number(-.infinity))
        default: return number()
        }
    }

    mutating func literal(_ word: StaticString, _ value: MetricsLines.Value) -> MetricsLines.Value? {
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard i + w.count <= bytes.count, memcmp(bytes.baseAddress! + i, w.baseAddress!, w.count) == 0 else { return nil }
        i += w.count
        return value
    }

    mutating func number() -> MetricsLines.Value? {
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            guard
                (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
            else { break }
            i += 1
        }
        let length = i - start
        guard length > 0, length < 64 else { return nil }
        // Integers (steps, counts) are the common case; everything else goes through strtod.
        var integer = 0, isInteger = true, negative = false
        for j in start..<i {
            let c = bytes[j]
            if c == UInt8(ascii: "-"), j == start { negative = true; continue }
            guard c >= 0x30 && c <= 0x39, integer < 100_000_000_000_000 else { isInteger = false; break }
            integer = integer * 10 + Int(c - 0x30)
        }
        if isInteger, length > (negative ? 1 : 0) { return .number(Double(negative ? -integer : integer)) }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer -> MetricsLines.Value? in
            for j in 0..<length { buffer[j] = CChar(bitPattern: bytes[start + j]) }
            buffer[length] = 0
            var end: UnsafeMutablePointer<CChar>?
            let d = strtod(buffer.baseAddress!, &end)
            guard let end, buffer.baseAddress!.distance(to: end) == length else { return nil }
            return .number(d)
        }
    }

    mutating func skipNested() -> Bool {
        var depth = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                guard string() != nil else { return false }
                continue
            }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
            if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { i += 1; return true }
            }
            i += 1
        }
        return false
    }
}
