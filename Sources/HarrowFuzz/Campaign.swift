#if canImport(Glibc)
    import Glibc
#endif
import Crypto
import Foundation
import FuzzTargets

/// What the supervisor was told to do, shared by every campaign.
struct CampaignOptions {
    var runs: Int
    var seed: UInt64
    var corpus: String
    var out: String
    var timeout: Double
    var rssLimitMB: Int
    var maxFindings: Int
    var executable: String
}

/// One target's run: a worker process parses inputs while this side watches it for death, hangs and memory, and
/// starts a new worker after the fatal input when one dies.
final class Campaign {
    struct Finding { var kind: String, file: String, index: Int, detail: String }

    let target: FuzzTarget
    let options: CampaignOptions
    let shared: SharedInput
    let logPath: String
    var next = 0
    var pid: pid_t = 0
    /// The worker's CPU-time clock.
    var workerClock = clockid_t(0)
    var inputs = 0, accepted = 0, restarts = 0
    var peakRSSKiB = 0
    var findings: [Finding] = []
    var began = 0 as UInt64, ended = 0 as UInt64

    /// Wall time, in multiples of the timeout, after which an input counts as a hang even without using CPU.
    static let wallFactor = 20.0

    init(target: FuzzTarget, options: CampaignOptions) throws {
        self.target = target
        self.options = options
        let dir = options.out + "/" + target.name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        shared = try SharedInput(path: options.out + "/.\(target.name).shared", create: true)
        logPath = options.out + "/.\(target.name).stderr"
    }

    func count(_ kind: String) -> Int { findings.filter { $0.kind == kind }.count }
    var seconds: Double { Double((ended == 0 ? monotonicNanos() : ended) - began) / 1e9 }
    var rate: Double { seconds > 0 ? Double(inputs) / seconds : 0 }

    /// Advances the campaign; true once it is over.
    func poll() throws -> Bool {
        if began == 0 { began = monotonicNanos() }
        if pid == 0 {
            if next >= options.runs || findings.count >= options.maxFindings {
                ended = monotonicNanos()
                return true
            }
            try spawn()
            return false
        }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            collect()
            let signalled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
            let code = (status >> 8) & 0xFF
            if !signalled, code == 0, shared[.finished] == 1 {
                next = options.runs
            } else {
                let why =
                    signalled
                    ? "killed by signal \(status & 0x7F) (\(String(cString: strsignal(status & 0x7F))))" : "exited with status \(code)"
                record("crash", detail: why + "\n" + logTail())
            }
            pid = 0
            return false
        }
        let rss = Self.residentKiB(pid)
        peakRSSKiB = max(peakRSSKiB, rss)
        // A hang is judged on the worker's CPU time, so a loaded (or niced) machine does not turn a slow input into
        // one; an input that makes no progress at all (a deadlock uses no CPU) is caught by wall time.
        let cpu = Double(Int64(bitPattern: cpuNanos(workerClock) &- shared[.startedCPU])) / 1e9
        let wall = Double(Int64(bitPattern: monotonicNanos() &- shared[.started])) / 1e9
        if shared[.busy] == 1, cpu > options.timeout || wall > options.timeout * Self.wallFactor {
            stop()
            record(
                "hang",
                detail:
                    "one input ran longer than \(options.timeout) s of CPU time (\(String(format: "%.1f", cpu)) s CPU, \(String(format: "%.1f", wall)) s wall)"
            )
        } else if rss > options.rssLimitMB * 1024 {
            stop()
            record("oom", detail: "worker RSS \(rss / 1024) MB above \(options.rssLimitMB) MB")
        }
        return false
    }

    /// Starts a worker at `next` with stdout discarded and stderr kept for the crash report.
    func spawn() throws {
        shared.reset()
        let args = [
            "harrow-fuzz", "--worker", "--target", target.name, "--seed", String(options.seed), "--start", String(next),
            "--runs", String(options.runs), "--corpus", options.corpus, "--shared", shared.path
        ]
        var env = ProcessInfo.processInfo.environment
        // The runtime's backtracer can take seconds per crash; the crashing input is what matters here.
        if env["SWIFT_BACKTRACE"] == nil { env["SWIFT_BACKTRACE"] = "enable=no" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = args.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0)=\($1)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, options.executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw FuzzError("cannot start a worker (\(options.executable)): \(String(cString: strerror(rc)))") }
        pid = child
        // Should this fail (the worker already gone), the clock reads 0 and only wall time can call a hang.
        _ = clock_getcpuclockid(child, &workerClock)
        if next > 0 { restarts += 1 }
    }

    /// Ends a worker that hangs or grows, and reaps it.
    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        collect()
        pid = 0
    }

    /// Counts what the finished worker got through.
    func collect() {
        inputs += Int(shared[.completed])
        accepted += Int(shared[.accepted])
        peakRSSKiB = max(peakRSSKiB, Int(shared[.maxRSS]))
    }

    /// Saves the input the worker was on as KIND-<sha1>, and resumes after it.
    func record(_ kind: String, detail: String) {
        let index = Int(shared[.index])
        let input = shared.input
        inputs += 1
        let sha = Insecure.SHA1.hash(data: input).map { String(format: "%02x", $0) }.joined()
        let file = "\(options.out)/\(target.name)/\(kind)-\(sha)"
        _ = FileManager.default.createFile(atPath: file, contents: Data(input))
        _ = FileManager.default.createFile(
            atPath: file + ".txt", contents: Data("input \(index) of seed \(options.seed)\n\(detail)\n".utf8))
        findings.append(Finding(kind: kind, file: file, index: index, detail: detail))
        next = index + 1
    }

    func logTail() -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "" }
        return String(decoding: data.suffix(4_096), as: UTF8.self)
    }

    /// VmRSS of a live process in KiB (0 once it is gone).
    static func residentKiB(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}
