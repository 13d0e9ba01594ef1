import Foundation
import HarrowCore

/// How paired evidence reads in text and JSON, the same in `ablation`, `compare` and `gate`.
enum EvidenceText {
    /// The names evidence is shown under, in reading order: the dimensions, the weighted total, the general set and
    /// forgetting.
    static let names = ValueNames.dimensions + ["total", "general", "forgetting"]

    /// "+0.193 [+0.126, +0.259]".
    static func delta(_ t: PairedSummary) -> String {
        "\(formatSigned(t.delta)) [\(formatSigned(t.low)), \(formatSigned(t.high))]"
    }

    /// One sentence: what is beyond noise, with its interval and p, then what is within it.
    /// "helpful +0.193 [+0.126, +0.259] (p < 0.001) and general −0.100 [−0.147, −0.053] (p < 0.001) beyond noise;
    /// honest, harmless, total within noise".
    static func sentence(_ e: PairedEvidence) -> String {
        let tests = e.byName
        let shown = names.compactMap { name in tests[name].map { (name, $0) } }
        guard !shown.isEmpty else { return "" }
        let beyond = shown.filter { $0.1.significant }, within = shown.filter { !$0.1.significant }
        var parts: [String] = []
        if !beyond.isEmpty {
            parts.append(beyond.map { "\($0.0) \(delta($0.1)) (\(Paired.formatP($0.1.p)))" }.joined(separator: ", ") + " beyond noise")
        }
        if !within.isEmpty { parts.append(within.map(\.0).joined(separator: ", ") + " within noise") }
        return parts.joined(separator: "; ")
    }
}
