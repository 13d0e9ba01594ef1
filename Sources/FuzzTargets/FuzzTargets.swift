import Evaluation
import Foundation
import Gate
import Reporting
import Sweep
import Tracking

/// One parser under fuzzing: how an input reaches it, and the tokens worth inserting for its format.
/// `harrow-fuzz` and the regression tests call the same `run`, so a saved crasher replays exactly.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    /// Tokens mutations insert: the format's syntax plus the keys the parser acts on.
    public let dictionary: [String]
    /// Feeds one input to the parser. True when the parser accepted it; throwing parsers count as rejecting.
    public let run: @Sendable (Data) -> Bool

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    public static let all: [FuzzTarget] = [
        FuzzTarget(
            name: "experiment", summary: "experiment YAML (Experiment.parse, then Planner.plan when small)",
            dictionary: yamlTokens + experimentKeys, run: experiment),
        FuzzTarget(name: "dashboard", summary: "dashboard YAML (Dashboard.parse)", dictionary: yamlTokens + dashboardKeys) { data in
            (try? Dashboard.parse(yaml: text(data), file: "dashboards/fuzz.yaml")) != nil
        },
        FuzzTarget(name: "gate", summary: "gate YAML (GateRules.parse)", dictionary: yamlTokens + gateKeys) { data in
            (try? GateRules.parse(yaml: text(data), file: "gates/fuzz.yaml")) != nil
        },
        FuzzTarget(
            name: "evalset", summary: "evalset manifest.yaml + items.jsonl (Evalset.parse), split at \(evalsetSeparator.debugDescription)",
            dictionary: yamlTokens + jsonTokens + evalsetKeys + [evalsetSeparator], run: evalset),
        FuzzTarget(name: "bigbench", summary: "BIG-bench task.json (Evalset.parseBigBenchTask)", dictionary: jsonTokens + bigbenchKeys) {
            data in
            (try? Evalset.parseBigBenchTask(data, path: "bigbench/logic/task.json", subtask: "logic", dimensions: ["logic": "honest"]))
                != nil
        },
        FuzzTarget(name: "metrics", summary: "metrics.jsonl lines (MetricsLines.parse)", dictionary: jsonTokens + metricsKeys) { data in
            MetricsLines.parse(data).malformed == 0
        },
        FuzzTarget(
            name: "hf-state", summary: "Hugging Face trainer_state.json (HuggingFaceImporter.parse)", dictionary: jsonTokens + hfKeys
        ) { data in
            (try? HuggingFaceImporter.parse(data, file: "hf-run/trainer_state.json")) != nil
        },
        FuzzTarget(
            name: "llamafactory-log", summary: "LLaMA-Factory trainer_log.jsonl (LlamaFactoryImporter.parse)",
            dictionary: jsonTokens + llamafactoryKeys
        ) { data in
            // Malformed lines are skipped and counted (a log cut off by a crash has one), so accepted means points read.
            LlamaFactoryImporter.parse(data, file: "llamafactory-run/trainer_log.jsonl").batch.pointCount > 0
        },
        FuzzTarget(
            name: "judge-answer", summary: "judge-protocol answers, one per line (Judgement.parse)", dictionary: jsonTokens + judgeKeys
        ) { data in
            var ok = true
            for part in text(data).split(separator: "\n") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
                if (try? Judgement.parse(String(part), rubric: judgeRubric)) == nil { ok = false }
            }
            return ok
        },
        FuzzTarget(name: "labels-csv", summary: "a filled label CSV (LabelCSV.labels)", dictionary: labelKeys) { data in
            (try? LabelCSV.labels(text(data), file: "labels.csv", rubrics: ["judged": labelRubric])) != nil
        },
        FuzzTarget(
            name: "label-studio", summary: "a Label Studio JSON export (LabelStudio.labels)", dictionary: jsonTokens + labelStudioKeys
        ) { data in
            (try? LabelStudio.labels(data, file: "export.json", rubrics: ["judged": labelRubric])) != nil
        },
        FuzzTarget(name: "score-answer", summary: "score-protocol answers, one per line (Scorer.parse)", dictionary: jsonTokens + scoreKeys)
        { data in
            // As the scorer client reads them: split at newlines, blank parts skipped.
            var ok = true
            for part in text(data).split(separator: "\n") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
                if (try? Scorer.parse(String(part))) == nil { ok = false }
            }
            return ok
        }
    ]

    /// Files are read as UTF-8 by the CLI; invalid bytes become U+FFFD here so every input still reaches the parser.
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    // MARK: experiment

    /// Grids up to this many points are planned in full (well under a second per input).
    public static let plannedGridPoints = 20_000
    /// Random sweeps up to this many trials are planned (the planner draws at most 100× as many).
    public static let plannedRandomTrials = 200

    @Sendable static func experiment(_ data: Data) -> Bool {
        guard let experiment = try? Experiment.parse(yaml: text(data), file: "experiments/fuzz.yaml") else { return false }
        guard shouldPlan(experiment) else { return true }
        guard (try? Planner.plan(experiment)) != nil else { return false }
        // An adaptive search's first proposal walks the unit-cube mapping of every parameter.
        if experiment.method.isAdaptive { _ = try? Search.propose(experiment, number: 1, observations: []) }
        return true
    }

    /// Planning is bounded by what a real sweep would ask for: small grids and random sweeps run in full; a grid
    /// above `Planner.maximumGridPoints` without `run_cap` must be refused quickly, so it is planned too. Between
    /// the two, and for large caps, planning is legitimately long and is skipped.
    public static func shouldPlan(_ experiment: Experiment) -> Bool {
        switch experiment.method {
        case .bayes, .tpe: return true
        case .random:
            let target = [experiment.count, experiment.runCap].compactMap { $0 }.min() ?? 0
            return target <= plannedRandomTrials
        case .grid:
            var total = 1
            for p in experiment.parameters {
                let (product, overflow) = total.multipliedReportingOverflow(by: gridSize(p.distribution))
                total = overflow ? .max : product
            }
            if total <= plannedGridPoints { return true }
            return total > Planner.maximumGridPoints && experiment.runCap == nil
        }
    }

    /// Points on one grid axis, counted without building the axis.
    static func gridSize(_ d: Distribution) -> Int {
        switch d {
        case .intUniform(let lo, let hi):
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            return overflow || span == .max ? .max : max(span + 1, 0)
        case .qUniform(let lo, let hi, let q, _):
            let n = ((hi - lo) / q).rounded(.up)
            return n.isFinite ? (n >= Double(Int.max) ? .max : max(Int(n), 0)) : .max
        case .derived: return 1
        case .categorical(let choices): return choices.count
        case .constant: return 1
        default: return 1
        }
    }

    // MARK: evalset

    /// Separates manifest.yaml from items.jsonl in one evalset input; without it the input is items.jsonl alone.
    public static let evalsetSeparator = "\n#--- items.jsonl\n"

    @Sendable static func evalset(_ data: Data) -> Bool {
        let whole = text(data)
        var manifest: String?
        var items = data
        if let r = whole.range(of: evalsetSeparator) {
            manifest = String(whole[..<r.lowerBound])
            items = Data(whole[r.upperBound...].utf8)
        }
        return (try? Evalset.parse(manifest: manifest, items: items, directory: "evalsets/fuzz")) != nil
    }

    // MARK: dictionaries

    static let deep = String(repeating: "[", count: 2_000)
    static let deepMap = String(repeating: "{a: ", count: 500)
    static let yamlTokens = [
        "&a ", "*a", "<<: *a", "- ", ": ", "{", "}", "[", "]", ", ", "!!binary ", "!!str ", "!!int ", "!!float ", "!!map ",
        "\"\\u0000\"", "\"\\uD800\"", "'", "\"", "|\n  ", ">-\n  ", "? ", "---\n", "...\n", "%YAML 1.1\n", "#", "\t",
        "1e400", "-1e400", "-0", ".nan", ".inf", "-.inf", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "0x7fffffffffffffff", "0o777", "1_000", "4294967296", "1e-400", "null", "~", "true", "no", "2001-12-14",
        deep, deepMap, "\n  ", "\n    - ", "\u{FEFF}", "\u{0}", "\r\n"
    ]
    static let jsonTokens = [
        "{", "}", "[", "]", "\"", ",", ":", "\\u0000", "\\ud800", "\\", "1e999", "-1e999", "NaN", "Infinity", "-0",
        "1e-999", "9223372036854775807", "9223372036854775808", "18446744073709551616", "2147483648", "-2147483649",
        "0.0000000000000000000000001", "true", "false", "null", "\"\"", "{}", "[]", "\n", "\r\n", " ",
        "\"" + String(repeating: "x", count: 10_000) + "\"", String(repeating: "[", count: 5_000),
        String(repeating: "{\"a\":", count: 2_000), "\u{FEFF}", "\u{0}"
    ]
    static let experimentKeys = [
        "name: ", "method: grid\n", "method: random\n", "method: bayes\n", "metric: {name: val/loss, goal: minimize}\n",
        "parameters:\n", "values: ", "value: ", "min: ", "max: ", "q: ", "mu: ", "sigma: ", "a: ", "b: ", "probabilities: ",
        "distribution: ", "int_uniform", "q_uniform", "q_log_uniform_values", "log_uniform_values", "inv_log_uniform_values",
        "categorical_w_probabilities", "q_normal", "q_log_normal", "q_beta", "beta", "{expr: \"2 * lora_r\"}", "expr: ",
        "where: ", "exclude:\n  - ", "count: ", "seed: ", "run_cap: ", "program: ", "command: ", "trainer:\n  ",
        "timeout: ", "retries: ", "resources: {parallel: 2}", "resources: {gpus: [0, 1]}",
        "early_terminate: {type: hyperband, min_iter: 3}",
        "early_stop: {patience: 3, min_delta: 0.01}", "diagnosis: ", "eval: {evalsets: [a]}", "{config}", "{run_dir}",
        "{param.lr}", "${args}", "${args_json_file}", "lora_r", "lora_alpha", " / ", " * ", " ** ", " % ", " // ", " && ",
        " || ", " ? ", "(", ")", "'chat'", " == ", " != ", " <= ", "not ", "log(", "min(", "max(", "round(", "10m", "1h"
    ]
    static let dashboardKeys = [
        "title: ", "metric: ", "panels:\n", "  - ", "type: ", "curves", "scatter", "bars3h", "table", "parallel", "overview",
        "verdict", "scores", "params", "artifacts", "metrics: ", "params: ", "x: ", "y: ", "color: ", "value: ", "by: ",
        "top: ", "points: ", "gate: ", "limit: ", "log_x: ", "log_y: "
    ]
    static let gateKeys = [
        "name: ", "thresholds:\n", "  helpful: {min: 0.5}", "  total: {max: 1}", "min: ", "max: ", "verdict:\n",
        "refuse: [diverged]", "overfitting_needs_best_checkpoint: ", "baseline:\n", "run: ", "max_drop: ", "sigma: ",
        "clean_tree: ", "harmless/refusal", "val_loss_best", "forgetting"
    ]
    static let judgeRubric = Rubric([Rubric.Dimension(name: "helpful"), Rubric.Dimension(name: "harmless", low: 0, high: 10)])
    static let labelRubric = [LabelDimension(name: "helpful", scale: 1...5), LabelDimension(name: "harmless", scale: 0...10)]
    static let judgeKeys = [
        "\"id\": ", "\"scores\": ", "\"helpful\": ", "\"harmless\": ", "\"rationale\": ", "\"error\": ", "true", "1e308"
    ]
    static let labelKeys = [
        "run,evalset,item,task_type,prompt,reply,reference,annotator,helpful,harmless,comment\n", "r1,judged,i1,qa/x,",
        "\"a,\"\"b\"\"\n\"", ",ana,", "5", "10", "4.0", "\u{FEFF}", "\r\n"
    ]
    static let labelStudioKeys = [
        "\"data\": ", "\"annotations\": ", "\"completed_by\": ", "\"result\": ", "\"from_name\": ", "\"type\": ",
        "\"rating\"", "\"choices\"", "\"value\": ", "\"was_cancelled\": ", "\"email\": ", "\"run\": ", "\"item\": "
    ]
    static let evalsetKeys = [
        "name: ", "description: ", "template: ", "chat", "raw", "weights: ", "refusal_patterns: ", "abstain_patterns: ",
        "max_tokens: ", "stop: ", "dimensions: ", "\"id\": ", "\"dimension\": ", "\"task_type\": ", "\"prompt\": ",
        "\"choices\": ", "\"answer\": ", "\"check\": ", "\"regex\"", "\"exact\"", "\"refusal\"", "\"reference\": ",
        "\"references\": ", "\"(a+)+$\"", "\"[\"", "\"\\\\\"", "rubric: ", "usable: ", "judge: ", "\"kind\": \"judged\"",
        "\"messages\": ", "\"avoid\": ", "scale: [1, 5]", "threshold: ", "floor: ", "levels: "
    ]
    static let bigbenchKeys = [
        "\"examples\": ", "\"input\": ", "\"target_scores\": ", "\"target\": ", "\"name\": ", "\"example_input_prefix\": ",
        "\"example_output_prefix\": ", "\"choice_prefix\": ", "\"append_choices_to_input\": ", "\"subtasks\": "
    ]
    static let metricsKeys = [
        "{\"event\": \"start\", \"total_steps\": 600, \"steps_per_epoch\": 200, \"warmup_steps\": 18}\n",
        "{\"event\": \"done\", \"checkpoint\": \"checkpoint\", \"best_checkpoint\": \"checkpoint-best\", \"best_step\": 400}\n",
        "\"step\": ", "\"epoch\": ", "\"train/loss\": ", "\"val/loss\": ", "\"lr\": ", "\"grad_norm\": ", "\"tokens_per_s\": ",
        "\"event\": ", "\"total_steps\": ", "\"best_step\": "
    ]
    static let hfKeys = [
        "\"log_history\": ", "\"step\": ", "\"epoch\": ", "\"loss\": ", "\"eval_loss\": ", "\"learning_rate\": ",
        "\"eval_val_loss\": ", "\"train_runtime\": ", "\"train_loss\": ", "\"max_steps\": ", "\"best_global_step\": ",
        "\"best_model_checkpoint\": ", "\"trial_params\": ", "\"num_train_epochs\": "
    ]
    static let llamafactoryKeys = [
        "\"current_steps\": ", "\"total_steps\": ", "\"loss\": ", "\"eval_loss\": ", "\"lr\": ", "\"learning_rate\": ",
        "\"epoch\": ", "\"throughput\": ", "\"percentage\": ", "\"step\": ", "\"predict_loss\": "
    ]
    static let scoreKeys = [
        "\"id\": ", "\"logprob\": ", "\"n_tokens\": ", "\"is_greedy\": ", "\"text\": ", "\"error\": "
    ]
}
