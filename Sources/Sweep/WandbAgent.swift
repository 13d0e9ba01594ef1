import HarrowCore

/// What W&B's agent gives each run of a sweep, so a script written for `wandb agent` runs unchanged.
///
/// wandb 0.31.0 `wandb/wandb_agent.py` (`Agent._command_run`): the run's config is written as
/// `$WANDB_DIR/wandb/sweep-SWEEP/config-RUN.yaml` (`config_util.save_config_file_from_dict`: `wandb_version: 1`, then
/// `name: {value: v}` per parameter), named in `WANDB_SWEEP_PARAM_PATH` beside `WANDB_SWEEP_ID` and `WANDB_RUN_ID`;
/// `wandb.init()` reads that file and merges it over the script's defaults (`wandb/sdk/wandb_setup.py` `config`,
/// `wandb/sdk/wandb_run.py` `merge_locked`). Nested parameters arrive as mappings: wandb/sweeps@b1dfc5f
/// `src/sweeps/params.py` (`HyperParameterSet.to_config`) re-nests them, so `--optimizer={'lr': 0.001}` and
/// `config.optimizer.lr`. Pure: the runner writes the file and sets the environment.
public enum WandbAgent {
    /// A value of W&B's run config: a parameter's value, or the mapping a nested `parameters:` block becomes.
    public indirect enum Node: Sendable, Equatable {
        case value(ParamValue)
        case group([Entry])

        /// Python's `str()`, which `${args}` uses: a mapping prints as a dict (`{'lr': 0.001, 'nadam': {'beta': 0.9}}`).
        public var python: String {
            switch self {
            case .value(let v): v.python
            case .group: pythonRepr
            }
        }

        var pythonRepr: String {
            switch self {
            case .value(let v): v.pythonRepr
            case .group(let entries): "{" + entries.map { "'\($0.name)': \($0.node.pythonRepr)" }.joined(separator: ", ") + "}"
            }
        }

        /// `json.dumps`, with Python's separators, as `${args_json}` writes it.
        public var json: String {
            switch self {
            case .value(let v): v.json
            case .group(let entries): "{" + entries.map { JSONText.quote($0.name) + ": " + $0.node.json }.joined(separator: ", ") + "}"
            }
        }
    }

    public struct Entry: Sendable, Equatable {
        public var name: String
        public var node: Node
    }

    /// The run's config in W&B's order: top-level parameters sorted by name, then each nested group where W&B's
    /// re-nesting appends it (in the order its first member sorts); inside a group, members sorted.
    public static func config(_ trial: Trial, paths: [String: [String]]) -> [Entry] {
        var flat: [Entry] = []
        var nested: [Entry] = []
        for (name, value) in trial.parameters {
            let path = paths[name].flatMap { $0.count > 1 ? $0 : nil }
            guard let path else { flat.append(Entry(name: name, node: .value(value))); continue }
            insert(value, at: path[...], into: &nested)
        }
        return flat + nested
    }

    private static func insert(_ value: ParamValue, at path: ArraySlice<String>, into entries: inout [Entry]) {
        let key = path.first!
        if path.count == 1 { entries.append(Entry(name: key, node: .value(value))); return }
        if let i = entries.firstIndex(where: { $0.name == key }), case .group(var members) = entries[i].node {
            insert(value, at: path.dropFirst(), into: &members)
            entries[i].node = .group(members)
        } else {
            var members: [Entry] = []
            insert(value, at: path.dropFirst(), into: &members)
            entries.append(Entry(name: key, node: .group(members)))
        }
    }

    /// The agent's config file: `wandb_version: 1`, then each parameter as `name: {value: v}` in block style, as
    /// PyYAML's `safe_dump(default_flow_style=False, sort_keys=False)` writes it, values as `ParamValue.yaml` (PyYAML
    /// reads `1e-05` as a string, `1.0e-05` as a float).
    public static func configYAML(_ config: [Entry]) -> String {
        var out = "wandb_version: 1\n"
        if config.isEmpty { return out }
        out += "\n"
        for entry in config {
            out += yamlKey(entry.name) + ":\n  value:"
            write(entry.node, indent: 4, into: &out)
        }
        return out
    }

    private static func write(_ node: Node, indent: Int, into out: inout String) {
        switch node {
        case .value(let v): out += " " + v.yaml + "\n"
        case .group(let entries):
            out += entries.isEmpty ? " {}\n" : "\n"
            for e in entries {
                out += String(repeating: " ", count: indent) + yamlKey(e.name) + ":"
                write(e.node, indent: indent + 2, into: &out)
            }
        }
    }

    private static func yamlKey(_ name: String) -> String {
        name.allSatisfy { $0.isLetter || $0.isNumber || "_-./".contains($0) } && !(name.first?.isNumber ?? true)
            ? name : JSONText.quote(name)
    }

    /// The relative place of a run's config file under `WANDB_DIR`, as the agent names it.
    public static func configPath(sweep: String, run: String) -> String {
        "wandb/sweep-\(sweep)/config-\(run).yaml"
    }

    /// A sweep name as W&B's sweep id: letters, digits, `-` and `_`.
    public static func sweepID(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" })
    }

    /// The variables the agent sets for a run, with `WANDB_MODE=offline` unless the user chose a mode: an overnight
    /// sweep needs no network and no account, and `WANDB_DIR` keeps the run's files in its run folder.
    ///
    /// The SDK writes the `.wandb` file from a buffer, by default every 15 s (wandb 0.31.0 `wandb_settings.py`,
    /// `x_transaction_log_flush_interval`, set from `WANDB__TRANSACTION_LOG_FLUSH_INTERVAL`); every second lets
    /// hyperband and early stopping see a running trial's curve. SDKs without the setting ignore it.
    public static func environment(sweep: String, run: String, runDir: String, inherited: [String: String]) -> [String: String] {
        var env = [
            "WANDB_SWEEP_ID": sweepID(sweep), "WANDB_RUN_ID": run, "WANDB_DIR": runDir,
            "WANDB_SWEEP_PARAM_PATH": runDir + "/" + configPath(sweep: sweepID(sweep), run: run)
        ]
        if inherited["WANDB_MODE"] == nil { env["WANDB_MODE"] = "offline" }
        if inherited[flushInterval] == nil { env[flushInterval] = "1" }
        return env
    }

    static let flushInterval = "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL"
}
