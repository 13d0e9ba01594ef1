import Evaluation
import Foundation

/// The data the night trained on, as `harrow sweep` checked it before starting: one line per file, the findings
/// folded under it. Errors (malformed lines, evaluation prompts in the data) are shown open.
enum DataSection {
    static func html(_ night: DataCheck.Night) -> String {
        guard !night.files.isEmpty || !night.notChecked.isEmpty else { return "" }
        var summary = night.files.map { f in
            "\(HTML.escape(f.report.file)) \(f.report.records) records"
        }.joined(separator: " · ")
        if !night.against.isEmpty { summary += " · checked against \(night.against.count) evalset\(night.against.count == 1 ? "" : "s")" }
        let state = night.errors > 0 ? "\(night.errors) error\(night.errors == 1 ? "" : "s"), " : ""
        let lines = night.lines(examples: 5).map(HTML.escape).joined(separator: "\n")
        return "<details class=\"data\"\(night.errors > 0 ? " open" : "")><summary>Data: \(summary) — \(state)"
            + "\(night.warnings) warning\(night.warnings == 1 ? "" : "s")</summary>\n<pre>\(lines)</pre>\n"
            + "<p class=\"note\">checked by <code>harrow sweep</code> before the night (as <code>harrow data check</code>): "
            + "near duplicates by MinHash over word 5-grams, Jaccard ≥ 0.8; tokens \(night.files.first?.report.tokens == .harrowTrain ? "by harrow-train's tokenizer" : "estimated as UTF-8 bytes / 4")</p></details>\n"
    }
}
