import HarrowCore
import BoundedYAML
import Foundation
import Yams

/// A dashboard as code: a titled list of panels, read from `dashboards/*.yaml`.
public struct Dashboard: Sendable, Equatable {
    public var title: String
    /// The metric that ranks runs (top-k, sort order, best run), e.g. `val/loss` or `total`.
    public var metric: String?
    /// Which way `metric` improves, for a metric whose name does not tell it (`goal: maximize` for a custom score).
    public var goal: Goal?
    public var panels: [Panel]
}

/// Every problem in a dashboard file, each as `file:line:column: message`.
public struct DashboardError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

extension Dashboard {
    public static func parse(yaml: String, file: String) throws(DashboardError) -> Dashboard {
        var problems: [String] = []
        let source = YAMLFile(file: file, text: yaml)
        func at(_ n: Node?) -> String { source.place(n) }
        let root: Node
        switch source.root(prefix: "error: invalid YAML: ") {
        case .failure(let problem): throw DashboardError(problems: [problem.description])
        case .success(nil): throw DashboardError(problems: ["\(file):1:1: error: the dashboard is empty"])
        case .success(let r?): root = r
        }
        guard let top = root.mapping else {
            throw DashboardError(problems: ["\(at(root)): error: a dashboard is a mapping with title and panels"])
        }
        var dashboard = Dashboard(title: (file as NSString).lastPathComponent, metric: nil, goal: nil, panels: [])
        for (k, v) in top {
            switch k.string ?? "" {
            case "title": if let s = v.string { dashboard.title = s } else { problems.append("\(at(v)): error: title is text") }
            case "metric":
                if let s = v.string {
                    dashboard.metric = s
                } else {
                    problems.append("\(at(v)): error: metric is a name such as val/loss or total")
                }
            case "goal":
                if let g = v.string.flatMap(Goal.init(rawValue:)) {
                    dashboard.goal = g
                } else {
                    problems.append("\(at(v)): error: goal is minimize or maximize")
                }
            case "panels":
                guard let list = v.sequence else { problems.append("\(at(v)): error: panels is a list"); continue }
                for item in list {
                    if let p = parsePanel(item, at: at, problems: &problems) { dashboard.panels.append(p) }
                }
            case let other:
                problems.append("\(at(k)): error: unknown key '\(other)'" + hint(other, ["title", "metric", "goal", "panels"]))
            }
        }
        if top["panels"] == nil { problems.append("\(at(root)): error: a dashboard needs panels") }
        if !problems.isEmpty { throw DashboardError(problems: problems) }
        return dashboard
    }

    /// A panel is `- type: curves` with its options alongside, or `- curves: {options}`.
    private static func parsePanel(_ node: Node, at: (Node?) -> String, problems: inout [String]) -> Panel? {
        if let name = node.string {
            guard let k = kind(name, node, at: at, problems: &problems) else { return nil }
            // A bare name takes every option's default; a kind that needs one says so here, not with a crash later.
            for r in k.required { problems.append("\(at(node)): error: \(k.name) needs '\(r)'") }
            return k.required.isEmpty ? Panel(k, Panel.Options()) : nil
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
        } else if m.count == 1, let only = m.first, Panel.kind(named: only.key.string ?? "") != nil {
            kindNode = only.key
            if only.value.mapping == nil, only.value.scalar?.string.isEmpty == false || only.value.sequence != nil {
                problems.append("\(at(only.value)): error: the options of \(only.key.string!) are a mapping")
                return nil
            }
            options = only.value.mapping.map(Array.init) ?? []
        } else {
            problems.append("\(at(node)): error: a panel needs a type: one of \(Panel.kinds.map { $0.name }.joined(separator: ", "))")
            return nil
        }
        guard let k = kind(kindNode.string ?? "", kindNode, at: at, problems: &problems) else { return nil }
        var panel = Panel.Options()
        let allowed = ["title"] + k.options
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
                problems.append(
                    "\(at(key)): error: \(k.name) has no option '\(name)'" + hint(name, allowed)
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
                    guard let name = metric.string, !name.isEmpty else {
                        problems.append("\(at(metric)): error: a target is named by its metric"); continue
                    }
                    guard let x = value.float, x.isFinite else {
                        problems.append("\(at(value)): error: the target of \(name) is a number"); continue
                    }
                    targets[name] = x
                }
                panel.targets = targets
            default: break
            }
        }
        for r in k.required where !options.contains(where: { $0.key.string == r }) {
            problems.append("\(at(kindNode)): error: \(k.name) needs '\(r)'")
        }
        return Panel(k, panel)
    }

    private static func kind(_ name: String, _ node: Node, at: (Node?) -> String, problems: inout [String]) -> (any PanelKind.Type)? {
        if let k = Panel.kind(named: name) { return k }
        problems.append("\(at(node)): error: unknown panel type '\(name)'" + hint(name, Panel.kinds.map { $0.name }))
        return nil
    }

    private static func hint(_ word: String, _ candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}
