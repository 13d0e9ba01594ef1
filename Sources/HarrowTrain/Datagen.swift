import ArgumentParser
import Foundation
import World

struct Datagen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the shipped datasets (datasets/) and evalsets (evalsets/) from the fictional world, byte for byte.")

    @Option(help: "Repository root to write under.") var root = "."
    @Option(help: "Seed of the world.") var seed = Int(Generator.defaultSeed)
    @Flag(help: "Write nothing; exit 1 when any file differs from what the generator makes.") var check = false

    func run() throws {
        let base = URL(fileURLWithPath: root)
        var differing: [String] = []
        for file in Generator.files(seed: UInt64(seed)) {
            let url = base.appendingPathComponent(file.path)
            let data = Data(file.contents.utf8)
            if check {
                if FileManager.default.contents(atPath: url.path) != data { differing.append(file.path) }
                continue
            }
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
            print("\(file.path)  \(data.count) bytes, \(file.contents.filter { $0 == "\n" }.count) lines")
        }
        if check {
            if differing.isEmpty { print("datasets and evalsets match the generator"); return }
            FileHandle.standardError.write(
                Data("harrow-train datagen: differs from the generator: \(differing.joined(separator: ", "))\n".utf8))
            throw ExitCode.failure
        }
    }
}
