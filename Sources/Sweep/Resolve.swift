import HarrowCore
import Foundation
import Yams

/// Checks that need the whole file: names used by expressions, exclusions and the command exist,
/// expressions form no cycle, and a grid only uses enumerable distributions.
extension ExperimentParser {
    mutating func resolve(_ experiment: inout Experiment, commandNode: Node, excludeNode: Node?, whereNode: Node?) {
        let names = experiment.parameters.map(\.name)
        let slots = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })

        for i in experiment.parameters.indices {
            let p = experiment.parameters[i]
            switch p.distribution {
            case .derived(let e):
                if let b = bind(e, slots) { experiment.parameters[i].distribution = .derived(b) }
            case .categorical(let choices):
                var bound: [Distribution.Choice] = []
                for c in choices {
                    if case .expr(let e) = c {
                        if let b = bind(e, slots) { bound.append(.expr(b)) }
                    } else {
                        bound.append(c)
                    }
                }
                if bound.count == choices.count { experiment.parameters[i].distribution = .categorical(bound) }
            default:
                if experiment.method == .grid, !methodFailed, p.distribution.gridCount == nil {
                    diagnostics.append(
                        Diagnostic(
                            .error, p.location,
                            "'\(p.name)' uses '\(p.distribution.name)', which a grid cannot enumerate",
                            hint: "list the points with `values: [...]`, or use `method: random`"))
                }
            }
        }
        reportCycles(experiment.parameters)

        if let excludeNode { experiment.exclude = parseExclusions(excludeNode, slots: slots) }
        if let whereNode, let e = expression(whereNode), let b = bind(e, slots) {
            experiment.constraint = b
            experiment.constraintLocation = location(whereNode)
        }
        checkCommand(experiment, node: commandNode, slots: slots)

        if experiment.usesBuiltInTrainer {
            for p in experiment.parameters where !Experiment.builtInTrainerParameters.contains(p.name) {
                diagnostics.append(
                    Diagnostic(
                        .warning, p.location, "harrow-train does not read '\(p.name)'",
                        hint: didYouMean(p.name, Experiment.builtInTrainerParameters)
                            ?? "it is passed along in trial.json and otherwise unused"))
            }
        }
    }

    private mutating func bind(_ e: Expression, _ slots: [String: Int]) -> Expression? {
        do {
            return try e.bound(to: slots)
        } catch {
            let node = expressionNodes[e.source]
            let offset =
                e.source.range(of: e.names.first { slots[$0] == nil } ?? "")
                .map { e.source.distance(from: e.source.startIndex, to: $0.lowerBound) } ?? 0
            diagnostics.append(
                Diagnostic(
                    .error, node.map { location(in: $0, offset: offset) } ?? location(nil),
                    "bad expression: \(error.message)", hint: error.hint))
            return nil
        }
    }

    private mutating func reportCycles(_ parameters: [Experiment.Parameter]) {
        let index = Dictionary(uniqueKeysWithValues: parameters.enumerated().map { ($1.name, $0) })
        let deps = parameters.map { $0.distribution.expressionNames.compactMap { index[$0] } }
        var state = [Int](repeating: 0, count: parameters.count)  // 0 new, 1 on the stack, 2 done
        var stack: [Int] = []
        func visit(_ i: Int) -> [Int]? {
            if state[i] == 2 { return nil }
            if state[i] == 1 { return Array(stack[stack.firstIndex(of: i)!...]) + [i] }
            state[i] = 1
            stack.append(i)
            defer { stack.removeLast(); state[i] = 2 }
            for d in deps[i] { if let cycle = visit(d) { return cycle } }
            return nil
        }
        for i in parameters.indices {
            if let cycle = visit(i) {
                diagnostics.append(
                    Diagnostic(
                        .error, parameters[cycle[0]].location,
                        "parameters depend on each other in a cycle: \(cycle.map { parameters[$0].name }.joined(separator: " → "))",
                        hint: "one of them must be given values, not computed"))
                return
            }
        }
    }

    private mutating func parseExclusions(_ node: Node, slots: [String: Int]) -> [Experiment.Exclusion] {
        guard case .sequence(let seq) = node else {
            error(node, "`exclude` must be a list of partial assignments", hint: "e.g. `- {base_model: chat, epochs: 1}`")
            return []
        }
        var out: [Experiment.Exclusion] = []
        for entry in seq {
            guard let m = entry.mapping, m.count > 0 else {
                error(entry, "each `exclude` entry is a mapping of parameter names to values")
                continue
            }
            var assignment: [(name: String, value: ParamValue)] = []
            for (k, v) in m {
                let name = k.scalar?.string ?? ""
                guard slots[name] != nil else {
                    error(k, "exclude names unknown parameter '\(name)'", hint: didYouMean(name, slots.keys))
                    continue
                }
                guard let value = value(v) else { error(v, "exclude values are scalars or lists"); continue }
                assignment.append((name, value))
            }
            if assignment.count == m.count { out.append(.init(assignment: assignment, location: location(entry))) }
        }
        return out
    }

    private mutating func checkCommand(_ experiment: Experiment, node: Node, slots: [String: Int]) {
        let tokens = experiment.trainer.command
        let items = node.sequence.map(Array.init) ?? []
        for (i, token) in tokens.enumerated() {
            let at = i < items.count ? items[i] : node
            if token.hasPrefix("${"), token.hasSuffix("}"), !token.hasPrefix("${envvar:") {
                if !Experiment.commandMacros.contains(token) {
                    warning(
                        at, "unknown macro \(token) expands to nothing, as in W&B",
                        hint: didYouMean(token, Experiment.commandMacros))
                } else if token == "${program}", experiment.program == nil {
                    error(at, "the command uses ${program} but the file has no `program:`")
                }
            }
            for name in CommandTemplate.parameterPlaceholders(in: token) where slots[name] == nil {
                error(at, "{param.\(name)} names no parameter", hint: didYouMean(name, slots.keys))
            }
        }
    }
}

extension Distribution {
    /// Parameter names the distribution's expressions read.
    var expressionNames: [String] {
        switch self {
        case .derived(let e): e.names
        case .categorical(let choices):
            choices.flatMap { c -> [String] in if case .expr(let e) = c { e.names } else { [] } }
        default: []
        }
    }

    var hasExpressions: Bool { !expressionNames.isEmpty || { if case .derived = self { true } else { false } }() }
}
