import Foundation
import HarrowCore

/// What the kernel says of its out-of-memory kills (see `OOMKiller`): the count in /proc/vmstat, readable by
/// anyone, and the kill lines of its log (/dev/kmsg; root, or any user where `kernel.dmesg_restrict` is 0).
enum KernelLog {
    static func oomKills() -> Int? {
        (try? String(contentsOfFile: "/proc/vmstat", encoding: .utf8)).flatMap(OOMKiller.kills(vmstat:))
    }

    /// The log's `Killed process` lines, oldest first; none where the log cannot be read.
    static func killLines() -> [String] {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        // One record a read; EPIPE says records were overwritten while reading, and the next read goes on.
        for _ in 0..<200_000 {
            let n = read(fd, &buffer, buffer.count)
            if n < 0, errno == EPIPE { continue }
            guard n > 0 else { break }
            let record = String(decoding: buffer[0..<n], as: UTF8.self)
            if record.contains("Killed process") { lines.append(OOMKiller.message(ofKernelRecord: record)) }
        }
        return Array(lines.suffix(20))
    }
}
