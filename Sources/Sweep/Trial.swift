import HarrowCore
import Crypto
import Foundation

/// One point of a sweep: a full assignment of parameters, identified by its content.
public struct Trial: Sendable {
    /// Parameter names in the experiment's (sorted) order; shared by every trial of a plan.
    public let names: [String]
    public let values: [ParamValue]
    /// SHA-256 of the resolved parameters and the trainer command template, in hex. Equal keys mean the
    /// same training, so a finished key need not run again.
    public let key: String

    public var shortKey: String { String(key.prefix(12)) }

    public subscript(name: String) -> ParamValue? {
        names.firstIndex(of: name).map { values[$0] }
    }

    public var parameters: [(name: String, value: ParamValue)] { Array(zip(names, values)) }

    /// The resolved parameters as one flat JSON object (nested names joined with `.`): `trial.json`.
    public var parametersJSON: String {
        var out = "{"
        for (i, (name, value)) in zip(names, values).enumerated() {
            if i > 0 { out += ", " }
            out += JSONText.quote(name) + ": "
            value.writeJSON(to: &out)
        }
        return out + "}"
    }

    /// A trial recorded earlier (a run's stored parameters), in the experiment's parameter order.
    public init(_ experiment: Experiment, parameters: [String: ParamValue]) {
        let names = experiment.parameters.map(\.name)
        self.init(names: names, values: names.map { parameters[$0] ?? .null }, command: experiment.trainer.command)
    }

    init(names: [String], values: [ParamValue], command: [String]) {
        self.names = names
        self.values = values
        key = Trial.key(names: names, values: values, command: command)
    }

    static func key(names: [String], values: [ParamValue], command: [String]) -> String {
        var canonical = "{\"command\":["
        for (i, token) in command.enumerated() {
            if i > 0 { canonical += "," }
            canonical += JSONText.quote(token)
        }
        canonical += "],\"params\":{"
        for (i, (name, value)) in zip(names, values).enumerated() {
            if i > 0 { canonical += "," }
            canonical += JSONText.quote(name) + ":"
            value.writeCanonical(to: &canonical)
        }
        canonical += "}}"
        return hex(SHA256.hash(data: Array(canonical.utf8)))
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hex(_ digest: some Sequence<UInt8>) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(64)
    for b in digest {
        bytes.append(hexDigits[Int(b >> 4)])
        bytes.append(hexDigits[Int(b & 0x0F)])
    }
    return String(decoding: bytes, as: UTF8.self)
}
