#if canImport(Glibc)
    import Glibc
#endif
import Foundation

/// A file both the supervisor and its worker map: a small header, then the input being parsed. The worker writes
/// each input here before parsing it, so when a Swift trap kills the worker the supervisor still has the input
/// that did it (and how long it has been running, for hangs). Writing is a memcpy, no system call per input.
final class SharedInput {
    /// Header words (UInt64).
    enum Slot: Int {
        case busy = 0  // 1 while an input is being parsed
        case index = 1  // the input's number in the campaign
        case started = 2  // CLOCK_MONOTONIC nanoseconds when it started
        case length = 3  // its size in bytes
        case completed = 4  // inputs this worker finished
        case accepted = 5  // of which the parser accepted
        case maxRSS = 6  // the worker's own peak RSS in KiB (getrusage)
        case finished = 7  // 1 once the worker ran its whole range
        case startedCPU = 8  // the worker's CPU time in nanoseconds when the input started
    }

    static let headerSize = 4_096
    static let size = headerSize + Mutator.maximumSize
    let path: String
    let base: UnsafeMutableRawPointer

    /// Creates (or, with `create: false`, opens) the file at `path` and maps it.
    init(path: String, create: Bool) throws {
        self.path = path
        let fd = open(path, create ? (O_RDWR | O_CREAT | O_TRUNC) : O_RDWR, 0o600)
        guard fd >= 0 else { throw FuzzError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if create, ftruncate(fd, off_t(Self.size)) != 0 { throw FuzzError("cannot size \(path): \(String(cString: strerror(errno)))") }
        guard let p = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw FuzzError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base = p
    }

    deinit { munmap(base, Self.size) }

    subscript(_ slot: Slot) -> UInt64 {
        get { base.load(fromByteOffset: slot.rawValue * 8, as: UInt64.self) }
        set { base.storeBytes(of: newValue, toByteOffset: slot.rawValue * 8, as: UInt64.self) }
    }

    func reset() { memset(base, 0, Self.headerSize) }

    /// Publishes the input about to be parsed.
    func begin(_ input: [UInt8], index: Int) {
        input.withUnsafeBytes { bytes in
            if let from = bytes.baseAddress { base.advanced(by: Self.headerSize).copyMemory(from: from, byteCount: bytes.count) }
        }
        self[.length] = UInt64(input.count)
        self[.index] = UInt64(index)
        self[.started] = monotonicNanos()
        self[.startedCPU] = cpuNanos(CLOCK_PROCESS_CPUTIME_ID)
        self[.busy] = 1
    }

    func end(accepted: Bool) {
        self[.busy] = 0
        self[.completed] += 1
        if accepted { self[.accepted] += 1 }
    }

    /// The input last published.
    var input: [UInt8] {
        let n = min(Int(self[.length]), Mutator.maximumSize)
        return Array(UnsafeRawBufferPointer(start: base.advanced(by: Self.headerSize), count: n))
    }
}

func monotonicNanos() -> UInt64 { cpuNanos(CLOCK_MONOTONIC) }

/// Nanoseconds on `clock` (also a process's CPU clock from clock_getcpuclockid).
func cpuNanos(_ clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct FuzzError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
