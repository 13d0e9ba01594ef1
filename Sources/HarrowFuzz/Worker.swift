#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import FuzzTargets

/// The child process: parses inputs `start..<end` of one campaign, publishing each before parsing it.
enum Worker {
    static func run(target: FuzzTarget, mutator: Mutator, start: Int, end: Int, shared: SharedInput) {
        // A crash is recorded by the supervisor; a core file per crasher would only cost time and disk.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        var index = start
        while index < end {
            let input = mutator.input(index)
            shared.begin(input, index: index)
            let accepted = target.run(Data(input))
            shared.end(accepted: accepted)
            if index & 1023 == 0 { shared[.maxRSS] = UInt64(peakRSSKiB()) }
            index += 1
        }
        shared[.maxRSS] = UInt64(peakRSSKiB())
        shared[.finished] = 1
    }

    static func peakRSSKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }
}
