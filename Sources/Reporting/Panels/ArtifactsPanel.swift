/// One run's artifacts: role, path, size and hash; the checkpoints its folder names when none were recorded.
public struct ArtifactsPanel: Sendable, Equatable {
    public var title: String?
}

extension ArtifactsPanel: PanelKind {
    static let name = "artifacts"
    static let options: [String] = []
    init(_ o: Panel.Options) { self.init(title: o.title) }
    var panel: Panel { .artifacts(self) }

    func render(in page: PanelContext) -> String {
        let one = page.one
        let list = one.artifacts
        var html = page.heading(self, "Artifacts")
        var rows: [[HTML.Cell]] = list.map { a in
            [
                .text(a.role), .text(a.path), a.size.map { .number(Double($0)) } ?? .number(nil),
                .text(a.sha256.map { String($0.prefix(16)) } ?? "–")
            ]
        }
        if list.isEmpty, let dir = one.run.runDir {
            for (role, name) in [("checkpoint", one.run.checkpoint), ("best checkpoint", one.run.bestCheckpoint)] {
                if let name { rows.append([.text(role), .text(dir + "/" + name), .number(nil), .text("–")]) }
            }
        }
        if rows.isEmpty { return html + page.note("no artifacts recorded") }
        html += HTML.table(header: ["role", "path", "bytes", "sha256"], rows: rows)
        return html
    }
}
