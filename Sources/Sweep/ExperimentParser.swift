import HarrowCore
import BoundedYAML
import Foundation
import Yams

extension Experiment {
    /// Top-level keys Harrow acts on.
    static let harrowKeys = [
        "name", "description", "method", "metric", "parameters", "count", "seed", "run_cap", "program", "command",
        "trainer", "resources", "exclude", "where", "early_terminate", "early_stop", "diagnosis", "eval", "executor",
        "advice", "data", "notify"
    ]
    /// Keys W&B knows that Harrow accepts and ignores, with a warning.
    static let wandbOnlyKeys = ["metrics", "controller", "scheduler", "apiVersion", "kind", "job", "image_uri", "entity", "project"]
    static let specKeys = [
        "values", "value", "min", "max", "distribution", "q", "mu", "sigma", "a", "b", "probabilities", "expr", "parameters"
    ]
    static let distributionNames = [
        "constant", "categorical", "categorical_w_probabilities", "int_uniform", "uniform", "q_uniform",
        "log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values", "normal", "q_normal", "log_normal",
        "q_log_normal", "beta", "q_beta"
    ]
    /// W&B's deprecated distributions whose bounds are natural logs, with the `_values` form each is sampled as.
    static let logBoundDistributions = [
        "log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values", "inv_log_uniform": "inv_log_uniform_values"
    ]
    static let commandMacros = [
        "${env}", "${interpreter}", "${program}", "${args}", "${args_no_equals}", "${args_no_hyphens}",
        "${args_no_boolean_flags}", "${args_json}", "${args_json_file}", "${args_append_hydra}",
        "${args_override_hydra}"
    ]

    /// Parses an experiment file's text. `file` is used in messages and to name an unnamed sweep.
    /// Throws every error found at once; warnings travel in `warnings`.
    public static func parse(yaml: String, file: String) throws(ExperimentError) -> Experiment {
        var parser = ExperimentParser(file: file, text: yaml)
        let experiment = parser.parse()
        if let experiment, !parser.diagnostics.contains(where: { $0.severity == .error }) {
            var result = experiment
            result.warnings = parser.diagnostics
            return result
        }
        throw ExperimentError(
            diagnostics: parser.diagnostics.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) })
    }

    /// Where a top-level key's value is written, for problems found after parsing (a command's options against
    /// the file); the file's start when the key is absent.
    public static func location(ofKey key: String, yaml: String, file: String) -> SourceLocation {
        let parser = ExperimentParser(file: file, text: yaml)
        let node = (try? BoundedYAML.compose(yaml: yaml))?.mapping?[key]
        return parser.location(node)
    }
}

/// Walks the YAML node tree (not a Codable decode) so every problem keeps its line and column
/// and all of them can be reported together.
struct ExperimentParser {
    let file: String
    let text: String
    var diagnostics: [Diagnostic] = []
    /// Where each expression was written, for errors found when binding it.
    var expressionNodes: [String: Node] = [:]
    /// A bad `method` makes grid-only checks meaningless; they are skipped so only the real error shows.
    var methodFailed = false

    init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    // MARK: Locations and reporting

    func location(_ node: Node?) -> SourceLocation {
        let mark = node?.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Strings become file names, argv entries and environment values, where a NUL would silently cut them
    /// short: a YAML escape (`"\0"`) that writes one is refused where it is written.
    mutating func refuseControlBytes(_ node: Node) {
        switch node {
        case .scalar(let scalar) where scalar.string.contains("\u{0}"):
            error(node, "a NUL byte cannot be part of a name, a value or a command", hint: "remove the \\0 escape")
        case .mapping(let mapping):
            for (key, value) in mapping {
                refuseControlBytes(key)
                refuseControlBytes(value)
            }
        case .sequence(let sequence):
            for item in sequence { refuseControlBytes(item) }
        default:
            break
        }
    }

    mutating func error(_ node: Node?, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(.error, location(node), message, hint: hint))
    }

    mutating func warning(_ node: Node?, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(.warning, location(node), message, hint: hint))
    }

    /// Where an expression's error points: the scalar's start, past an opening quote, plus the offset.
    func location(in node: Node, offset: Int) -> SourceLocation {
        var loc = location(node)
        if let style = node.scalar?.style, style == .singleQuoted || style == .doubleQuoted { loc.column += 1 }
        loc.column += offset
        return loc
    }

    // MARK: Top level

    mutating func parse() -> Experiment? {
        let root: Node?
        do {
            root = try BoundedYAML.compose(yaml: text)
        } catch let error as YamlError {
            reportSyntax(error)
            return nil
        } catch {
            diagnostics.append(Diagnostic(.error, SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)"))
            return nil
        }
        guard let root else {
            error(nil, "the file is empty", hint: "an experiment needs at least `parameters:`")
            return nil
        }
        guard let top = root.mapping else {
            error(root, "an experiment is a mapping of keys (method, parameters, …), not a \(kind(root))")
            return nil
        }
        refuseControlBytes(root)

        var experiment = Experiment(
            file: file, name: defaultName, description: nil, method: .grid, metric: nil, count: nil, seed: 0,
            runCap: nil, program: nil, trainer: .init(command: [], timeout: nil, retries: 0), resources: nil,
            earlyTerminate: nil, parameters: [], exclude: [], constraint: nil, constraintLocation: nil, warnings: [])
        var wandbCommand: (node: Node, argv: [String])?
        var trainerCommand: (node: Node, argv: [String])?
        var excludeNode: Node?, whereNode: Node?, parametersNode: Node?
        var countNode: Node?
        var earlyTerminateNode: Node?

        for (keyNode, value) in top {
            guard let key = keyNode.scalar?.string else {
                error(keyNode, "keys must be plain names")
                continue
            }
            switch key {
            case "name": experiment.name = string(value, key) ?? experiment.name
            case "description": experiment.description = string(value, key)
            case "method":
                guard let m = string(value, key) else { break }
                switch m {
                case "grid": experiment.method = .grid
                case "random": experiment.method = .random
                case "bayes": experiment.method = .bayes
                case "tpe": experiment.method = .tpe
                case "custom":
                    methodFailed = true
                    error(value, "method 'custom' needs W&B's scheduler, which Harrow does not run", hint: "use 'grid' or 'random'")
                default:
                    methodFailed = true
                    error(
                        value, "unknown method '\(m)'",
                        hint: didYouMean(m, ["grid", "random", "bayes", "tpe"]) ?? "one of: grid, random, bayes, tpe")
                }
            case "metric": experiment.metric = parseMetric(value)
            case "parameters": parametersNode = value
            case "count":
                countNode = value
                experiment.count = integer(value, key, atLeast: 1)
            case "seed": experiment.seed = integer(value, key, atLeast: 0).map { UInt64($0) } ?? 0
            case "run_cap": experiment.runCap = integer(value, key, atLeast: 1)
            case "program": experiment.program = string(value, key)
            case "command": wandbCommand = argv(value, key).map { (value, $0) }
            case "trainer": trainerCommand = parseTrainer(value, into: &experiment.trainer)
            case "resources": experiment.resources = parseResources(value, packing: &experiment.gpuPacking)
            case "executor": experiment.executor = parseExecutor(value)
            case "exclude": excludeNode = value
            case "where": whereNode = value
            case "early_terminate":
                earlyTerminateNode = value
                experiment.earlyTerminate = parseEarlyTerminate(value)
            case "early_stop": experiment.earlyStop = parseEarlyStop(value)
            case "diagnosis": experiment.diagnosis = parseDiagnosis(value)
            case "eval": experiment.evaluation = parseEvaluation(value)
            case "advice": experiment.adviceIgnore = parseAdvice(value)
            case "data": experiment.dataCheck = parseDataCheck(value)
            case "notify": experiment.notify = parseNotify(value)
            case _ where Experiment.wandbOnlyKeys.contains(key):
                warning(keyNode, "'\(key)' is a W&B setting Harrow does not act on; it is ignored")
            default:
                error(
                    keyNode, "unknown key '\(key)'",
                    hint: didYouMean(key, Experiment.harrowKeys + Experiment.wandbOnlyKeys)
                        ?? "known keys: \(Experiment.harrowKeys.joined(separator: ", "))")
            }
        }

        if let parametersNode {
            // Two keys can name one parameter: `a.b` beside a nested `a: {parameters: {b: …}}`, or keys that differ
            // only by a YAML tag (`!!str lr` and `lr`). Every later step keys parameters by name, so one is refused.
            var seen = Set<String>()
            experiment.parameters = parseParameters(parametersNode, prefix: []).sorted { $0.path.lexicographicallyPrecedes($1.path) }
                .map {
                    var p = $0.parameter; p.path = $0.path; return p
                }
                .filter { p in
                    if seen.insert(p.name).inserted { return true }
                    diagnostics.append(
                        Diagnostic(
                            .error, p.location, "parameter '\(p.name)' is given twice",
                            hint: "keep one of them (nested blocks join names with `.`)"))
                    return false
                }
        } else {
            error(root, "no `parameters:`", hint: "add `parameters:` with at least one parameter, e.g. `lr: {values: [1.0e-4, 2.0e-4]}`")
        }

        switch (wandbCommand, trainerCommand) {
        case let (w?, t?):
            error(t.node, "both `command` and `trainer.command` are given", hint: "keep one; \(location(w.node)) has the other")
        case let (w?, nil): experiment.trainer.command = w.argv
        case let (nil, t?): experiment.trainer.command = t.argv
        case (nil, nil):
            experiment.trainer.command = experiment.program == nil ? Experiment.builtInTrainerCommand : Experiment.wandbDefaultCommand
        }

        // W&B's schema requires `method` (wandb/sweeps@b1dfc5f src/sweeps/config/schema.json, `required`), so a W&B
        // file (one with `program:` or W&B's top-level `command:`) without it is refused rather than read as a grid.
        // Harrow's own files (`trainer:` or the built-in trainer) keep grid as their default.
        if top["method"] == nil, top["program"] != nil || top["command"] != nil {
            methodFailed = true
            error(
                nil, "'method' is a required property",
                hint: "a W&B sweep file names its search: add `method: grid`, `random` or `bayes` (or Harrow's `tpe`)")
        }
        // A random sweep without `count` or `run_cap` runs until it is stopped, as W&B's does: `Planner.limit` is nil
        // and the runner draws its trials one at a time (`harrow sweep` then needs `--deadline`).
        // The store holds the log's series under the names `trainer.metrics.keys` maps them to: so does the metric.
        if let name = experiment.metric?.name, let renamed = experiment.trainer.metrics?.keys[name] { experiment.metric?.name = renamed }
        if experiment.isWandb, let parametersNode, let first = yaml11Strings(parametersNode).first {
            let count = yaml11Strings(parametersNode).count
            warning(
                first,
                "`\(first.scalar!.string)` is a number here but a string to `wandb sweep`, which reads YAML 1.1 (PyYAML)"
                    + (count > 1 ? " (\(count) such values in `parameters`)" : ""),
                hint:
                    "write it `\(ParamValue.double(first.float ?? 0).yaml)` (a `.` and a signed exponent), so the file means the same under W&B"
            )
        }
        if experiment.method.isAdaptive, experiment.metric == nil {
            error(
                root, "a \(experiment.method.rawValue) search needs `metric` to know what to optimise",
                hint: "add e.g. `metric: {name: val/loss, goal: minimize}`")
        }
        if let node = earlyTerminateNode, experiment.earlyTerminate != nil, experiment.metric == nil {
            warning(
                node, "hyperband compares trials by the sweep's `metric`; without one it is not applied",
                hint: "add e.g. `metric: {name: val/loss, goal: minimize}`")
        }
        if experiment.method == .grid, let countNode {
            warning(countNode, "`count` applies to random sweeps; a grid runs every point (use `run_cap` to limit it)")
        }

        resolve(
            &experiment, commandNode: trainerCommand?.node ?? wandbCommand?.node ?? root,
            excludeNode: excludeNode, whereNode: whereNode)
        return experiment
    }

    private var defaultName: String {
        let base = (file as NSString).lastPathComponent
        return base.hasSuffix(".yaml") ? String(base.dropLast(5)) : base.hasSuffix(".yml") ? String(base.dropLast(4)) : base
    }

    private mutating func reportSyntax(_ yamlError: YamlError) {
        let at = YAMLErrorLocation(yamlError, in: text)
        var hint: String?
        if let context = at.context { hint = "\(context.text) at \(file):\(context.line):\(context.column)" }
        if case .duplicatedKeysInMapping = yamlError { hint = "each key may appear once in a mapping" }
        if at.problem.contains("found character that cannot start any token"), text.contains("\t") {
            hint = (hint.map { $0 + "; " } ?? "") + "YAML indents with spaces, not tabs"
        }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(at.line - 1).first ?? ""
        if line.contains("[") && line.contains("${") {
            hint = (hint.map { $0 + "; " } ?? "") + "quote macros in flow lists (`\"${args}\"`) or use a block list: `{` opens a mapping"
        }
        let message: String
        switch yamlError {
        case .duplicatedKeysInMapping, .reader: message = at.problem
        default: message = "invalid YAML: \(at.problem)"
        }
        diagnostics.append(Diagnostic(.error, SourceLocation(file: file, line: at.line, column: at.column), message, hint: hint))
    }

    // MARK: Scalars

    func kind(_ node: Node) -> String {
        switch node {
        case .scalar: "scalar"
        case .mapping: "mapping"
        case .sequence: "list"
        case .alias: "alias"
        }
    }

    /// A YAML scalar or list as a value. Plain scalars are typed by YAML's rules; quoted ones stay strings.
    /// Plain scalars YAML 1.2 reads as floats and YAML 1.1 as strings: an exponent without a `.` in the mantissa
    /// (`1e-5`), which PyYAML's float pattern needs.
    func yaml11Strings(_ node: Node) -> [Node] {
        switch node {
        case .scalar(let s):
            guard s.style == .plain || s.style == .any, node.float != nil, node.int == nil,
                s.string.contains(where: { $0 == "e" || $0 == "E" }), !s.string.contains(".")
            else { return [] }
            return [node]
        case .sequence(let seq): return seq.flatMap(yaml11Strings)
        case .mapping(let m): return m.flatMap { yaml11Strings($0.value) }
        default: return []
        }
    }

    func value(_ node: Node) -> ParamValue? {
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let b = node.bool { return .bool(b) }
            if let i = node.int { return .int(i) }
            if let d = node.float { return .double(d) }
            return .string(scalar.string)
        case .sequence(let seq):
            var items: [ParamValue] = []
            for item in seq {
                guard let v = value(item) else { return nil }
                items.append(v)
            }
            return .list(items)
        default:
            return nil
        }
    }

    mutating func string(_ node: Node, _ key: String) -> String? {
        if case .scalar(let s) = node, case .string(let v)? = value(node) { _ = s; return v }
        error(node, "`\(key)` must be text, found \(describe(node))")
        return nil
    }

    mutating func integer(_ node: Node, _ key: String, atLeast minimum: Int) -> Int? {
        guard case .int(let i)? = value(node) else {
            error(node, "`\(key)` must be a whole number, found \(describe(node))")
            return nil
        }
        guard i >= minimum else {
            error(node, "`\(key)` must be at least \(minimum), found \(i)")
            return nil
        }
        return i
    }

    mutating func number(_ node: Node, _ key: String) -> (value: Double, integral: Bool)? {
        switch value(node) {
        case .int(let i)?: return (Double(i), true)
        case .double(let d)? where d.isFinite: return (d, false)
        default:
            error(node, "`\(key)` must be a finite number, found \(describe(node))")
            return nil
        }
    }

    func describe(_ node: Node) -> String {
        guard case .scalar(let s) = node, let v = value(node) else { return "a \(kind(node))" }
        return "\(v.typeName) '\(s.string)'"
    }

    mutating func argv(_ node: Node, _ key: String) -> [String]? {
        guard case .sequence(let seq) = node else {
            error(
                node, "`\(key)` must be a list of arguments, found \(describe(node))",
                hint: "write the argv as a block list (`- python`, `- train.py`, …); arguments never pass through a shell")
            return nil
        }
        var out: [String] = []
        for item in seq {
            guard case .scalar(let s) = item else {
                let hint = item.mapping != nil ? "quote macros in flow lists (`\"${args}\"`) or use a block list: `{` opens a mapping" : nil
                error(item, "each argument must be a single word or string, found a \(kind(item))", hint: hint)
                return nil
            }
            out.append(s.string)
        }
        if out.isEmpty { error(node, "`\(key)` is empty") }
        return out
    }

    /// Checks a mapping's keys against the known ones, with a did-you-mean. Returns false if any is unknown.
    @discardableResult
    mutating func checkKeys(_ mapping: Node.Mapping, allowed: [String], in context: String) -> Bool {
        var known = true
        for (k, _) in mapping {
            let name = k.scalar?.string ?? ""
            if !allowed.contains(name) {
                known = false
                error(
                    k, "unknown key '\(name)' in \(context)",
                    hint: didYouMean(name, allowed) ?? "known keys: \(allowed.joined(separator: ", "))")
            }
        }
        return known
    }

    // MARK: Sections

    mutating func parseMetric(_ node: Node) -> Experiment.Metric? {
        guard let m = node.mapping else {
            error(node, "`metric` must be a mapping like `{name: val/loss, goal: minimize}`")
            return nil
        }
        checkKeys(m, allowed: ["name", "goal", "target", "impute", "impute_while_running"], in: "metric")
        for key in ["target", "impute", "impute_while_running"] where m[key] != nil {
            warning(m[key], "metric `\(key)` is a W&B setting Harrow does not act on; it is ignored")
        }
        guard let nameNode = m["name"] else {
            error(node, "`metric` needs a `name`", hint: "e.g. `name: val/loss`")
            return nil
        }
        guard let name = string(nameNode, "metric.name") else { return nil }
        var goal = Experiment.Metric.Goal.minimize
        if let g = m["goal"] {
            let text = string(g, "metric.goal") ?? "minimize"
            if let parsed = Experiment.Metric.Goal(rawValue: text) {
                goal = parsed
            } else {
                error(g, "metric goal must be 'minimize' or 'maximize', found '\(text)'", hint: didYouMean(text, ["minimize", "maximize"]))
            }
        }
        return .init(name: name, goal: goal)
    }

    mutating func parseTrainer(_ node: Node, into trainer: inout Experiment.Trainer) -> (Node, [String])? {
        guard let m = node.mapping else {
            error(node, "`trainer` must be a mapping with `command`, `timeout`, `retries`")
            return nil
        }
        checkKeys(m, allowed: ["command", "timeout", "retries", "metrics", "profile", "config", "program", "map"], in: "trainer")
        if let t = m["timeout"] { trainer.timeout = duration(t) }
        if let l = m["metrics"] { trainer.metrics = parseMetricsLog(l) }
        if let r = m["retries"] { trainer.retries = integer(r, "trainer.retries", atLeast: 0) ?? 0 }
        if let p = m["profile"] {
            if let c = m["command"] {
                error(c, "`trainer.command` and `trainer.profile` both say how to start the trainer", hint: "keep one")
            }
            guard let profile = parseProfile(p, in: m) else { return nil }
            trainer.profile = profile
            if trainer.metrics == nil { trainer.metrics = profile.metrics }
            return (p, profile.commandTemplate)
        }
        for key in ["config", "program", "map"] where m[key] != nil {
            error(m[key], "`trainer.\(key)` belongs to a `trainer.profile`", hint: "add `profile: llamafactory` or `profile: hf`")
        }
        guard let c = m["command"] else { return nil }
        return argv(c, "trainer.command").map { (c, $0) }
    }

    /// `trainer: {profile: llamafactory, config: configs/lora.yaml}` or `{profile: hf, program: train.py}`, with an
    /// optional `map: {lr: learning_rate}` over the profile's names.
    mutating func parseProfile(_ node: Node, in m: Node.Mapping) -> TrainerProfile? {
        let kinds = TrainerProfile.Kind.allCases.map(\.rawValue)
        guard let name = string(node, "trainer.profile") else { return nil }
        guard let kind = TrainerProfile.Kind(rawValue: name) else {
            error(node, "unknown trainer profile '\(name)'", hint: didYouMean(name, kinds) ?? "one of: \(kinds.joined(separator: ", "))")
            return nil
        }
        var profile = TrainerProfile(kind: kind)
        profile.config = m["config"].flatMap { string($0, "trainer.config") }
        profile.program = m["program"].flatMap { string($0, "trainer.program") }
        if let mapNode = m["map"] {
            if let mm = mapNode.mapping {
                for (key, value) in mm {
                    guard let from = key.scalar?.string, let to = string(value, "trainer.map.\(key.scalar?.string ?? "")") else { continue }
                    profile.map[from] = to
                }
            } else {
                error(mapNode, "`trainer.map` maps Harrow's parameter names onto the tool's, e.g. `{lr: learning_rate}`")
            }
        }
        switch kind {
        case .llamafactory where profile.config == nil:
            error(node, "`profile: llamafactory` needs `config:`, the LLaMA-Factory training YAML the trials start from")
            return nil
        case .hf where profile.program == nil:
            error(node, "`profile: hf` needs `program:`, the Trainer/TRL script to run")
            return nil
        default: return profile
        }
    }

    /// `trainer.metrics: {format: llamafactory}` or `{format: jsonl, path: logs/train.jsonl, keys: {loss: train/loss}}`.
    mutating func parseMetricsLog(_ node: Node) -> Experiment.MetricsLog? {
        let formats = Experiment.MetricsLog.Format.allCases.map(\.rawValue)
        guard let m = node.mapping else {
            error(
                node, "`trainer.metrics` must be a mapping like `{format: llamafactory}`",
                hint: "formats: \(formats.joined(separator: ", "))")
            return nil
        }
        checkKeys(m, allowed: ["format", "path", "keys"], in: "trainer.metrics")
        guard let f = m["format"], let name = string(f, "trainer.metrics.format") else {
            if m["format"] == nil { error(node, "`trainer.metrics` needs a `format`", hint: "one of: \(formats.joined(separator: ", "))") }
            return nil
        }
        guard let format = Experiment.MetricsLog.Format(rawValue: name) else {
            error(f, "unknown metrics format '\(name)'", hint: didYouMean(name, formats) ?? "one of: \(formats.joined(separator: ", "))")
            return nil
        }
        var keys: [String: String] = [:]
        if let k = m["keys"] {
            if let km = k.mapping {
                for (key, value) in km {
                    guard let from = key.scalar?.string, let to = string(value, "trainer.metrics.keys.\(key.scalar?.string ?? "")") else {
                        continue
                    }
                    keys[from] = to
                }
            } else {
                error(
                    k,
                    "`trainer.metrics.keys` maps the log's names onto Harrow's, e.g. `{loss: train/loss, eval_loss: val/loss, global_step: step}`"
                )
            }
        }
        let path = m["path"].flatMap { string($0, "trainer.metrics.path") } ?? Experiment.MetricsLog.defaultPath(format)
        guard let path else {
            error(node, "`trainer.metrics` with format \(name) needs a `path` (relative to the run folder)")
            return nil
        }
        if path.hasPrefix("/") || path.split(separator: "/").contains("..") {
            error(m["path"] ?? node, "`trainer.metrics.path` is relative to the run folder and stays inside it, found '\(path)'")
            return nil
        }
        return .init(format: format, path: path, keys: keys)
    }

    /// Seconds, or a duration such as `90m`, `2h`, `1h30m`, `45s`.
    mutating func duration(_ node: Node) -> Double? {
        switch value(node) {
        case .int(let i)? where i > 0: return Double(i)
        case .double(let d)? where d > 0: return d
        case .string(let s)?:
            if let seconds = parseDuration(s), seconds > 0 { return seconds }
        default: break
        }
        error(node, "timeout must be a positive duration, found \(describe(node))", hint: "seconds (`3600`) or `90m`, `2h`, `1h30m`")
        return nil
    }

    mutating func parseExecutor(_ node: Node) -> Experiment.ExecutorSettings? {
        guard let m = node.mapping else {
            error(node, "`executor` must be a mapping like `{type: slurm, partition: gpu, gres: \"gpu:1\"}`")
            return nil
        }
        checkKeys(
            m,
            allowed: [
                "type", "partition", "time", "cpus_per_task", "mem", "gres", "gpu_memory", "array_parallelism",
                "extra_args", "poll"
            ],
            in: "executor")
        var settings = Experiment.ExecutorSettings()
        if let t = m["type"], let name = string(t, "executor.type") {
            guard let kind = Experiment.ExecutorSettings.Kind(rawValue: name) else {
                error(t, "unknown executor type '\(name)'", hint: "`local` (this machine) or `slurm`")
                return nil
            }
            settings.type = kind
        }
        if let n = m["partition"] { settings.partition = string(n, "executor.partition") }
        if let n = m["time"] {
            let text = n.scalar?.string ?? ""
            if SlurmTime.minutes(text) == nil {
                error(
                    n, "`executor.time` must be a Slurm time limit, found \(describe(n))",
                    hint: "minutes (`90`), `H:MM:SS` (`4:00:00`) or `D-HH:MM:SS` (`1-12:00:00`), as sbatch --time takes it")
            } else {
                settings.time = text
            }
        }
        if let n = m["cpus_per_task"] { settings.cpusPerTask = integer(n, "executor.cpus_per_task", atLeast: 1) }
        if let n = m["mem"] { settings.mem = n.scalar?.string }
        if let n = m["gres"] { settings.gres = string(n, "executor.gres") }
        if let n = m["gpu_memory"] {
            if let bytes = Self.bytes(n.scalar?.string ?? "") {
                settings.gpuMemory = bytes
            } else {
                error(n, "`executor.gpu_memory` must be a size like 80GB, 24 GiB or 16000MB")
            }
        }
        if let n = m["array_parallelism"] { settings.arrayParallelism = integer(n, "executor.array_parallelism", atLeast: 1) }
        if let n = m["extra_args"] { settings.extraArgs = argv(n, "executor.extra_args") ?? [] }
        if let n = m["poll"], let p = number(n, "executor.poll") {
            if p.value >= 1 { settings.poll = p.value } else { error(n, "`executor.poll` must be at least 1 second") }
        }
        return settings
    }

    /// `80GB`, `24 GiB`, `16000MB`, `1.5T` in bytes; GB and GiB alike are 2³⁰ (cards are sold and reported in GiB).
    static func bytes(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: " ", with: "")
        let units: [(String, Double)] = [
            ("TIB", 0x1p40), ("TB", 0x1p40), ("T", 0x1p40), ("GIB", 0x1p30), ("GB", 0x1p30), ("G", 0x1p30),
            ("MIB", 0x1p20), ("MB", 0x1p20), ("M", 0x1p20)
        ]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count)), n > 0, n.isFinite else { return nil }
            return Int(n * scale)
        }
        return nil
    }

    mutating func parseResources(_ node: Node, packing: inout Experiment.GPUPacking) -> Experiment.Resources? {
        guard let m = node.mapping else {
            error(node, "`resources` must be `{parallel: N}` or `{gpus: [0, 1]}`")
            return nil
        }
        checkKeys(m, allowed: ["parallel", "gpus", "gpu_memory", "gpus_per_trial"], in: "resources")
        if m["parallel"] != nil, m["gpus"] != nil {
            error(node, "give either `parallel` (CPU slots) or `gpus` (one trial per GPU), not both")
            return nil
        }
        if m["gpus"] == nil, let extra = m["gpu_memory"] ?? m["gpus_per_trial"] {
            error(extra, "`gpu_memory` and `gpus_per_trial` go with `gpus: [...]`")
        }
        if let p = m["parallel"] { return integer(p, "resources.parallel", atLeast: 1).map { .parallel($0) } }
        if let g = m["gpus"] {
            guard case .list(let items)? = value(g), !items.isEmpty else {
                error(g, "`resources.gpus` must be a non-empty list of device numbers, e.g. [0, 1]")
                return nil
            }
            var ids: [Int] = []
            for item in items {
                guard case .int(let i) = item, i >= 0 else {
                    error(g, "GPU numbers must be whole numbers from 0, found \(item.json)")
                    return nil
                }
                ids.append(i)
            }
            if let n = m["gpu_memory"] {
                if let bytes = Self.bytes(n.scalar?.string ?? "") {
                    packing.memory = bytes
                } else {
                    error(n, "`resources.gpu_memory` must be a size like 80GB, 24 GiB or 16000MB")
                }
            }
            if let n = m["gpus_per_trial"], let k = integer(n, "resources.gpus_per_trial", atLeast: 1) {
                if k > ids.count {
                    error(n, "`gpus_per_trial` is \(k), but only \(ids.count) GPUs are listed")
                } else {
                    packing.perTrial = k
                }
            }
            return .gpus(ids)
        }
        return nil
    }

    mutating func parseEarlyTerminate(_ node: Node) -> Experiment.EarlyTerminate? {
        guard let m = node.mapping else {
            error(node, "`early_terminate` must be a mapping like `{type: hyperband, min_iter: 3}`")
            return nil
        }
        checkKeys(m, allowed: ["type", "min_iter", "max_iter", "s", "eta", "strict"], in: "early_terminate")
        let type = m["type"].flatMap { string($0, "early_terminate.type") }
        guard type == "hyperband" else {
            error(m["type"] ?? node, "early_terminate needs `type: hyperband` (the only type W&B defines)")
            return nil
        }
        var result = Experiment.EarlyTerminate(type: "hyperband", minIter: nil, maxIter: nil, s: nil, eta: 3, strict: true)
        if let n = m["min_iter"] { result.minIter = integer(n, "early_terminate.min_iter", atLeast: 1) }
        if let n = m["max_iter"] { result.maxIter = integer(n, "early_terminate.max_iter", atLeast: 1) }
        if let n = m["s"] { result.s = number(n, "early_terminate.s")?.value }
        if let n = m["eta"], let eta = number(n, "early_terminate.eta")?.value {
            if eta > 1 { result.eta = eta } else { error(n, "early_terminate.eta must be greater than 1") }
        }
        if let n = m["strict"] {
            if case .bool(let b)? = value(n) { result.strict = b } else { error(n, "early_terminate.strict must be true or false") }
        }
        if result.minIter == nil, result.maxIter == nil || result.s == nil {
            error(node, "hyperband needs `min_iter`, or both `max_iter` and `s`")
        }
        return result
    }
}

extension ExperimentParser {
    mutating func parseEarlyStop(_ node: Node) -> Experiment.EarlyStopRule? {
        guard let m = node.mapping else {
            error(node, "`early_stop` must be a mapping like `{patience: 3, min_delta: 0.001}`")
            return nil
        }
        checkKeys(m, allowed: ["patience", "min_delta"], in: "early_stop")
        guard let p = m["patience"] else {
            error(node, "`early_stop` needs `patience`: how many evaluations without improvement end a trial")
            return nil
        }
        guard let patience = integer(p, "early_stop.patience", atLeast: 1) else { return nil }
        var minDelta = 0.0
        if let d = m["min_delta"], let v = number(d, "early_stop.min_delta") {
            if v.value >= 0 { minDelta = v.value } else { error(d, "`min_delta` must not be negative") }
        }
        return .init(patience: patience, minDelta: minDelta)
    }

    mutating func parseEvaluation(_ node: Node) -> Experiment.Evaluation? {
        guard let m = node.mapping else {
            error(node, "`eval` must be a mapping like `{evalsets: [evalsets/domain-3h, evalsets/general]}`")
            return nil
        }
        checkKeys(m, allowed: ["evalsets", "scorer", "timeout"], in: "eval")
        guard let sets = m["evalsets"], case .list(let items)? = value(sets), !items.isEmpty else {
            error(m["evalsets"] ?? node, "`eval.evalsets` must be a non-empty list of evalset folders")
            return nil
        }
        let evalsets = items.compactMap { v -> String? in if case .string(let s) = v { s } else { nil } }
        guard evalsets.count == items.count else { error(sets, "evalset folders are paths (text)"); return nil }
        return .init(
            evalsets: evalsets, scorer: m["scorer"].flatMap { argv($0, "eval.scorer") }, timeout: m["timeout"].flatMap { duration($0) })
    }

    mutating func parseDiagnosis(_ node: Node) -> [String: Double] {
        guard let m = node.mapping else {
            error(node, "`diagnosis` must be a mapping of thresholds, e.g. `{overfit_rise_percent: 5}`")
            return [:]
        }
        var out: [String: Double] = [:]
        for (k, v) in m {
            let name = k.scalar?.string ?? ""
            guard DiagnosisSettings.names.contains(name) else {
                error(
                    k, "unknown diagnosis threshold '\(name)'",
                    hint: didYouMean(name, DiagnosisSettings.names) ?? "known: \(DiagnosisSettings.names.joined(separator: ", "))")
                continue
            }
            if let n = number(v, "diagnosis.\(name)") { out[name] = n.value }
        }
        return out
    }
}

/// `3600`, `90m`, `2h`, `1h30m`, `45s`, `1.5h` → seconds.
public func parseDuration(_ text: String) -> Double? {
    let s = text.trimmingCharacters(in: .whitespaces).lowercased()
    if let plain = Double(s) { return plain }
    var total = 0.0, digits = "", sawUnit = false
    for c in s {
        if c.isNumber || c == "." {
            digits.append(c)
        } else if let unit = ["h": 3600.0, "m": 60, "s": 1, "d": 86400][String(c)], let n = Double(digits) {
            total += n * unit
            digits = ""
            sawUnit = true
        } else {
            return nil
        }
    }
    return digits.isEmpty && sawUnit ? total : nil
}
