import Foundation

/// Why a run did not finish, read from what the store keeps of it (status, exit, signal, duration, the stderr tail
/// and the executor's note), so a failed night says "4 out of memory (GPU), 1 crashed at start" instead of "5
/// failed". Pure.
public enum FailureCause: String, CaseIterable, Sendable, Codable {
    case outOfMemoryGPU = "out_of_memory_gpu"
    case outOfMemoryHost = "out_of_memory_host"
    case diverged
    case timedOut = "timed_out"
    /// The cluster took the job back: preempted, a node failed, a deadline passed.
    case preempted
    case cancelled
    /// Stopped by harrow (Ctrl-C, a signal, a deadline) or outside it.
    case interrupted
    /// Ended with an error before it reported a metric, within its first minute: an import error, a missing file,
    /// a bad config.
    case crashedAtStart = "crashed_at_start"
    case crashed

    public var label: String {
        switch self {
        case .outOfMemoryGPU: "out of memory (GPU)"
        case .outOfMemoryHost: "out of memory (host)"
        case .diverged: "diverged"
        case .timedOut: "timed out"
        case .preempted: "preempted"
        case .cancelled: "cancelled"
        case .interrupted: "interrupted"
        case .crashedAtStart: "crashed at start"
        case .crashed: "crashed"
        }
    }
}

public enum FailureReading {
    /// What the store knows of a run that did not finish.
    public struct Facts: Sendable {
        /// `failed`, `timed_out` or `interrupted` (any other status has no failure).
        public var status: String
        public var exitCode: Int32?
        public var signal: Int32?
        public var duration: Double?
        public var stderrTail: String?
        /// The executor's note (`the Slurm job was cancelled`, `Slurm: preempted`).
        public var note: String?
        /// Non-finite loss values the trainer reported.
        public var nonfinite: Int
        /// Whether any metrics line arrived.
        public var reported: Bool

        public init(
            status: String, exitCode: Int32? = nil, signal: Int32? = nil, duration: Double? = nil, stderrTail: String? = nil,
            note: String? = nil, nonfinite: Int = 0, reported: Bool = false
        ) {
            self.status = status; self.exitCode = exitCode; self.signal = signal; self.duration = duration
            self.stderrTail = stderrTail; self.note = note; self.nonfinite = nonfinite; self.reported = reported
        }
    }

    public struct Failure: Sendable, Equatable {
        public var cause: FailureCause
        /// The stderr lines (or the note) that decided it, as written.
        public var lines: [String]
        public init(cause: FailureCause, lines: [String]) { self.cause = cause; self.lines = lines }
    }

    /// A crash this soon after the start, before any metric, is a setup error rather than one of training.
    public static let startWindow: Double = 60

    /// Messages that say the accelerator ran out of memory, by the runtime that prints them:
    /// - PyTorch (CUDA and ROCm): `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …`, older
    ///   `RuntimeError: CUDA out of memory`, `HIP out of memory` (c10/cuda/CUDACachingAllocator.cpp), `MPS backend out
    ///   of memory` (aten/src/ATen/mps/MPSAllocator.mm);
    /// - CUDA's own `cudaErrorMemoryAllocation` (`CUDA error: out of memory`) and cuBLAS's `CUBLAS_STATUS_ALLOC_FAILED`;
    /// - JAX/XLA `RESOURCE_EXHAUSTED: Out of memory while trying to allocate`, TensorFlow `ResourceExhaustedError: OOM
    ///   when allocating tensor`.
    static let gpuPatterns = [
        "outofmemoryerror", "cuda out of memory", "hip out of memory", "mps backend out of memory", "cuda error: out of memory",
        "cublas_status_alloc_failed", "resource_exhausted: out of memory", "oom when allocating tensor",
        // Harrow's own refusal of a trial whose estimate exceeds a card (`resources.gpu_memory`).
        "by its memory estimate"
    ]
    /// The host ran out: PyTorch's CPU allocator (`DefaultCPUAllocator: can't allocate memory`, c10/core/impl/alloc_cpu.cpp),
    /// C++ `std::bad_alloc`, Python's `MemoryError`, and Slurm's cgroup OOM killer (`slurmstepd: error: Detected 1
    /// oom_kill event`, or `oom-kill`).
    static let hostPatterns = [
        "can't allocate memory", "std::bad_alloc", "memoryerror", "oom_kill", "oom-kill", "out of memory: killed process"
    ]
    /// A trainer's own word that the loss went non-finite (transformers, LLaMA-Factory and Lightning print these).
    static let nanPatterns = ["loss is nan", "loss is inf", "nan loss", "loss became nan", "non-finite loss", "detected nan"]
    /// The lines a crash is told by: Python's last exception, an error line.
    static let errorMarkers = ["error", "exception", "traceback", "no such file", "not found", "killed", "abort", "segmentation fault"]

    /// Nil for a run that succeeded, stopped early or is still queued or running.
    public static func classify(_ f: Facts) -> Failure? {
        guard ["failed", "timed_out", "interrupted"].contains(f.status) else { return nil }
        let lines = (f.stderrTail ?? "").split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        func matching(_ patterns: [String]) -> [String] {
            lines.filter { line in
                let l = line.lowercased(); return patterns.contains { l.contains($0) }
            }
        }
        let gpu = matching(gpuPatterns)
        if !gpu.isEmpty { return Failure(cause: .outOfMemoryGPU, lines: Array(gpu.suffix(3))) }
        let host = matching(hostPatterns)
        if !host.isEmpty { return Failure(cause: .outOfMemoryHost, lines: Array(host.suffix(3))) }
        let nan = matching(nanPatterns)
        if f.nonfinite > 0 || !nan.isEmpty {
            return Failure(
                cause: .diverged,
                lines: nan.isEmpty ? ["\(f.nonfinite) non-finite loss value\(f.nonfinite == 1 ? "" : "s") reported"] : Array(nan.suffix(3)))
        }
        if f.status == "timed_out" { return Failure(cause: .timedOut, lines: f.note.map { [$0] } ?? []) }
        let note = (f.note ?? "").lowercased()
        if f.status == "interrupted" {
            if note.contains("cancel") { return Failure(cause: .cancelled, lines: [f.note!]) }
            if ["preempt", "node fail", "boot fail", "deadline", "revoked"].contains(where: note.contains) {
                return Failure(cause: .preempted, lines: [f.note!])
            }
            return Failure(cause: .interrupted, lines: f.note.map { [$0] } ?? [])
        }
        // Failed: the last error line tells it, else the last line, else how it ended.
        var told = Array(matching(errorMarkers).suffix(2))
        if told.isEmpty, let last = lines.last { told = [last] }
        if told.isEmpty {
            if let s = f.signal {
                told = [
                    "ended by signal \(s)" + (s == 9 ? " (SIGKILL: the kernel's OOM killer sends it when the host runs out of memory)" : "")
                ]
            } else if let code = f.exitCode {
                told = ["exit code \(code)"]
            }
        }
        let early = !f.reported && (f.duration ?? .infinity) < startWindow
        return Failure(cause: early ? .crashedAtStart : .crashed, lines: told)
    }
}

/// The kernel's out-of-memory killer ends a process with SIGKILL and writes nothing to its stderr, so a trainer
/// it chose looks like any killed process. What tells it: the kernel's count of OOM kills (`oom_kill` in
/// /proc/vmstat, counting global and cgroup kills alike) rose while the trainer ran, and, where the kernel log is
/// readable, its line `Out of memory: Killed process PID (NAME) …` (or `Memory cgroup out of memory: …`,
/// mm/oom_kill.c `__oom_kill_process`). Pure: the runner reads the counter and the log.
public enum OOMKiller {
    /// The note for a run that ended by SIGKILL (or a shell's 128 + 9 = 137) that harrow did not send, when the
    /// kill count rose; nil otherwise. `kernelLines` are the log's kill lines; the trainer's own pid is preferred.
    public static func note(signal: Int32?, exitCode: Int32?, killsBefore: Int?, killsAfter: Int?, kernelLines: [String], pid: Int32?)
        -> String?
    {
        guard signal == 9 || exitCode == 137, let before = killsBefore, let after = killsAfter, after > before else { return nil }
        let kills = kernelLines.filter { $0.lowercased().contains("killed process") }
        let own = pid.flatMap { pid in kills.last { $0.contains("Killed process \(pid) ") } }
        let rose = "the kernel's out-of-memory killer ended it: /proc/vmstat oom_kill rose from \(before) to \(after) while it ran"
        if let own { return rose + "\n" + own }
        if let last = kills.last { return rose + "; the kernel's last kill:\n" + last }
        return rose
    }

    /// The message of a kernel log record (`/dev/kmsg`: `PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;MESSAGE`), or the
    /// line itself when it is not one.
    public static func message(ofKernelRecord record: String) -> String {
        guard let semicolon = record.firstIndex(of: ";"), record[..<semicolon].split(separator: ",").count >= 3 else { return record }
        return String(record[record.index(after: semicolon)...].prefix { $0 != "\n" })
    }

    /// `oom_kill N` from /proc/vmstat's text.
    public static func kills(vmstat text: String) -> Int? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill" { return Int(parts[1]) }
        }
        return nil
    }
}
