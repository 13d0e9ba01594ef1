import HarrowCore
import Foundation
import Tracking

/// A parameter value with its JSON type kept, so numbers sort and plot as numbers.
extension ParamValue {
    /// As a report shows it: numbers in the report's number format, lists in brackets.
    public var display: String {
        switch self {
        case .int(let i): String(i)
        case .double(let d): Format.number(d)
        case .string(let s): s
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        case .list(let items): "[" + items.map(\.display).joined(separator: ", ") + "]"
        }
    }

    /// A position on an axis: numbers, and booleans as 0 and 1.
    var plotted: Double? {
        if case .bool(let b) = self { return b ? 1 : 0 }
        return number
    }

    /// The value a level of a panel stands for: 3 and 3.0 are one level.
    var level: ParamValue { number.map(ParamValue.double) ?? self }
}

/// What a report shows of one run: its snapshot, read up front.
public typealias ReportRun = RunSnapshot

extension RunSnapshot {
    /// Where a run's number by name comes from. One rule for every panel: the sources are tried in the order of
    /// their cases, and the first that has the name gives the number (`value(_:)`).
    public enum ValueSource: CaseIterable, Sendable {
        /// A named value (`total`, `helpful`, `val_loss_best`: `values`).
        case named
        /// A parameter of the run: `lr` is the trial's learning rate even when the trainer also logs `lr`.
        case parameter
        /// A metric's summary: `val/loss` is its minimum for losses and its last value otherwise;
        /// `val/loss:min|max|last` says which.
        case metric
    }

    /// A number by name, from the first source that has it (`ValueSource`).
    public func value(_ name: String) -> Double? {
        ValueSource.allCases.lazy.compactMap { value(name, from: $0) }.first
    }

    /// The source `value(_:)` takes the name from; nil when none has it.
    public func source(of name: String) -> ValueSource? {
        ValueSource.allCases.first { value(name, from: $0) != nil }
    }

    /// A number by name from one source only.
    public func value(_ name: String, from source: ValueSource) -> Double? {
        switch source {
        case .named: return values[name]?.value
        case .parameter: return params[name]?.plotted
        case .metric:
            let (key, stat) = Metric.split(name)
            guard let s = summaries[key] else { return nil }
            switch stat ?? (Metric.lowerIsBetter(key) ? "min" : "last") {
            case "min": return s.min
            case "max": return s.max
            default: return s.last
            }
        }
    }

    public func stderr(_ name: String) -> Double? { values[name]?.stderr }
}

enum Metric {
    static let stats = ["min", "max", "last"]

    static func split(_ name: String) -> (key: String, stat: String?) {
        if let colon = name.lastIndex(of: ":"), stats.contains(String(name[name.index(after: colon)...])) {
            return (String(name[..<colon]), String(name[name.index(after: colon)...]))
        }
        return (name, nil)
    }

    /// Losses and perplexities fall as runs get better; scores rise (`Goal.of(metric:)`).
    static func lowerIsBetter(_ name: String) -> Bool { Goal.of(metric: name).lowerIsBetter }

    static func rank<T>(_ items: [T], lowerIsBetter lower: Bool, value: (T) -> Double?) -> [T] {
        return items.enumerated().map { ($0.offset, $0.element, value($0.element)) }.sorted { a, b in
            switch (a.2, b.2) {
            case let (x?, y?) where x != y: return lower ? x < y : x > y
            case (nil, _?): return false
            case (_?, nil): return true
            default: return a.0 < b.0
            }
        }.map(\.1)
    }
}
