/// One panel of a dashboard: its kind, with the options that kind reads. Each kind is a type of its own in this
/// folder (`TablePanel.swift`, `CurvesPanel.swift`, …), which says what a dashboard calls it, which options it takes
/// and how it draws; the renderer and the report choose panels only through these cases.
public enum Panel: Sendable, Equatable {
    case table(TablePanel)
    case curves(CurvesPanel)
    case scatter(ScatterPanel)
    case heatmap(HeatmapPanel)
    case bars3h(Bars3HPanel)
    case usability(UsabilityPanel)
    case forgetting(ForgettingPanel)
    case flips(FlipsPanel)
    case effects(EffectsPanel)
    case parallel(ParallelPanel)
    case tradeoff(TradeoffPanel)
    case progress(ProgressPanel)
    case scaling(ScalingPanel)
    /// Single-run panels, for run pages.
    case overview(OverviewPanel)
    case params(ParamsPanel)
    case verdict(VerdictPanel)
    case scores(ScoresPanel)
    case artifacts(ArtifactsPanel)

    /// Every kind, in the order a dashboard's errors list them.
    static let kinds: [any PanelKind.Type] = [
        TablePanel.self, CurvesPanel.self, ScatterPanel.self, HeatmapPanel.self, Bars3HPanel.self, UsabilityPanel.self,
        ForgettingPanel.self,
        FlipsPanel.self, EffectsPanel.self, ParallelPanel.self, TradeoffPanel.self, ProgressPanel.self, ScalingPanel.self,
        OverviewPanel.self, ParamsPanel.self, VerdictPanel.self, ScoresPanel.self, ArtifactsPanel.self
    ]

    /// A panel of a kind, with the options of it that a dashboard gave.
    init(_ kind: any PanelKind.Type, _ options: Options) { self = kind.init(options).panel }

    /// The kind a dashboard names (`type: curves`), if there is one.
    static func kind(named name: String) -> (any PanelKind.Type)? { kinds.first { $0.name == name } }

    /// The panel as its kind: its options, and how it draws.
    var kind: any PanelKind {
        switch self {
        case .table(let p): p
        case .curves(let p): p
        case .scatter(let p): p
        case .heatmap(let p): p
        case .bars3h(let p): p
        case .usability(let p): p
        case .forgetting(let p): p
        case .flips(let p): p
        case .effects(let p): p
        case .parallel(let p): p
        case .tradeoff(let p): p
        case .progress(let p): p
        case .scaling(let p): p
        case .overview(let p): p
        case .params(let p): p
        case .verdict(let p): p
        case .scores(let p): p
        case .artifacts(let p): p
        }
    }

    /// What a dashboard wrote for one panel, any option of any kind; each kind takes the ones it reads, after the
    /// dashboard's reader has refused the others.
    struct Options {
        var title: String?
        var params: [String]?
        var metrics: [String]?
        var x: String?
        var y: String?
        var color: String?
        var value: String?
        var by: String?
        var top: Int?
        var points: Int?
        var gate: String?
        var limit: Int?
        var logX: Bool?
        var targets: [String: Double]?
    }
}

/// One kind of panel: what a dashboard calls it, the options it reads, and how it draws on a page.
protocol PanelKind: Sendable {
    /// Its `type:` in a dashboard.
    static var name: String { get }
    /// The options it reads besides `title`; a dashboard naming any other is told which these are.
    static var options: [String] { get }
    /// The options a dashboard must give it.
    static var required: [String] { get }
    /// The panel of this kind with the options it reads.
    init(_ options: Panel.Options)
    /// The panel as the dashboard's case.
    var panel: Panel { get }
    /// Overrides the heading (and the title of its charts).
    var title: String? { get }
    /// The panel's HTML on a page; empty when it has nothing to say on these runs, which leaves no section.
    func render(in page: PanelContext) throws -> String
}

extension PanelKind {
    static var required: [String] { [] }
}
