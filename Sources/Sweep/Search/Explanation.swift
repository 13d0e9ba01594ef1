import Foundation

/// Why a trial was proposed: stored with it (as `json`), printed by `harrow show`. What every sampler reports (the
/// proposal's number, the trials it counted, the best value) is here; what only one sampler knows is in its `Detail`.
public struct Explanation: Sendable, Equatable {
    /// 1 for the sweep's first proposal.
    public var number: Int
    /// The trials the sampler counted: results, failed (bayes imputes them as the worst value), still running
    /// (bayes enters them as predicted).
    public var finished = 0, failed = 0, running = 0
    /// Finished runs that never logged the sweep's metric: not results.
    public var unmeasured = 0
    /// The best metric value so far, in the metric's own units; nil before the first result.
    public var incumbent: Double?
    public var detail: Detail

    /// The sampler's own account of its choice.
    public enum Detail: Sendable, Equatable {
        case grid(Grid)
        case random
        case bayes(Bayes)
        case tpe(TPE)
    }

    public init(number: Int, detail: Detail) {
        self.number = number
        self.detail = detail
    }

    /// Each trial counted by its state, as grid and random count them.
    init(number: Int, counting observations: [Observation], detail: Detail) {
        self.init(number: number, detail: detail)
        for o in observations {
            switch o.state {
            case .finished: finished += 1
            case .failed: failed += 1
            case .pending: running += 1
            }
        }
    }

    /// The method's name in the experiment file.
    public var method: String {
        switch detail {
        case .grid: "grid"
        case .random: "random"
        case .bayes: "bayes"
        case .tpe: "tpe"
        }
    }

    /// What the proposal stood on: `random draw` (random), `grid`, `random` (too few results to model, or every
    /// candidate was a trial the sweep has), `gp` (bayes), `random (bad fit)` (bayes, see `Bayes.Basis`), `tpe`.
    public var basis: String {
        switch detail {
        case .grid: "grid"
        case .random: "random draw"
        case .bayes(let bayes): bayes.basis.rawValue
        case .tpe(let tpe): tpe.basis.rawValue
        }
    }

    /// Points the sampler scored (a grid: its points).
    public var candidates: Int {
        switch detail {
        case .grid(let grid): grid.points
        case .random: 0
        case .bayes(let bayes): bayes.candidates
        case .tpe(let tpe): tpe.candidates
        }
    }

    public var bayes: Bayes? { if case .bayes(let b) = detail { b } else { nil } }
    public var tpe: TPE? { if case .tpe(let t) = detail { t } else { nil } }

    /// One line: "bayes #7: expected improvement 0.41 at predicted 0.812 ± 0.030 (best so far 0.845; 6 finished, 1 running)".
    public var summary: String {
        let what: String, scored: Int
        switch detail {
        case .grid(let grid): (what, scored) = ("point \(grid.point) of \(grid.points)", 0)
        case .random: (what, scored) = ("random draw", 0)
        case .bayes(let bayes): (what, scored) = (bayes.summary, bayes.basis == .random ? 0 : bayes.candidates)
        case .tpe(let tpe): (what, scored) = (tpe.summary, tpe.basis == .random ? 0 : tpe.candidates)
        }
        var context: [String] = []
        if let incumbent { context.append("best so far \(Self.short(incumbent))") }
        context.append(
            "\(finished) finished" + (failed > 0 ? ", \(failed) failed" : "") + (running > 0 ? ", \(running) running" : "")
                + (unmeasured > 0 ? ", \(unmeasured) without the metric" : ""))
        if scored > 0 { context.append("\(scored) candidates") }
        return "\(method) #\(number): \(what) (\(context.joined(separator: "; ")))"
    }

    /// A number in a summary: four significant digits.
    static func short(_ x: Double) -> String { String(format: "%.4g", x) }
}

extension Explanation {
    /// A grid's proposal: the first of its points, in the grid's order, that the sweep does not have.
    public struct Grid: Sendable, Equatable {
        /// From 1.
        public var point: Int
        /// Every point the grid plans (after `exclude`, `where` and `run_cap`).
        public var points: Int
    }
}

// MARK: Stored form

/// One flat JSON object with snake-case keys, sorted, as the store has always kept it: the common keys here, each
/// sampler's own (its basis and candidates among them) beside them, written by its `Detail` type. Absent values and
/// a zero `unmeasured` are left out.
extension Explanation: Codable {
    enum CodingKeys: String, CodingKey {
        case method, number, basis, finished, failed, running, unmeasured, candidates, incumbent, point
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(number, forKey: .number)
        try c.encode(finished, forKey: .finished)
        try c.encode(failed, forKey: .failed)
        try c.encode(running, forKey: .running)
        if unmeasured > 0 { try c.encode(unmeasured, forKey: .unmeasured) }
        try c.encodeIfPresent(incumbent, forKey: .incumbent)
        switch detail {
        case .grid(let grid):
            try c.encode(basis, forKey: .basis)
            try c.encode(grid.points, forKey: .candidates)
            try c.encode(grid.point, forKey: .point)
        case .random:
            try c.encode(basis, forKey: .basis)
            try c.encode(0, forKey: .candidates)
        case .bayes(let bayes): try bayes.encode(to: encoder)
        case .tpe(let tpe): try tpe.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let method = try c.decode(String.self, forKey: .method)
        switch method {
        case "grid":
            detail = .grid(Grid(point: try c.decode(Int.self, forKey: .point), points: try c.decode(Int.self, forKey: .candidates)))
        case "random": detail = .random
        case "bayes": detail = .bayes(try Bayes(from: decoder))
        case "tpe": detail = .tpe(try TPE(from: decoder))
        default: throw DecodingError.dataCorruptedError(forKey: .method, in: c, debugDescription: "no sampler '\(method)'")
        }
        number = try c.decode(Int.self, forKey: .number)
        finished = try c.decode(Int.self, forKey: .finished)
        failed = try c.decode(Int.self, forKey: .failed)
        running = try c.decode(Int.self, forKey: .running)
        unmeasured = try c.decodeIfPresent(Int.self, forKey: .unmeasured) ?? 0
        incumbent = try c.decodeIfPresent(Double.self, forKey: .incumbent)
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public init?(json: String) {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let e = try? decoder.decode(Explanation.self, from: Data(json.utf8)) else { return nil }
        self = e
    }
}
