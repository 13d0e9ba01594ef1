import Evaluation
import HarrowCore
import Foundation
import Sweep

enum PlanTable {
    /// `memory`, one per trial in plan order: a `memory` column when any trial has an estimate.
    static func render(
        _ plan: Plan, limit: Int?, advice: [PlanAdvice.Warning] = [],
        memory: [Result<MemoryEstimate.Estimate, MemoryEstimate.Unavailable>] = []
    ) -> String {
        let e = plan.experiment
        var lines: [String] = []
        if Planner.proposesAsItRuns(e) {
            // Nothing to list: the trials are proposed while the sweep runs.
            let over = "\(e.parameters.count) parameter\(e.parameters.count == 1 ? "" : "s")"
            lines.append(
                e.method.isAdaptive
                    ? "\(e.name): \(e.method.rawValue) search over \(over)"
                    : "\(e.name): \(e.method.rawValue) sweep over \(over), unbounded: random trials until the deadline")
            lines.append("")
            lines += TextTable.render(header: ["parameter", "searched as"], rows: e.parameters.map { [$0.name, $0.distribution.name] })
            lines.append("")
            lines += plan.notes.map { "note: \($0)" }
            if let et = e.earlyTerminate {
                lines.append("early_terminate: hyperband, eta \(PlanTable.display(.double(et.eta))), strict \(et.strict)")
            }
            lines.append("trainer: " + e.trainer.command.joined(separator: " "))
            return lines.joined(separator: "\n")
        }
        lines.append("\(e.name): \(e.method.rawValue) sweep, \(plan.trials.count) trial\(plan.trials.count == 1 ? "" : "s")")
        if let first = plan.trials.first {
            let fixed = first.parameters.filter { !plan.varying.contains($0.name) }
            if !fixed.isEmpty { lines += TextTable.labelled("fixed: ", fixed.map { "\($0.name)=\($0.value.plain)" }) }
            lines.append("")
            let slots = plan.varying.map { name in first.names.firstIndex(of: name)! }
            // The params key: `harrow show` takes its prefix and labels it the same.
            let withMemory = memory.contains { if case .success = $0 { true } else { false } }
            let header = ["#", "params key"] + plan.varying + (withMemory ? ["memory"] : [])
            let shown = plan.trials.prefix(limit ?? plan.trials.count)
            let rows = shown.enumerated().map { i, t in
                [String(i + 1), t.shortKey] + slots.map { display(t.values[$0]) } + (withMemory ? [PlanMemory.cell(memory[i])] : [])
            }
            lines += TextTable.render(header: header, rows: rows)
            if shown.count < plan.trials.count { lines.append("… \(plan.trials.count - shown.count) more (use --json for all)") }
        }
        lines.append("")
        lines.append(summary(plan))
        lines += plan.notes.map { "note: \($0)" }
        lines.append("trainer: " + e.trainer.command.joined(separator: " "))
        lines += render(advice: advice, of: plan.trials.count)
        return lines.joined(separator: "\n")
    }

    /// One `advice:` line per group of trials with the same advice, naming them by their `#`, with its rule under it;
    /// then how to silence the rules that spoke. Long lines wrap to the terminal with a hanging indent.
    static func render(advice: [PlanAdvice.Warning], of trials: Int) -> [String] {
        guard !advice.isEmpty else { return [] }
        let width = TextTable.terminalWidth
        func hanging(_ label: String, _ text: String, indent: String) -> [String] {
            TextTable.wrap(text, width: max(20, width - label.count)).enumerated().map { ($0 == 0 ? label : indent) + $1 }
        }
        var lines = [""]
        for w in advice {
            let numbers = w.indices.prefix(8).map { "#\($0)" }.joined(separator: ", ") + (w.indices.count > 8 ? ", …" : "")
            let which = w.indices.count == 1 ? "trial \(numbers)" : "\(w.indices.count) of \(trials) trials: \(numbers)"
            lines += hanging("advice: ", "\(w.message) (\(which))", indent: "        ")
            lines += hanging("        rule \(w.rule.rawValue): ", w.rule.statement, indent: "          ")
        }
        let rules = PlanAdvice.Rule.allCases.filter { r in advice.contains { $0.rule == r } }.map(\.rawValue)
        lines.append("advice, not a refusal; to silence these rules, add to the experiment:")
        lines.append("  advice: {ignore: [\(rules.joined(separator: ", "))]}")
        return lines
    }

    /// Table cells round sampled floats to 4 significant digits; `--json` keeps them exact.
    static func display(_ value: ParamValue) -> String {
        if case .double(let d) = value, d.description.count > 8 { return String(format: "%.4g", d) }
        return value.plain
    }

    static func summary(_ plan: Plan) -> String {
        var parts = ["\(plan.candidates) \(plan.experiment.method == .grid ? "grid points" : "draws")"]
        if plan.excluded > 0 { parts.append("\(plan.excluded) excluded") }
        if plan.filtered > 0 { parts.append("\(plan.filtered) removed by where") }
        if plan.duplicates > 0 { parts.append("\(plan.duplicates) duplicates") }
        if plan.capped > 0 { parts.append("\(plan.capped) over run_cap") }
        return parts.joined(separator: ", ") + " → \(plan.trials.count) trial\(plan.trials.count == 1 ? "" : "s")"
    }
}

enum TextTable {
    /// Left-aligned text columns, numbers right-aligned.
    static func render(header: [String], rows: [[String]]) -> [String] {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let numeric = header.indices.map { i in !rows.isEmpty && rows.allSatisfy { Double($0[i]) != nil } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return numeric[i] ? pad + c : c + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        return [line(header), line(widths.map { String(repeating: "─", count: $0) })] + rows.map(line)
    }

    /// The table with a long text under each row (advice), wrapped to the terminal and indented, instead of a
    /// column that runs hundreds of characters past the screen.
    static func render(header: [String], rows: [[String]], notes: [String]) -> [String] {
        let lines = render(header: header, rows: rows)
        var out = Array(lines.prefix(2))
        for (row, note) in zip(lines.dropFirst(2), notes) {
            out.append(row)
            out += wrap(note, width: terminalWidth - 4).map { "    " + $0 }
        }
        return out
    }

    /// The terminal's width (`COLUMNS`, else the tty's), or 100 when output goes to a file or pipe.
    static var terminalWidth: Int {
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c >= 40 { return c }
        var size = winsize()
        if isatty(STDOUT_FILENO) != 0, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 40 { return Int(size.ws_col) }
        return 100
    }

    /// `label` then the items, two spaces apart, filled into lines of the terminal's width; an item is never split.
    static func labelled(_ label: String, _ items: [String]) -> [String] {
        var lines: [String] = [], current = label
        let indent = String(repeating: " ", count: label.count)
        for item in items {
            if current.count > label.count, current.count + 2 + item.count > terminalWidth {
                lines.append(current)
                current = indent
            }
            current += (current.count > label.count ? "  " : "") + item
        }
        lines.append(current)
        return lines
    }

    /// Words filled into lines of at most `width` characters (a longer word stands alone).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += (current.isEmpty ? "" : " ") + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

enum PlanJSON {
    static func render(
        _ plan: Plan, advice: [PlanAdvice.Warning] = [], data: DataCheck.Night? = nil,
        memory: [Result<MemoryEstimate.Estimate, MemoryEstimate.Unavailable>] = []
    ) -> String {
        let e = plan.experiment
        let slurm = e.executor.flatMap { $0.type == .slurm ? $0 : nil }
        var fields: [(String, String)] = [
            ("experiment", quote(e.name)), ("file", quote(e.file)), ("method", quote(e.method.rawValue)),
            ("count", String(plan.trials.count)), ("candidates", String(plan.candidates)),
            ("excluded", String(plan.excluded)), ("filtered", String(plan.filtered)),
            ("duplicates", String(plan.duplicates)), ("capped", String(plan.capped)),
            ("varying", "[" + plan.varying.map(quote).joined(separator: ", ") + "]"),
            ("command", "[" + e.trainer.command.map(quote).joined(separator: ", ") + "]"),
            ("notes", "[" + plan.notes.map(quote).joined(separator: ", ") + "]"),
            ("warnings", "[" + e.warnings.map(diagnostic).joined(separator: ", ") + "]"),
            ("advice", "[" + advice.map(self.advice).joined(separator: ", ") + "]"),
            ("data", data.map(dataJSON) ?? "null")
        ]
        let trials = plan.trials.enumerated().map { i, t in
            "    {\"index\": \(i + 1), \"key\": \(quote(t.key)), \"params\": \(t.parametersJSON)"
                + (i < memory.count ? ", \"memory\": " + PlanMemory.json(memory[i], slurm: slurm) : "") + "}"
        }
        fields.append(("trials", trials.isEmpty ? "[]" : "[\n" + trials.joined(separator: ",\n") + "\n  ]"))
        return "{\n" + fields.map { "  \(quote($0.0)): \($0.1)" }.joined(separator: ",\n") + "\n}"
    }

    static func render(diagnostics: [Diagnostic]) -> String {
        "{\"errors\": [" + diagnostics.filter { $0.severity == .error }.map(diagnostic).joined(separator: ", ") + "], "
            + "\"warnings\": [" + diagnostics.filter { $0.severity == .warning }.map(diagnostic).joined(separator: ", ") + "]}"
    }

    /// `{"rule", "statement", "message", "values": {NAME: value}, "trials": [key…], "indices": [#…]}`.
    static func advice(_ w: PlanAdvice.Warning) -> String {
        "{\"rule\": \(quote(w.rule.rawValue)), \"statement\": \(quote(w.rule.statement)), \"message\": \(quote(w.message)), "
            + "\"values\": {" + w.values.map { "\(quote($0.name)): \($0.value.json)" }.joined(separator: ", ") + "}, "
            + "\"trials\": [" + w.trials.map(quote).joined(separator: ", ") + "], "
            + "\"indices\": [" + w.indices.map(String.init).joined(separator: ", ") + "]}"
    }

    static func diagnostic(_ d: Diagnostic) -> String {
        "{\"file\": \(quote(d.location.file)), \"line\": \(d.location.line), \"column\": \(d.location.column), "
            + "\"severity\": \(quote(d.severity.rawValue)), \"message\": \(quote(d.message)), \"hint\": \(d.hint.map(quote) ?? "null")}"
    }

    static func quote(_ s: String) -> String { ParamValue.string(s).json }

    /// The data check as stored, keys in snake_case, with its error and warning counts.
    static func dataJSON(_ night: DataCheck.Night) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let body = try? encoder.encode(night) else { return "null" }
        return "{\"errors\": \(night.errors), \"warnings\": \(night.warnings), \"check\": " + String(decoding: body, as: UTF8.self) + "}"
    }
}

/// Issue 33's memory estimate in `harrow plan`: the table's column, `--json`'s `memory` per trial, and `--memory`'s terms.
enum PlanMemory {
    typealias Outcome = Result<MemoryEstimate.Estimate, MemoryEstimate.Unavailable>

    /// Binary units, as GPU memory is sold and nvidia-smi counts it: `512 B`, `3.4 KiB`, `12.0 MiB`, `5.2 GiB`.
    static func bytes(_ n: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard n >= 1024 else { return "\(n) B" }
        var value = Double(n) / 1024, unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: "%.1f %@", value, units[unit])
    }

    static func cell(_ outcome: Outcome) -> String {
        if case .success(let e) = outcome { return bytes(e.total) }
        return "–"
    }

    /// `{"total_bytes": N, "terms": {NAME: bytes}, "assumptions": [...]}`, or `{"total_bytes": null, "reason": "..."}`.
    static func json(_ outcome: Outcome, slurm: Experiment.ExecutorSettings? = nil) -> String {
        switch outcome {
        case .success(let e):
            let request =
                slurm.map {
                    ", \"slurm\": [" + SlurmRequest.request(e, settings: $0).arguments.map(PlanJSON.quote).joined(separator: ", ") + "]"
                } ?? ""
            return "{\"total_bytes\": \(e.total), \"terms\": {"
                + e.terms.map { "\(PlanJSON.quote($0.name)): \($0.bytes)" }.joined(separator: ", ")
                + "}, \"assumptions\": [" + e.assumptions.map(PlanJSON.quote).joined(separator: ", ") + "]" + request + "}"
        case .failure(let why):
            return "{\"total_bytes\": null, \"reason\": \(PlanJSON.quote(why.reason))}"
        }
    }

    /// `--memory`: each distinct estimate once, with the trials that share it (by `#`), term by term with how it was
    /// counted, the peak's formula and what it assumes; then the trials without one and why.
    /// `slurm`: the executor's settings when the sweep runs on Slurm; each estimate then says what its jobs ask for.
    static func render(_ memory: [Outcome], slurm: Experiment.ExecutorSettings? = nil) -> [String] {
        var groups: [(outcome: Outcome, indices: [Int])] = []
        for (i, outcome) in memory.enumerated() {
            if let g = groups.firstIndex(where: { $0.outcome == outcome }) {
                groups[g].indices.append(i + 1)
            } else {
                groups.append((outcome, [i + 1]))
            }
        }
        var lines: [String] = []
        let width = TextTable.terminalWidth
        for group in groups {
            let numbers = group.indices.prefix(12).map { "#\($0)" }.joined(separator: ", ") + (group.indices.count > 12 ? ", …" : "")
            let which = group.indices.count == 1 ? "trial \(numbers)" : "\(group.indices.count) of \(memory.count) trials: \(numbers)"
            lines.append("")
            switch group.outcome {
            case .success(let e):
                lines.append("memory: \(bytes(e.total)) peak (\(which))")
                let rows = e.terms.map { ["  " + $0.name, bytes($0.bytes), $0.formula] }
                lines += TextTable.render(header: ["  term", "bytes", "counted as"], rows: rows).dropFirst(2)
                let backward = e.accumulates ? "activations + logits + gradients" : "activations + logits"
                lines.append(
                    "  peak = weights + lora_params + optimizer_states + max(\(backward), gradients + optimizer_step) + cuda_context + allocator_slack"
                )
                lines += TextTable.wrap("assumes: " + e.assumptions.joined(separator: "; "), width: max(20, width - 2)).map { "  " + $0 }
                if let slurm {
                    let request = SlurmRequest.request(e, settings: slurm)
                    let asks =
                        request.arguments.isEmpty ? "nothing beyond the executor's settings" : request.arguments.joined(separator: " ")
                    lines += TextTable.wrap(
                        "on Slurm: " + asks + (request.reasons.isEmpty ? "" : " (" + request.reasons.joined(separator: "; ") + ")"),
                        width: max(20, width - 2)
                    ).map { "  " + $0 }
                }
            case .failure(let why):
                lines.append("memory: no estimate (\(which)): \(why.reason)")
            }
        }
        return lines
    }
}
