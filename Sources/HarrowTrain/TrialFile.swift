import Foundation
import HarrowCore

/// trial.json as every harrow-train subcommand reads it: one flat JSON object decoded once into ParamValues, floats
/// exact to their last digit (as the sweep that wrote it holds them).
enum TrialFile {
    enum Failure: Error { case unreadable, notAnObject }

    /// The parameters in the file at `path`.
    static func read(_ path: String) throws(Failure) -> [String: ParamValue] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable }
        return try decode(data)
    }

    /// The parameters in JSON text (a trial.json's, or the same given inline).
    static func decode(_ data: Data) throws(Failure) -> [String: ParamValue] {
        guard let parameters = ParamValue.object(fromJSONData: data) else { throw .notAnObject }
        return parameters
    }

    /// A `--set NAME=VALUE` value: JSON when it parses, else the text itself.
    static func value(_ text: String) -> ParamValue { ParamValue(json: text) ?? .string(text) }
}
