/// One run's parameters, every one, by name.
public struct ParamsPanel: Sendable, Equatable {
    public var title: String?
}

extension ParamsPanel: PanelKind {
    static let name = "params"
    static let options: [String] = []
    init(_ o: Panel.Options) { self.init(title: o.title) }
    var panel: Panel { .params(self) }

    func render(in page: PanelContext) -> String {
        let rows: [[HTML.Cell]] = page.one.params.sorted { $0.key < $1.key }.map { [.text($0.key), page.cellFor(param: $0.value)] }
        return page.heading(self, "Parameters") + HTML.table(header: ["parameter", "value"], rows: rows)
    }
}
