/// Errors that reach the user; each says what is wrong and where.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// A malformed data line: `file:line: message`.
    case data(file: String, line: Int, message: String)
    /// Parameter values refused before training starts.
    case config([String])
    /// The loss or the gradient became NaN or infinite.
    case diverged(step: Int, detail: String)
    case file(String)

    public var description: String {
        switch self {
        case let .data(file, line, message): "\(file):\(line): \(message)"
        case let .config(problems): "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        case let .diverged(step, detail): "diverged at step \(step): \(detail)"
        case let .file(message): message
        }
    }
}
