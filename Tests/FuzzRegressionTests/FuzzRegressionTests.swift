import Foundation
import FuzzTargets
import Testing

/// Every seed and every saved crasher, hang or oom input (Fuzz/regressions/TARGET/) goes through the parser entry
/// point `harrow-fuzz` used, and must return or throw: a trap would end this test process, a hang would exceed the
/// time bound. The bound is generous since tests run debug builds.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let secondsPerInput = 10.0

    static func files(_ folder: String, _ target: String) -> [URL] {
        let dir = root.appendingPathComponent("Fuzz/\(folder)/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".txt") && !$0.hasSuffix(".md") }.sorted().map {
            dir.appendingPathComponent($0)
        }
    }

    @Test func everyTargetHasSeeds() {
        for target in FuzzTarget.all {
            #expect(!Self.files("corpus", target.name).isEmpty, "no seeds in Fuzz/corpus/\(target.name)")
        }
    }

    @Test(arguments: FuzzTarget.all.map(\.name))
    func inputsReturnInTime(_ name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        for file in Self.files("corpus", name) + Self.files("regressions", name) {
            let data = try Data(contentsOf: file)
            let clock = ContinuousClock()
            let took = clock.measure { _ = target.run(data) }
            #expect(took < .seconds(Self.secondsPerInput), "\(file.path) took \(took)")
        }
    }

    /// The shipped seeds are valid files, so each parser must accept them: a seed it refuses would mean the
    /// corpus (or the entry point) drifted from the real format.
    @Test(arguments: FuzzTarget.all.map(\.name))
    func seedsAreAccepted(_ name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        for file in Self.files("corpus", name) {
            #expect(target.run(try Data(contentsOf: file)), "\(file.lastPathComponent) is refused by \(name)")
        }
    }
}
