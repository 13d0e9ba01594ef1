import HarrowCore

/// Turns a trainer command template into the argv of one trial. Pure: the runner writes the files it names.
///
/// Harrow placeholders are replaced inside any token: `{config}` (the trial's `trial.json`), `{run_dir}`,
/// `{param.NAME}`. W&B macros replace a whole token with a list of tokens, as W&B's agent does
/// (`${args}` → `--lr=0.001 --epochs=3`, values in Python's `str()` form); an unknown macro expands to
/// nothing; `${envvar:NAME}` is replaced inside any token by the environment variable, or by NAME.
public enum CommandTemplate {
    public struct Expansion: Sendable, Equatable {
        public var argv: [String]
        /// Files the command refers to, to be written before it starts (`${args_json_file}`).
        public var files: [String: String]
    }

    /// `paths` gives nested parameters their `parameters:` keys, so W&B's macros pass them as W&B does: one argument
    /// per top-level name, a nested group as a dict (`--optimizer={'lr': 0.001}`).
    public static func expand(
        _ template: [String], trial: Trial, program: String?, configPath: String, runDir: String,
        environment: [String: String] = [:], paths: [String: [String]] = [:]
    ) -> Expansion {
        let args = WandbAgent.config(trial, paths: paths)
        var argv: [String] = []
        var files: [String: String] = [:]
        for token in template {
            switch token {
            case "${env}": argv.append("/usr/bin/env")
            case "${interpreter}": argv.append("python")
            case "${program}": if let program { argv.append(program) }
            case "${args}": argv += args.map { "--\($0.name)=\($0.node.python)" }
            case "${args_no_equals}": argv += args.flatMap { ["--\($0.name)", $0.node.python] }
            case "${args_no_hyphens}": argv += args.map { "\($0.name)=\($0.node.python)" }
            case "${args_no_boolean_flags}":
                for arg in args {
                    switch arg.node {
                    case .value(.bool(true)): argv.append("--\(arg.name)")
                    case .value(.bool(false)): break
                    default: argv.append("--\(arg.name)=\(arg.node.python)")
                    }
                }
            case "${args_json}": argv.append(WandbAgent.Node.group(args).json)
            case "${args_json_file}":
                let path = runDir.hasSuffix("/") ? runDir + "args.json" : runDir + "/args.json"
                files[path] = WandbAgent.Node.group(args).json
                argv.append(path)
            case "${args_append_hydra}": argv += args.map { "+\($0.name)=\($0.node.python)" }
            case "${args_override_hydra}": argv += args.map { "++\($0.name)=\($0.node.python)" }
            case _ where token.hasPrefix("${") && token.hasSuffix("}") && !token.hasPrefix("${envvar:"):
                break
            default:
                argv.append(substitute(token, trial: trial, configPath: configPath, runDir: runDir, environment: environment))
            }
        }
        return Expansion(argv: argv, files: files)
    }

    /// Names used as `{param.NAME}` in a token.
    static func parameterPlaceholders(in token: String) -> [String] {
        var names: [String] = []
        var rest = Substring(token)
        while let open = rest.range(of: "{param.") {
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else { break }
            names.append(String(rest[open.upperBound..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    private static func substitute(
        _ token: String, trial: Trial, configPath: String, runDir: String,
        environment: [String: String]
    ) -> String {
        guard token.contains("{") else { return token }
        var out = token.replacingAll("{config}", with: configPath).replacingAll("{run_dir}", with: runDir)
        for name in parameterPlaceholders(in: out) {
            out = out.replacingAll("{param.\(name)}", with: trial[name]?.plain ?? "")
        }
        while let open = out.range(of: "${envvar:"), let close = out[open.upperBound...].firstIndex(of: "}") {
            let name = String(out[open.upperBound..<close])
            out.replaceSubrange(open.lowerBound...close, with: environment[name] ?? name)
        }
        return out
    }
}
