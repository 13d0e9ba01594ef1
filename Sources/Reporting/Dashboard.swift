import HarrowCore
import BoundedYAML
import Foundation
import Yams

/// A dashboard as code: a titled list of panels, read from `dashboards/*.yaml`.
public struct Dashboard: Sendable, Equatable {
    public var title: String
    /// The metric that ranks runs (top-k, sort order, best run), e.g. `val/loss` or `total`.
    public var metric: String?
    public var panels: [Panel]
}

public struct Panel: Sendable, Equatable {
    /// What a curves panel draws when it names no metrics.
    public static let defaultCurves = [TrainerContract.Metric.trainLoss, TrainerContract.Metric.valLoss]

    public enum Kind: String, Sendable, CaseIterable {
        case table, curves, scatter, heatmap, bars3h, forgetting, flips
        /// Which parameter mattered: the metric's mean ± se per value of each varying parameter, with its share.
        case effects
        /// Parallel coordinates of the varying parameters and the metric, one line per run coloured by the metric.
        case parallel
        /// In-domain 3H total against forgetting on the general set, the Pareto front marked and its runs labelled.
        case tradeoff
        /// The search's progress: each run's metric in the order the runs started, and the best so far.
        case progress
        /// Data scaling: val loss and each 3H dimension against training records on log-log axes, a power law fitted
        /// with its interval, and the records the trend predicts for a target. Drawn only when the records vary.
        case scaling
        /// Single-run panels, for run pages.
        case overview, params, verdict, scores, artifacts
    }

    public var kind: Kind
    public var title: String?
    public var params: [String]?
    public var metrics: [String]?
    public var x: String?
    public var y: String?
    public var color: String?
    public var value: String?
    public var by: String?
    public var top: Int?
    public var points: Int?
    public var gate: String?
    public var limit: Int?
    /// Log x axis: nil decides from the data (positive values spanning more than a decade, or a learning rate).
    public var logX: Bool?
    /// Target values by metric (`target: {val/loss: 0.9, helpful: 0.6}`): the scaling panel's predictions.
    public var targets: [String: Double]?

    public init(kind: Kind) { self.kind = kind }

    /// The keys each kind reads; anything else is an error with a suggestion.
    static let keys: [Kind: [String]] = [
        .table: ["params", "metrics", "top"],
        .curves: ["metrics", "top", "points"],
        .scatter: ["x", "y", "color", "log_x"],
        .heatmap: ["x", "y", "value"],
        .bars3h: ["metrics", "gate", "top"],
        .forgetting: ["x", "by"],
        .flips: ["limit"],
        .effects: ["params", "top"],
        .parallel: ["params"],
        .tradeoff: ["x", "y"],
        .progress: ["y"],
        .scaling: ["x", "metrics", "target", "gate"],
        .overview: [], .params: [], .verdict: [], .scores: [], .artifacts: [],
    ]
    static let required: [Kind: [String]] = [.scatter: ["x", "y"], .heatmap: ["x", "y", "value"]]
}

/// Every problem in a dashboard file, each as `file:line:column: message`.
public struct DashboardError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

extension Dashboard {
    public static func parse(yaml: String, file: String) throws(DashboardError) -> Dashboard {
        var problems: [String] = []
        func at(_ n: Node?) -> String { "\(file):\(n?.mark?.line ?? 1):\(n?.mark?.column ?? 1)" }
        let root: Node
        do {
            guard let r = try BoundedYAML.compose(yaml: yaml) else { throw DashboardError(problems: ["\(file):1:1: error: the dashboard is empty"]) }
            root = r
        } catch let e as DashboardError {
            throw e
        } catch let e as YamlError {
            let at = YAMLErrorLocation(e, in: yaml)
            throw DashboardError(problems: ["\(file):\(at.line):\(at.column): error: invalid YAML: \(at.problem)"])
        } catch {
            throw DashboardError(problems: ["\(file):1:1: error: \(error)"])
        }
        guard let top = root.mapping else { throw DashboardError(problems: ["\(at(root)): error: a dashboard is a mapping with title and panels"]) }
        var dashboard = Dashboard(title: (file as NSString).lastPathComponent, metric: nil, panels: [])
        for (k, v) in top {
            switch k.string ?? "" {
            case "title": if let s = v.string { dashboard.title = s } else { problems.append("\(at(v)): error: title is text") }
            case "metric": if let s = v.string { dashboard.metric = s } else { problems.append("\(at(v)): error: metric is a name such as val/loss or total") }
            case "panels":
                guard let list = v.sequence else { problems.append("\(at(v)): error: panels is a list"); continue }
                for item in list {
                    if let p = parsePanel(item, at: at, problems: &problems) { dashboard.panels.append(p) }
                }
            case let other:
                problems.append("\(at(k)): error: unknown key '\(other)'" + hint(other, ["title", "metric", "panels"]))
            }
        }
        if top["panels"] == nil { problems.append("\(at(root)): error: a dashboard needs panels") }
        if !problems.isEmpty { throw DashboardError(problems: problems) }
        return dashboard
    }

    /// A panel is `- type: curves` with its options alongside, or `- curves: {options}`.
    private static func parsePanel(_ node: Node, at: (Node?) -> String, problems: inout [String]) -> Panel? {
        if let name = node.string {
            return kind(name, node, at: at, problems: &problems).map(Panel.init(kind:))
        }
        guard let m = node.mapping else {
            problems.append("\(at(node)): error: a panel is a mapping such as {type: curves, top: 8}")
            return nil
        }
        var options = Array(m)
        let kindNode: Node
        if let t = m["type"] {
            kindNode = t
            options.removeAll { $0.key.string == "type" }
        } else if m.count == 1, let only = m.first, Panel.Kind(rawValue: only.key.string ?? "") != nil {
            kindNode = only.key
            if only.value.mapping == nil, only.value.scalar?.string.isEmpty == false || only.value.sequence != nil {
                problems.append("\(at(only.value)): error: the options of \(only.key.string!) are a mapping")
                return nil
            }
            options = only.value.mapping.map(Array.init) ?? []
        } else {
            problems.append("\(at(node)): error: a panel needs a type: one of \(Panel.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        guard let k = kind(kindNode.string ?? "", kindNode, at: at, problems: &problems) else { return nil }
        var panel = Panel(kind: k)
        let allowed = ["title"] + Panel.keys[k]!
        for (key, v) in options {
            let name = key.string ?? ""
            func text() -> String? {
                if let s = v.scalar?.string, v.scalar != nil { return s }
                problems.append("\(at(v)): error: \(name) is a single name")
                return nil
            }
            func names() -> [String]? {
                if let seq = v.sequence { return seq.compactMap { $0.string } }
                if let s = v.scalar?.string { return [s] }
                problems.append("\(at(v)): error: \(name) is a list of names")
                return nil
            }
            func count() -> Int? {
                if let i = v.int, i > 0 { return i }
                problems.append("\(at(v)): error: \(name) is a positive whole number")
                return nil
            }
            guard allowed.contains(name) else {
                problems.append("\(at(key)): error: \(k.rawValue) has no option '\(name)'" + hint(name, allowed)
                                + (allowed.count > 1 ? " (it reads \(allowed.joined(separator: ", ")))" : ""))
                continue
            }
            switch name {
            case "title": panel.title = text()
            case "params": panel.params = names()
            case "metrics": panel.metrics = names()
            case "x": panel.x = text()
            case "y": panel.y = text()
            case "color": panel.color = text()
            case "value": panel.value = text()
            case "by": panel.by = text()
            case "gate": panel.gate = text()
            case "top": panel.top = count()
            case "points":
                panel.points = count()
                if let p = panel.points, p < 3 { problems.append("\(at(v)): error: points must be at least 3") }
            case "limit": panel.limit = count()
            case "log_x":
                if let b = v.bool { panel.logX = b } else { problems.append("\(at(v)): error: log_x is true or false") }
            case "target":
                guard let m = v.mapping else {
                    problems.append("\(at(v)): error: target maps metrics to values, such as {val/loss: 0.9, helpful: 0.6}")
                    continue
                }
                var targets: [String: Double] = [:]
                for (metric, value) in m {
                    guard let name = metric.string, !name.isEmpty else { problems.append("\(at(metric)): error: a target is named by its metric"); continue }
                    guard let x = value.float, x.isFinite else { problems.append("\(at(value)): error: the target of \(name) is a number"); continue }
                    targets[name] = x
                }
                panel.targets = targets
            default: break
            }
        }
        for r in Panel.required[k] ?? [] where !options.contains(where: { $0.key.string == r }) {
            problems.append("\(at(kindNode)): error: \(k.rawValue) needs '\(r)'")
        }
        return panel
    }

    private static func kind(_ name: String, _ node: Node, at: (Node?) -> String, problems: inout [String]) -> Panel.Kind? {
        if let k = Panel.Kind(rawValue: name) { return k }
        problems.append("\(at(node)): error: unknown panel type '\(name)'" + hint(name, Panel.Kind.allCases.map(\.rawValue)))
        return nil
    }

    private static func hint(_ word: String, _ candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}
