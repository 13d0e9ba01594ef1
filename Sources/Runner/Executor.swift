import Foundation
import Subprocess
import SystemPackage

/// One trainer process to start.
public struct Job: Sendable {
    public var argv: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    public var stdoutPath: String
    public var stderrPath: String
}

public enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
}

/// Launches, watches and cancels trials. `local` runs subprocess slots on this machine; a cluster executor
/// (Slurm job arrays reading results back from run folders) fits the same three calls.
public protocol Executor: Sendable {
    /// Runs the job to its end. `started` receives the trainer's pid, which is also its process group.
    func run(_ job: Job, started: @escaping @Sendable (Int32) async -> Void) async throws -> Termination
    /// Signals the whole process group of a running trainer.
    func signal(_ pid: Int32, _ signal: Int32)
}

public struct LocalExecutor: Executor {
    public init() {}

    public func run(_ job: Job, started: @escaping @Sendable (Int32) async -> Void) async throws -> Termination {
        let out = try FileDescriptor.open(FilePath(job.stdoutPath), .writeOnly, options: [.create, .truncate],
                                          permissions: [.ownerReadWrite, .groupRead, .otherRead])
        let err = try FileDescriptor.open(FilePath(job.stderrPath), .writeOnly, options: [.create, .truncate],
                                          permissions: [.ownerReadWrite, .groupRead, .otherRead])
        var options = PlatformOptions()
        // Its own session and process group, so a timeout or Ctrl-C reaches the trainer's children too.
        options.createSession = true
        var env: [Environment.Key: String?] = [:]
        for (k, v) in job.environment { env[Environment.Key(stringLiteral: k)] = v }
        let executable: Executable = job.argv[0].contains("/") ? .path(FilePath(job.argv[0])) : .name(job.argv[0])
        let result = try await Subprocess.run(
            executable, arguments: Arguments(Array(job.argv.dropFirst())), environment: .inherit.updating(env),
            workingDirectory: FilePath(job.workingDirectory), platformOptions: options, input: .none,
            output: .fileDescriptor(out, closeAfterSpawningProcess: true),
            error: .fileDescriptor(err, closeAfterSpawningProcess: true)
        ) { execution in
            await started(execution.processIdentifier.value)
        }
        switch result.terminationStatus {
        case .exited(let code): return .exited(code)
        case .signaled(let s): return .signaled(s)
        }
    }

    public func signal(_ pid: Int32, _ signal: Int32) {
        guard pid > 0 else { return }
        kill(-pid, signal)
    }
}

/// Process groups on this machine whose processes carry `NAME=value` in their environment: trainers of a
/// run, found even when the harrow that started them died before it could record their pid.
public func processGroups(withEnvironment name: String, value: String) -> Set<Int32> {
    let needle = Array("\(name)=\(value)".utf8)
    var groups = Set<Int32>()
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), pid != getpid(), let environ = readProcFile("/proc/\(entry)/environ") else { continue }
        if environ.split(separator: 0).contains(where: { Array($0) == needle }) {
            let group = getpgid(pid)
            if group > 0 { groups.insert(group) }
        }
    }
    return groups
}

/// Reads a /proc file to its end. They report a size of 0, so readers that trust the size read nothing.
func readProcFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

/// Is a process alive on this machine? EPERM means it exists under another user; a zombie (exited, not yet
/// reaped by its parent) counts as gone.
public func processIsAlive(_ pid: Int32) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let bytes = readProcFile("/proc/\(pid)/stat"), let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return true }
    // The state letter follows ") ": Z is a zombie.
    return bytes.dropFirst(close + 1).first { $0 != UInt8(ascii: " ") } != UInt8(ascii: "Z")
}
