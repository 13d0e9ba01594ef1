import Foundation

/// One run's diagnosis: the verdict with its confidence and best step, the advice, and the evidence.
public struct VerdictPanel: Sendable, Equatable {
    public var title: String?
}

extension VerdictPanel: PanelKind {
    static let name = "verdict"
    static let options: [String] = []
    init(_ o: Panel.Options) { self.init(title: o.title) }
    var panel: Panel { .verdict(self) }

    func render(in page: PanelContext) -> String {
        let one = page.one
        var html = page.heading(self, "Diagnosis")
        guard let d = one.diagnosis else {
            return html + page.note("not diagnosed yet: <code>harrow diagnose \(HTML.escape(one.id)) --save</code>")
        }
        html +=
            "<p><strong class=\"\(HTML.escape(d.verdict))\">\(HTML.escape(d.verdict.replacingOccurrences(of: "_", with: " ")))</strong>"
            + " (confidence \(Format.number(d.confidence, digits: 2)))" + ((one.bestStep ?? d.bestStep).map { " · best step \($0)" } ?? "")
            + "</p>\n"
        if !d.advice.isEmpty { html += "<p>\(HTML.escape(d.advice))</p>\n" }
        // A diagnosis stored by an older reading may name another step than the run's best: say so, not both.
        if let stored = d.bestStep, let best = one.bestStep, stored != best {
            html += page.note(
                "this diagnosis was stored with step \(stored) as the best; the run's best step is \(best): "
                    + "<code>harrow diagnose \(HTML.escape(one.id)) --save</code> reads it again")
        }
        if let evidence = (try? JSONSerialization.jsonObject(with: Data(d.evidenceJSON.utf8))) as? [String: Any], !evidence.isEmpty {
            html +=
                "<dl class=\"evidence\">"
                + evidence.keys.sorted().map { k in "<dt>\(HTML.escape(k))</dt><dd>\(HTML.escape(Self.evidenceText(evidence[k]!)))</dd>" }
                .joined()
                + "</dl>\n"
        }
        return html
    }

    static func evidenceText(_ v: Any) -> String {
        switch v {
        case let n as NSNumber: return Format.number(n.doubleValue)
        case let s as String: return s
        case let a as [Any]: return a.map(evidenceText).joined(separator: ", ")
        case let m as [String: Any]: return m.keys.sorted().map { "\($0): \(evidenceText(m[$0]!))" }.joined(separator: ", ")
        default: return "\(v)"
        }
    }
}
