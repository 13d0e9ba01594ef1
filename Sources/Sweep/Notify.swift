import HarrowCore
import Yams

/// `notify:` in an experiment: a command (a webhook call, a mail) run with the sweep's summary as JSON on its
/// standard input when something the user asked about happens. A failing notifier is logged, never fatal.
public struct NotifyRule: Sendable, Hashable {
    public enum Event: String, Sendable, CaseIterable, Hashable {
        /// The sweep ended (every trial finished, failed, or the night was cut short).
        case finished
        /// The first run of the sweep failed: someone may want to look before the night is spent.
        case failedFirst = "failed_first"
    }
    public var command: [String]
    public var on: Set<Event> = [.finished]
    /// Seconds the command may take before it is stopped.
    public var timeout: Double = 30
}

extension ExperimentParser {
    mutating func parseNotify(_ node: Node) -> NotifyRule? {
        let events = NotifyRule.Event.allCases.map(\.rawValue)
        guard let m = node.mapping else {
            error(node, "`notify` must be a mapping like `{command: [curl, -d, @-, URL], on: [finished, failed_first]}`")
            return nil
        }
        checkKeys(m, allowed: ["command", "on", "timeout"], in: "notify")
        guard let c = m["command"], case .sequence(let seq) = c, !seq.isEmpty, seq.allSatisfy({ $0.scalar != nil }) else {
            error(m["command"] ?? node, "notify.command must be a non-empty list of words, like [curl, -d, @-, URL]")
            return nil
        }
        var rule = NotifyRule(command: seq.map { $0.scalar!.string })
        if let on = m["on"] {
            let items: [Node]
            if case .sequence(let s) = on { items = Array(s) } else { items = [on] }
            rule.on = []
            for item in items {
                guard let e = NotifyRule.Event(rawValue: item.scalar?.string ?? "") else {
                    error(item, "unknown notify event '\(item.scalar?.string ?? "")'", hint: "events: \(events.joined(separator: ", "))")
                    continue
                }
                rule.on.insert(e)
            }
        }
        if let t = m["timeout"] {
            if let seconds = t.float ?? t.int.map(Double.init), seconds > 0 {
                rule.timeout = seconds
            } else {
                error(t, "notify.timeout must be seconds above 0")
            }
        }
        return rule
    }
}
