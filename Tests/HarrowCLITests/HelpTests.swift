import ArgumentParser
import Testing
@testable import HarrowCLI

/// The command-line tool's root command (the test target's own `Harrow` runs the built binary).
typealias Root = HarrowCLI.Harrow

@Suite struct HelpTests {
    static let commands: [ParsableCommand.Type] = [Root.self] + Root.configuration.subcommands

    /// Every --help fits an 80-column terminal and its prose reads as wrapped text: no line of a paragraph
    /// could have taken the next line's first word (hard breaks in the source make ragged lines), and no
    /// example or table line spills onto the margin. (The usage line is the library's and is not wrapped.)
    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func helpReadsWellIn80Columns(_ id: ObjectIdentifier) {
        let command = Self.commands.first { ObjectIdentifier($0) == id }!
        let text = Root.helpText(for: command, columns: 80)
        #expect(text.contains("EXIT STATUS:") || text.contains("Exit status"), "\(command._commandName) does not name its exit statuses")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let name = command._commandName
        for line in lines where !line.hasPrefix("USAGE:") {
            #expect(line.count <= 80, "\(name): \(line.count) columns: \(line)")
        }
        func indent(_ s: String) -> Int { s.prefix { $0 == " " }.count }
        // The library wraps prose one column short of the width it is given.
        let width = 79
        for (a, b) in zip(lines, lines.dropFirst()) where !a.isEmpty && !b.isEmpty && indent(b) == 0 && !a.hasPrefix("USAGE:") {
            #expect(indent(a) == 0, "\(name): a line spilled out of its example or table: \(a) / \(b)")
            let firstWord = b.prefix { $0 != " " }
            #expect(a.count + 1 + firstWord.count > width, "\(name): ragged line break: \(a) / \(b)")
        }
    }
}
