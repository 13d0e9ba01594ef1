import HarrowCore
import Yams

/// `data:` in an experiment file: `harrow plan` and `harrow sweep` check every dataset a trial names before the
/// night (`harrow data check`'s findings), and a sweep refuses data holding evaluation prompts unless allowed.
public struct DataCheckRule: Sendable, Hashable {
    /// `check: false` skips the check (a dataset too large to read twice, say).
    public var check = true
    /// `allow_overlap: true` reports evaluation prompts found in the data as warnings instead of refusing the sweep.
    public var allowOverlap = false
    public init() {}
}

/// A dataset file trials name, with what the check needs to know about those trials.
public struct NamedDataset: Sendable, Hashable {
    /// The trial parameter that names it.
    public enum Role: String, Sendable, CaseIterable, Codable {
        case train = "dataset"
        case general = "general_dataset"
        case validation = "val_dataset"
    }

    /// As the trials write it (relative to the working directory, as the runner resolves it).
    public var path: String
    public var role: Role
    /// The shortest `max_seq_len` among the trials naming it (harrow-train's 128 when the built-in trainer runs
    /// without one); nil when no trial says and another trainer runs.
    public var maxSeqLen: Int?
    public var trials: Int

    public init(path: String, role: Role, maxSeqLen: Int?, trials: Int) {
        self.path = path; self.role = role; self.maxSeqLen = maxSeqLen; self.trials = trials
    }
}

extension Plan {
    /// harrow-train's `max_seq_len` when a trial sets none.
    public static let builtInMaxSeqLen = TrainerParameters.declared.max_seq_len.defaultValue

    /// Every dataset file the trials name by path, once per (path, role), in the order first named. An adaptive
    /// search has no trials before it runs; its datasets are the values its experiment lists for them.
    public var datasets: [NamedDataset] {
        var out: [NamedDataset] = [], index: [String: Int] = [:]
        func add(_ value: ParamValue?, _ role: NamedDataset.Role, maxSeqLen: Int?) {
            guard case .string(let path)? = value, !path.isEmpty else { return }
            let key = role.rawValue + "\n" + path
            if let i = index[key] {
                out[i].trials += 1
                if let m = maxSeqLen { out[i].maxSeqLen = min(out[i].maxSeqLen ?? m, m) }
            } else {
                index[key] = out.count
                out.append(NamedDataset(path: path, role: role, maxSeqLen: maxSeqLen, trials: 1))
            }
        }
        let fallback = experiment.trainsWithHarrowTrain ? Self.builtInMaxSeqLen : nil
        if trials.isEmpty {
            let maxSeqLen =
                experiment.parameter(named: "max_seq_len").flatMap { p -> Int? in
                    if case .constant(.int(let n)) = p.distribution { return n } else { return nil }
                } ?? fallback
            for role in NamedDataset.Role.allCases {
                guard let p = experiment.parameter(named: role.rawValue) else { continue }
                switch p.distribution {
                case .constant(let v): add(v, role, maxSeqLen: maxSeqLen)
                case .categorical(let choices):
                    for case .value(let v) in choices { add(v, role, maxSeqLen: maxSeqLen) }
                default: break
                }
            }
            return out
        }
        for trial in trials {
            let maxSeqLen: Int? = if case .int(let n)? = trial["max_seq_len"] { n } else { fallback }
            for role in NamedDataset.Role.allCases { add(trial[role.rawValue], role, maxSeqLen: maxSeqLen) }
        }
        return out
    }
}

// MARK: - `data:` in an experiment file

extension ExperimentParser {
    mutating func parseDataCheck(_ node: Node) -> DataCheckRule {
        var rule = DataCheckRule()
        guard let m = node.mapping else {
            error(node, "`data` must be a mapping like `{check: true, allow_overlap: false}`")
            return rule
        }
        checkKeys(m, allowed: ["check", "allow_overlap"], in: "data")
        for (key, path) in [("check", \DataCheckRule.check), ("allow_overlap", \DataCheckRule.allowOverlap)] {
            guard let n = m[key] else { continue }
            if let b = n.bool { rule[keyPath: path] = b } else { error(n, "data.\(key) must be true or false") }
        }
        return rule
    }
}
