import HarrowCore
import Foundation
import Gate
import Tracking

/// Data scaling: val loss and each 3H dimension against training records on log-log axes, a power law fitted with its
/// interval, and the records the trend predicts for a target. Drawn only when the records vary.
public struct ScalingPanel: Sendable, Equatable {
    public var title: String?
    /// The records axis (default the first of `recordAxes` that varies).
    public var x: String?
    public var metrics: [String]?
    /// Target values by metric (`target: {val/loss: 0.9, helpful: 0.6}`): the records the trend needs for each.
    public var targets: [String: Double]?
    /// A gate file whose thresholds are the targets the panel's own do not name.
    public var gate: String?
}

extension ScalingPanel: PanelKind {
    static let name = "scaling"
    static let options = ["x", "metrics", "target", "gate"]
    init(_ o: Panel.Options) { self.init(title: o.title, x: o.x, metrics: o.metrics, targets: o.targets, gate: o.gate) }
    var panel: Panel { .scaling(self) }

    /// The names the records axis goes by, in the order the panel looks for one that varies: the trainers' cap
    /// (`max_samples`, LLaMA-Factory's name) and a count a trainer states itself, as a parameter or a logged value.
    static let recordAxes = ["max_samples", "train_records"]

    /// One chart per metric (val loss and each 3H dimension by default) of its value against records on log-log axes:
    /// every finished run a point (seed repeats apart), the fitted power law and its 95% band, and a sentence with
    /// the exponent, its interval and, given a target (`target:`, else the `gate:`'s threshold), the records the
    /// trend reaches it at. Nothing is drawn when the runs do not vary in records.
    func render(in page: PanelContext) throws -> String {
        let runs = page.scope.runs.filter { $0.run.status.isFinished }
        let axes = self.x.map { [$0] } ?? Self.recordAxes
        guard let x = axes.first(where: { a in Set(runs.compactMap { $0.value(a) }).count >= 2 }) else { return "" }
        let sized = runs.filter { $0.value(x) != nil }
        let asked = metrics ?? [TrainerContract.Metric.valLoss, page.metric] + ValueNames.dimensions
        let names = asked.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            .filter { m in sized.contains { $0.value(m) != nil } }
        var html = page.heading(self, "Data scaling: what more records buy")
        guard !names.isEmpty else {
            return html + page.note("no run with \(HTML.escape(x)) has \(HTML.escape(asked.joined(separator: ", ")))")
        }
        let gate = try self.gate.flatMap { try page.renderer.gate($0) }
        var sentences: [String] = [], figures = "", scores = false, targeted = false
        for (i, name) in names.enumerated() {
            let pairs = sized.compactMap { r in r.value(name).map { (n: r.value(x)!, v: $0) } }
            // A score in [0, 1] is fitted as its error, 1 − score: a power law may fall toward 0 but a score must stop at 1.
            let asError = !Metric.lowerIsBetter(name) && pairs.allSatisfy { $0.v >= 0 && $0.v <= 1 }
            scores = scores || asError
            let shown = asError ? "1 − \(name)" : name
            let fitted = pairs.map { asError ? 1 - $0.v : $0.v }
            let target = targets?[name] ?? gate.flatMap { Self.threshold($0, for: name) }
            targeted = targeted || target != nil
            var c = page.chart(self, "\(shown) against \(x)", suffix: "-\(i)")
            c.title = "\(shown) against \(x)"
            c.width = 560
            c.height = 380
            c.logX = true
            c.logY = true
            c.xLabel = "\(x) (training records)"
            c.yLabel = shown + (asError ? " (error; lower is better)" : "")
            c.keyBelow = true
            let sizes = Array(Set(pairs.map(\.n))).sorted()
            c.xTics = sizes.filter { $0 > 0 }.map { (Format.number($0), $0) }
            c.rotateXTics = false
            var xs = pairs.map(\.n).filter { $0 > 0 }, ys = fitted
            switch PowerLaw.fit(sizes: pairs.map(\.n), values: fitted) {
            case .failure(.tooFewSizes(let k, _)):
                sentences.append(
                    "\(HTML.escape(name)): no fit: \(k) \(k == 1 ? "size" : "sizes") of \(HTML.escape(x)) "
                        + "with a positive \(HTML.escape(shown)) ("
                        + sizes.map { Format.number($0) }.joined(separator: ", ") + "); a power law needs at least 3")
            case .success(let fit):
                let law = fit.law
                let errorTarget = target.map { asError ? 1 - $0 : $0 }
                let lower = asError || Metric.lowerIsBetter(name)
                var sentence = Self.describe(law, shown: shown, leftOut: fit.leftOut)
                var reached: PowerLaw.Reach?
                if let target, let goal = errorTarget {
                    let reading = Self.reading(law, target: target, goal: goal, name: name, lower: lower, pairs: pairs)
                    sentence += reading.text
                    reached = reading.reached
                }
                sentences.append(sentence)
                // The line over the sizes run, carried on to the predicted size when that is near enough to draw.
                let end = reached.map { $0.size > law.largest && $0.size <= law.largest * 20 ? $0.size : law.largest } ?? law.largest
                let grid = (0...48).map { law.smallest * pow(end / law.smallest, Double($0) / 48) }
                let band = grid.map(law.band(at:))
                c.elements.append(.band(x: grid, low: band.map(\.low), high: band.map(\.high), color: 0))
                c.elements.append(.line(title: "power law, 95% band", x: grid, y: grid.map(law.value(at:)), color: 0))
                xs += [end]
                ys += [law.value(at: end)]
                if let r = reached, let goal = errorTarget, r.size >= law.smallest / 1.5, r.size <= end * 1.001 {
                    c.elements.append(
                        .points(
                            title: "reached at about \(Self.records(r.size)) records", x: [r.size], y: [goal], color: 2,
                            size: 1.3))
                    if !c.xTics!.contains(where: { abs($0.at / r.size - 1) < 0.15 }) { c.xTics!.append((Self.records(r.size), r.size)) }
                }
            }
            let usable = pairs.indices.filter { pairs[$0].n > 0 && fitted[$0] > 0 }
            c.elements.append(.points(title: "runs", x: usable.map { pairs[$0].n }, y: usable.map { fitted[$0] }, color: 1, size: 0.9))
            let left = (xs.min() ?? 1) / 1.3, right = (xs.max() ?? 1) * 1.3
            if let target, (asError ? 1 - target : target) > 0 {
                let goal = asError ? 1 - target : target
                ys.append(goal)
                c.elements.append(
                    .line(
                        title: "target \(name) \(Format.number(target))", x: [left, right], y: [goal, goal], color: 2,
                        dashed: true))
            }
            let positive = ys.filter { $0 > 0 && $0.isFinite }
            if let lo = positive.min(), let hi = positive.max() {
                c.yRange = (lo / 1.25, hi * 1.25)
                c.yTics = Self.logTics(lo / 1.25, hi * 1.25).map { (Format.number($0), $0) }
            }
            c.xRange = (left, right)
            figures += try page.renderer.figure(c, prefix: page.prefix)
        }
        html += sentences.map { "<p class=\"answer\">\($0).</p>\n" }.joined()
        var notes = [
            "each point is a finished run (seed repeats apart); the line is the least-squares fit of log value on log "
                + "\(HTML.escape(x)), its band the 95% interval of the line; exponents' intervals are t intervals"
        ]
        if scores {
            notes.append("3H scores are fitted as their error, 1 − score: a power law can fall toward 0, a score cannot rise past 1")
        }
        notes.append(
            targeted
                ? "targets from " + (targets?.isEmpty == false ? "the panel's target" : "")
                    + (targets?.isEmpty == false && gate != nil ? " and " : "")
                    + (gate != nil ? "the thresholds of \(HTML.escape(self.gate!))" : "")
                    + "; a target's interval is where the band crosses it (Fieller)"
                : "name a target (<code>target: {val/loss: 0.9, helpful: 0.6}</code>) or a <code>gate:</code> for the records the trend needs"
        )
        if x == "max_samples" { notes.append("records are max_samples: a cap above a dataset's size counts as the cap") }
        let without = runs.count - sized.count
        if without > 0 {
            notes.append(
                "\(without) finished \(without == 1 ? "run has" : "runs have") no \(HTML.escape(x)) "
                    + "and \(without == 1 ? "is" : "are") left out")
        }
        html += page.note(notes.joined(separator: "; "))
        return html + "<div class=\"multiples two\">" + figures + "</div>"
    }

    /// What the trend says of a target: the records it reaches it at, with their interval (`reached`, to be drawn), or
    /// why no size can be named. `goal` is the target as fitted (the error of a score); `lower` says which way it is met.
    static func reading(
        _ law: PowerLaw, target: Double, goal: Double, name: String, lower: Bool,
        pairs: [(n: Double, v: Double)]
    ) -> (text: String, reached: PowerLaw.Reach?) {
        var text = "", reached: PowerLaw.Reach?
        let said = "\(HTML.escape(name)) \(Format.number(target))"
        let improving = lower ? law.exponent < 0 : law.exponent > 0
        if law.isFlat {
            text += "; flat, so it never reaches \(said)"
        } else if goal <= 0 {
            text += "; \(said) leaves no error, which a power law never reaches"
        } else if !law.isTrend {
            // No slope to follow: say where the sizes run stand instead of a size the interval cannot bound.
            let means = Dictionary(grouping: pairs, by: \.n).values.map { g in g.reduce(0) { $0 + $1.v } / Double(g.count) }
            let meeting = means.filter { Metric.lowerIsBetter(name) ? $0 <= target : $0 >= target }.count
            text +=
                "; with no trend there is no size to predict for \(said), which "
                + (meeting == means.count
                    ? "every size run meets"
                    : meeting == 0 ? "no size run meets" : "\(meeting) of the \(means.count) sizes run meet")
                + " on average"
        } else if let r = law.reach(goal) {
            let about = "about \(Self.records(r.size)) records", at = "\(about) (\(Self.interval(r)))"
            // A curve the power law does not describe leaves its prediction a conditional.
            let reaches = (law.lackOfFit?.p ?? 1) < 0.05 ? "if that slope held, the trend would reach" : "the trend reaches"
            if improving {
                reached = r
                if r.size < law.smallest {
                    text += "; the trend is past \(said) at every size run (crossing it at \(about), \(Self.interval(r)))"
                } else if r.size <= law.largest {
                    text += "; \(reaches) \(said) at \(at), within the sizes run"
                } else {
                    let times = Format.number((r.size / law.largest * 10).rounded() / 10)
                    text += "; \(reaches) \(said) at \(at), \(times)× the largest size run"
                }
            } else if r.size > law.smallest {
                text += "; the trend meets \(said) up to \(at) and moves away from it with more"
            } else {
                text += "; the trend moves away from \(said): more records made it worse"
            }
        }
        return (text, reached)
    }

    /// "val/loss ∝ records^−0.27 (95% interval −0.30 … −0.23) over 12 runs at 4 sizes", with what weakens it.
    static func describe(_ law: PowerLaw, shown: String, leftOut: Int) -> String {
        var s =
            "\(HTML.escape(shown)) ∝ records^\(exponent(law.exponent)) (\(Int((law.level * 100).rounded()))% interval "
            + "\(exponent(law.low)) … \(exponent(law.high))) over \(law.points) runs at \(law.sizes) sizes"
        if law.isFlat {
            s += ": the same value at every size"
        } else if !law.isTrend {
            s += "; the interval includes 0: no trend beyond the scatter about the line"
        }
        if let lof = law.lackOfFit, lof.p < 0.05 {
            s +=
                "; the sizes' means stray from a power law beyond the seeds' scatter "
                + "(lack-of-fit F test, \(HTML.escape(Paired.formatP(lof.p)))): "
                + "read the exponent as an average slope, not a law to extrapolate"
        }
        if law.degreesOfFreedom < 4 {
            s += " (only \(law.degreesOfFreedom) degree\(law.degreesOfFreedom == 1 ? "" : "s") of freedom, so the interval is wide)"
        }
        if leftOut > 0 {
            s += "; \(leftOut) \(leftOut == 1 ? "run" : "runs") left out at a value of 0 or below, which a power law cannot take"
        }
        return s
    }

    /// A gate's threshold on a metric in the direction it is better: the minimum of a score, the maximum of a loss
    /// (`val/loss` is held to `val_loss_best`, the same value).
    static func threshold(_ rules: GateRules, for name: String) -> Double? {
        let key = name == TrainerContract.Metric.valLoss ? "val_loss_best" : name
        guard let t = rules.thresholds.first(where: { $0.metric == key }) else { return nil }
        return Metric.lowerIsBetter(name) ? t.max : t.min
    }

    /// An exponent to two decimals with a real minus sign; smaller ones to two significant figures.
    static func exponent(_ b: Double) -> String {
        let s = String(format: abs(b) >= 0.01 || b == 0 ? "%.2f" : "%.2g", abs(b))
        return (b < 0 && s != "0.00" ? "−" : "") + s
    }

    /// A predicted number of records, to two significant figures: the fit cannot tell more.
    static func records(_ n: Double) -> String {
        guard n.isFinite else { return "∞" }
        if n >= 1e7 { return String(format: "%.1e", n) }
        if n < 100 { return String(Int(n.rounded())) }
        let step = pow(10, floor(log10(n)) - 1)
        var digits = String(Int((n / step).rounded() * step)), grouped = ""
        while digits.count > 3 { grouped = "," + digits.suffix(3) + grouped; digits.removeLast(3) }
        return digits + grouped
    }

    /// Tics for a log axis from `lo` to `hi`: the sparsest of the 1–2–5 style ladders that puts at least four
    /// inside, so an axis spanning less than a decade still reads (gnuplot's own put tics at powers of ten only).
    static func logTics(_ lo: Double, _ hi: Double) -> [Double] {
        guard lo > 0, hi > lo, hi.isFinite else { return [] }
        let ladders: [[Double]] = [
            [1], [1, 3], [1, 2, 5], [1, 2, 3, 5, 7], [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9],
            (10..<100).map { Double($0) / 10 }
        ]
        var best: [Double] = []
        for ladder in ladders {
            var tics: [Double] = []
            for decade in Int(floor(log10(lo)))...Int(ceil(log10(hi))) {
                for m in ladder {
                    // Rounded to the ladder's digits, so 0.3 is not 0.30000000000000004.
                    let v = (m * pow(10, Double(decade)) * 1e6).rounded() / 1e6
                    if v >= lo, v <= hi { tics.append(decade < -5 ? m * pow(10, Double(decade)) : v) }
                }
            }
            best = tics
            if tics.count >= 4 { break }
        }
        // A dense ladder on a narrow axis: keep every other tic past ten.
        return best.count > 10 ? best.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) : best
    }

    static func interval(_ r: PowerLaw.Reach) -> String {
        switch (r.low, r.high) {
        case let (lo?, hi?): return "interval \(records(lo)) … \(records(hi))"
        default: return "interval unbounded"
        }
    }
}
