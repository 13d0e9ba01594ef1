import Foundation
@testable import Sweep

func fixture(_ name: String) throws -> (text: String, path: String) {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/\(name)")
    return (try String(contentsOf: url, encoding: .utf8), url.path)
}

func plan(_ yaml: String, file: String = "exp.yaml") throws -> Plan {
    try Planner.plan(Experiment.parse(yaml: yaml, file: file))
}

/// The diagnostics an invalid experiment produces (empty when it parses).
func diagnostics(_ yaml: String, file: String = "exp.yaml") -> [Diagnostic] {
    do {
        let e = try Experiment.parse(yaml: yaml, file: file)
        _ = try Planner.plan(e)
        return e.warnings
    } catch {
        return error.diagnostics
    }
}

extension Trial {
    func int(_ name: String) -> Int? { if case .int(let i)? = self[name] { i } else { nil } }
    func double(_ name: String) -> Double? { self[name]?.number }
    func string(_ name: String) -> String? { if case .string(let s)? = self[name] { s } else { nil } }
}
