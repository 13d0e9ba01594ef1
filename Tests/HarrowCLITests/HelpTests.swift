import ArgumentParser
import Testing
@testable import HarrowCLI

@Suite struct HelpTests {
    static let commands: [ParsableCommand.Type] = [Harrow.self] + Harrow.configuration.subcommands

    /// Every --help fits an 80-column terminal and its prose reads as wrapped text: no line of a paragraph
    /// could have taken the next line's first word (hard breaks in the source make ragged lines).
    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func helpReadsWellIn80Columns(_ id: ObjectIdentifier) {
        let command = Self.commands.first { ObjectIdentifier($0) == id }!
        let text = command == Harrow.self ? Harrow.helpMessage(columns: 80) : Harrow.helpMessage(for: command, columns: 80)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let name = command._commandName
        for line in lines {
            #expect(line.count <= 80, "\(name): \(line.count) columns: \(line)")
        }
        // Prose sits at the margin of its section; tables and examples are indented further.
        let margin = lines.filter { !$0.isEmpty }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        for (a, b) in zip(lines, lines.dropFirst()) {
            let indentA = a.prefix { $0 == " " }.count, indentB = b.prefix { $0 == " " }.count
            guard !a.isEmpty, !b.isEmpty, indentA == margin, indentB == margin,
                  !a.hasSuffix(":"), !b.uppercased().elementsEqual(b) else { continue }
            let firstWord = b.drop { $0 == " " }.prefix { $0 != " " }
            #expect(a.count + 1 + firstWord.count > 80, "\(name): ragged line break after: \(a)")
        }
    }
}
