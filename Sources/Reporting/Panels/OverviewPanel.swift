import Foundation

/// One run's record: status, timing, git commit and dirty flag, command, folder, attempts, and why a failed run
/// failed with the stderr it left.
public struct OverviewPanel: Sendable, Equatable {
    public var title: String?
}

extension OverviewPanel: PanelKind {
    static let name = "overview"
    static let options: [String] = []
    init(_ o: Panel.Options) { self.init(title: o.title) }
    var panel: Panel { .overview(self) }

    func render(in page: PanelContext) -> String {
        let one = page.one, r = one.run
        let status = "<span class=\"\(r.status.rawValue)\">\(r.status.rawValue)</span>" + (r.attempt > 1 ? " (attempt \(r.attempt))" : "")
        var rows: [(String, String)] = [("status", status)]
        if let s = r.sweepName { rows.append(("sweep", HTML.escape(s))) }
        if !one.tags.isEmpty { rows.append(("tags", one.tags.map(HTML.escape).joined(separator: ", "))) }
        rows.append(("trial key", "<code>\(HTML.escape(r.trialKey))</code>"))
        if let e = r.earlierRunID {
            let link = "<a href=\"\(HTML.escape(Renderer.runFile(e)))\">\(HTML.escape(e))</a>"
            rows.append(("earlier run", link + " (same parameters; code or data changed since)"))
        }
        if let t = r.startedAt { rows.append(("started", HTML.escape(ISO8601DateFormatter().string(from: t)))) }
        if let d = r.duration { rows.append(("duration", Format.duration(d))) }
        if let e = r.exitCode { rows.append(("exit code", "\(e)")) }
        if let s = r.signal { rows.append(("signal", "\(s)")) }
        if let e = r.error { rows.append(("error", HTML.escape(e))) }
        if let pv = one.provenance {
            var git = pv.commit.map { "<code>\(HTML.escape(String($0.prefix(12))))</code>" } ?? "no commit"
            if let b = pv.branch { git += " on \(HTML.escape(b))" }
            if pv.repository != nil {
                let diff = pv.diffSHA256.map { " (diff \(HTML.escape(String($0.prefix(12)))))" } ?? ""
                git += pv.dirty ? " <span class=\"dirty\">dirty</span>" + diff : " clean"
            }
            if !pv.untracked.isEmpty { git += ", \(pv.untracked.count) untracked files" }
            if let n = pv.note { git += " — \(HTML.escape(n))" }
            rows.append(("git", git))
        } else {
            rows.append(("git", "not recorded"))
        }
        if !r.command.isEmpty { rows.append(("command", "<code>\(HTML.escape(r.command.joined(separator: " ")))</code>")) }
        if let d = r.runDir { rows.append(("run folder", "<code>\(HTML.escape(d))</code>")) }
        if r.source != "sweep" { rows.append(("source", HTML.escape(r.source))) }
        if r.malformedLines > 0 || r.nonfiniteValues > 0 {
            rows.append(("metrics lines", "\(r.malformedLines) malformed, \(r.nonfiniteValues) non-finite values skipped"))
        }
        var html = page.heading(self, "Run") + "<dl>" + rows.map { "<dt>\($0.0)</dt><dd>\($0.1)</dd>" }.joined() + "</dl>\n"
        let attempts = one.attempts
        if attempts.count > 1 {
            html += HTML.table(
                header: ["attempt", "status", "exit", "duration", "then"],
                rows: attempts.map {
                    [
                        .number(Double($0.attempt)), .text($0.status, cls: $0.status),
                        .text($0.exitCode.map { "\($0)" } ?? $0.signal.map { "signal \($0)" } ?? "–"),
                        .text($0.duration.map(Format.duration) ?? "–"), .text($0.note ?? "")
                    ]
                }, caption: "attempts")
        }
        if let failure = r.failure {
            html +=
                "<p class=\"failure\"><b>\(HTML.escape(failure.cause.label))</b>, told by:</p><pre>"
                + failure.lines.map(HTML.escape).joined(separator: "\n") + "</pre>\n"
        }
        if let tail = r.stderrTail, !tail.isEmpty, r.status != .succeeded {
            html += "<h3>stderr (last lines)</h3><pre>\(HTML.escape(tail))</pre>\n"
        }
        return html
    }
}
