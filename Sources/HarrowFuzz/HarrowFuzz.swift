#if canImport(Glibc)
    import Glibc
#endif
import ArgumentParser
import Foundation
import FuzzTargets

@main
struct HarrowFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harrow-fuzz",
        abstract: "Deterministic mutation fuzzing of Harrow's parsers.",
        discussion: """
            Each target's inputs are its seed corpus (Fuzz/corpus/TARGET/), then mutations of it drawn from --seed, so a \
            run is reproducible. A worker process parses them; a worker killed by a signal, an input using more than \
            --timeout of CPU time, or a worker above --rss-limit-mb saves that input as OUT/TARGET/{crash,hang,oom}-SHA1 and the \
            worker restarts after it. Exits 1 when anything was found.

            Replay saved inputs in this process with --reproduce FILE… --target TARGET.
            """)

    @Option(name: .customLong("target"), help: "A target to fuzz (repeatable; default all). See --list.")
    var targets: [String] = []
    @Option(help: "Inputs per target, seeds included.") var runs = 100_000
    @Option(help: "Seed of the mutations.") var seed: UInt64 = 1
    @Option(help: "Folder of seed corpora, one subfolder per target.") var corpus = "Fuzz/corpus"
    @Option(help: "Folder for crash-, hang- and oom- inputs.") var out = "Fuzz/findings"
    @Option(help: "CPU seconds one input may take before it counts as a hang (or 20 times that in wall time).") var timeout = 1.0
    @Option(help: "Worker RSS (MB) that counts as running out of memory.") var rssLimitMB = 512
    @Option(help: "Targets fuzzed at once, one worker process each.") var jobs = 1
    @Option(help: "Stop a target after this many findings.") var maxFindings = 20
    @Flag(help: "Print the summary as JSON on stdout (the table goes to stderr).") var json = false
    @Flag(help: "List the targets and exit.") var list = false
    @Option(parsing: .upToNextOption, help: "Parse these files with --target in this process, and report each.")
    var reproduce: [String] = []

    @Flag(help: .hidden) var worker = false
    @Option(help: .hidden) var start = 0
    @Option(help: .hidden) var shared = ""

    func validate() throws {
        for t in targets where FuzzTarget.named(t) == nil {
            throw ValidationError("unknown target '\(t)'; one of \(FuzzTarget.all.map(\.name).joined(separator: ", "))")
        }
        guard runs >= 0, jobs >= 1, timeout > 0, rssLimitMB > 0 else {
            throw ValidationError("--runs, --jobs, --timeout and --rss-limit-mb must be positive")
        }
        if worker || !reproduce.isEmpty, targets.count != 1 { throw ValidationError("give exactly one --target") }
    }

    func run() throws {
        if list {
            for t in FuzzTarget.all { print("\(t.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(t.summary)") }
            return
        }
        let chosen = targets.isEmpty ? FuzzTarget.all : targets.compactMap(FuzzTarget.named)
        if worker {
            let t = chosen[0]
            let mutator = Mutator(corpus: try Self.seeds(corpus, t.name), dictionary: t.dictionary, seed: seed, target: t.name)
            Worker.run(target: t, mutator: mutator, start: start, end: runs, shared: try SharedInput(path: shared, create: false))
            return
        }
        if !reproduce.isEmpty { return replay(chosen[0]) }
        try supervise(chosen)
    }

    /// Regular files of CORPUS/TARGET in name order, each cut to the largest input.
    static func seeds(_ corpus: String, _ target: String) throws -> [[UInt8]] {
        let dir = corpus + "/" + target
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: dir + "/" + name).map { Array($0.prefix(Mutator.maximumSize)) }
        }
    }

    func replay(_ t: FuzzTarget) {
        for file in reproduce {
            guard let data = FileManager.default.contents(atPath: file) else { print("\(file): cannot read"); continue }
            let clock = ContinuousClock()
            var accepted = false
            let took = clock.measure { accepted = t.run(data) }
            print("\(file): \(accepted ? "accepted" : "rejected") in \(took)")
        }
    }

    func supervise(_ chosen: [FuzzTarget]) throws {
        let options = CampaignOptions(
            runs: runs, seed: seed, corpus: corpus, out: out, timeout: timeout, rssLimitMB: rssLimitMB,
            maxFindings: maxFindings, executable: try Self.executablePath())
        for t in chosen where try Self.seeds(corpus, t.name).isEmpty {
            FileHandle.standardError.write(Data("warning: no seeds in \(corpus)/\(t.name); starting from an empty input\n".utf8))
        }
        var pending = try chosen.map { try Campaign(target: $0, options: options) }
        let all = pending
        var active: [Campaign] = []
        var lastReport = monotonicNanos()
        while !pending.isEmpty || !active.isEmpty {
            while active.count < jobs, !pending.isEmpty { active.append(pending.removeFirst()) }
            var finished: [Campaign] = []
            for c in active where try c.poll() { finished.append(c) }
            for c in finished {
                active.removeAll { $0 === c }
                log("\(c.target.name): \(c.inputs) inputs in \(String(format: "%.0f", c.seconds)) s, \(c.findings.count) findings")
            }
            if monotonicNanos() - lastReport > 30_000_000_000 {
                lastReport = monotonicNanos()
                for c in active {
                    let done = c.inputs + Int(c.shared[.completed])
                    log(
                        "\(c.target.name): \(done)/\(runs) (\(String(format: "%.0f", Double(done) / max(c.seconds, 0.001))) inputs/s so far)"
                    )
                }
            }
            usleep(10_000)
        }
        let table = Self.table(all)
        if json {
            FileHandle.standardError.write(Data(table.utf8))
            print(Self.json(all, seed: seed))
        } else {
            print(table, terminator: "")
        }
        for c in all {
            for f in c.findings { log("\(f.kind): \(f.file) (input \(f.index)) \(f.detail.split(separator: "\n").first ?? "")") }
        }
        if all.contains(where: { !$0.findings.isEmpty }) { throw ExitCode(1) }
    }

    func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    static func executablePath() throws -> String {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw FuzzError("cannot find this executable through /proc/self/exe")
        }
        return path
    }

    static func table(_ campaigns: [Campaign]) -> String {
        var rows = [["target", "inputs", "inputs/s", "accepted", "crashes", "hangs", "oom", "peak RSS", "seconds"]]
        for c in campaigns {
            rows.append([
                c.target.name, String(c.inputs), String(format: "%.0f", c.rate),
                c.inputs == 0 ? "-" : String(format: "%.1f%%", 100 * Double(c.accepted) / Double(c.inputs)),
                String(c.count("crash")), String(c.count("hang")), String(c.count("oom")),
                "\(c.peakRSSKiB / 1024) MB", String(format: "%.0f", c.seconds)
            ])
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max()! }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == 0
                    ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    static func json(_ campaigns: [Campaign], seed: UInt64) -> String {
        let targets: [[String: Any]] = campaigns.map { c in
            [
                "target": c.target.name, "inputs": c.inputs, "inputs_per_s": (c.rate * 10).rounded() / 10, "accepted": c.accepted,
                "crashes": c.count("crash"), "hangs": c.count("hang"), "oom": c.count("oom"), "peak_rss_mb": c.peakRSSKiB / 1024,
                "seconds": (c.seconds * 10).rounded() / 10, "worker_restarts": c.restarts,
                "findings": c.findings.map { ["kind": $0.kind, "file": $0.file, "input": $0.index] }
            ]
        }
        let summary: [String: Any] = ["seed": seed, "ok": campaigns.allSatisfy { $0.findings.isEmpty }, "targets": targets]
        let data = (try? JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
