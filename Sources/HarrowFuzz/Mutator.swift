import HarrowCore
extension SplitMix64 {
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// FNV-1a, to give each target its own stream from one `--seed`.
func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

/// Makes input number `index` of a campaign: the seeds first, unchanged, then stacked mutations of a seed.
/// Each input depends only on (seed, target, corpus, index), so a restarted worker continues the same sequence
/// and `--seed` reproduces a run.
struct Mutator {
    let corpus: [[UInt8]]
    let tokens: [[UInt8]]
    let seed: UInt64
    /// Inputs never grow past this, so one input cannot stall the run by size alone.
    static let maximumSize = 64 * 1024

    init(corpus: [[UInt8]], dictionary: [String], seed: UInt64, target: String) {
        self.corpus = corpus.isEmpty ? [[]] : corpus
        tokens = dictionary.map { Array($0.utf8) }
        self.seed = seed ^ fnv1a(target)
    }

    func input(_ index: Int) -> [UInt8] {
        if index < corpus.count { return corpus[index] }
        // Input i's own stream, from (seed, i) alone.
        var rng = SplitMix64(seed: seed).fork(UInt64(index))
        var bytes = corpus[rng.below(corpus.count)]
        // 1, 2, 4 or 8 mutations: small steps keep most inputs near-valid, larger ones reach odd corners.
        let count = 1 << rng.below(4)
        for _ in 0..<count { mutate(&bytes, &rng) }
        if bytes.count > Self.maximumSize { bytes.removeLast(bytes.count - Self.maximumSize) }
        return bytes
    }

    func mutate(_ b: inout [UInt8], _ rng: inout SplitMix64) {
        switch rng.below(14) {
        case 0:  // flip one bit
            guard !b.isEmpty else { return }
            b[rng.below(b.count)] ^= UInt8(1 << rng.below(8))
        case 1:  // set a byte to something a parser cares about
            let interesting: [UInt8] = [
                0, 0xFF, 0x7F, 0x80, 0x0A, 0x0D, 0x09, 0x20, 0x22, 0x27, 0x3A, 0x2D, 0x5B, 0x7B, 0x5C, 0x23, 0x26, 0x2A
            ]
            if b.isEmpty {
                b.append(interesting[rng.below(interesting.count)])
            } else {
                b[rng.below(b.count)] = rng.chance(50) ? interesting[rng.below(interesting.count)] : UInt8(truncatingIfNeeded: rng.next())
            }
        case 2:  // insert random bytes
            let n = 1 + rng.below(8)
            b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: rng.below(b.count + 1))
        case 3:  // delete a range
            guard !b.isEmpty else { return }
            let start = rng.below(b.count), n = 1 + rng.below(min(b.count - start, rng.chance(20) ? 4_096 : 64))
            b.removeSubrange(start..<start + n)
        case 4:  // duplicate a range somewhere else
            guard !b.isEmpty else { return }
            let start = rng.below(b.count), n = 1 + rng.below(min(b.count - start, 256))
            let piece = Array(b[start..<start + n])
            b.insert(contentsOf: piece, at: rng.below(b.count + 1))
        case 5:  // splice: a head of this input, a tail of another
            let other = corpus[rng.below(corpus.count)]
            let cut = rng.below(b.count + 1), from = rng.below(other.count + 1)
            b = Array(b[..<cut]) + other[from...]
        case 6, 7, 8:  // a dictionary token, at a random place or a line start
            guard !tokens.isEmpty else { return }
            let token = tokens[rng.below(tokens.count)]
            b.insert(contentsOf: token, at: rng.chance(50) ? lineStart(b, &rng) : rng.below(b.count + 1))
        case 9:  // a token replacing a stretch (a value, a key)
            guard !tokens.isEmpty, !b.isEmpty else { return }
            let start = rng.below(b.count), n = 1 + rng.below(min(b.count - start, 16))
            b.replaceSubrange(start..<start + n, with: tokens[rng.below(tokens.count)])
        case 10:  // structure-aware growth: repeat one line many times
            let lines = lineRanges(b)
            guard let line = lines.isEmpty ? nil : lines[rng.below(lines.count)] else { return }
            let piece = Array(b[line]) + [0x0A]
            let times = [2, 10, 100, 1_000, 10_000][rng.below(5)]
            let room = max(0, (Self.maximumSize - b.count) / max(piece.count, 1))
            let copies = min(times, room)
            guard copies > 0 else { return }
            var grown: [UInt8] = []
            grown.reserveCapacity(piece.count * copies)
            for _ in 0..<copies { grown += piece }
            b.insert(contentsOf: grown, at: min(line.upperBound + 1, b.count))
        case 11:  // delete or swap whole lines
            var lines = lineRanges(b).map { Array(b[$0]) }
            guard lines.count > 1 else { return }
            let i = rng.below(lines.count), j = rng.below(lines.count)
            if rng.chance(50) { lines.swapAt(i, j) } else { lines.remove(at: i) }
            b = Array(lines.joined(separator: [0x0A]))
        case 12:  // change a line's indentation (YAML's structure)
            let lines = lineRanges(b)
            guard !lines.isEmpty else { return }
            let line = lines[rng.below(lines.count)]
            if rng.chance(50), line.lowerBound < b.count, b[line.lowerBound] == 0x20 {
                b.remove(at: line.lowerBound)
            } else {
                b.insert(contentsOf: [UInt8](repeating: 0x20, count: 1 + rng.below(4)), at: line.lowerBound)
            }
        default:  // replace a number with an awkward one
            guard let digits = numberRange(b, &rng) else { return }
            let awkward = [
                "0", "-0", "1e400", "-1e400", "1e-400", "9223372036854775807", "9223372036854775808",
                "-9223372036854775808", "4294967296", "2147483647", "-1", "0.0", "1e18", "1e19", "NaN", ".nan", ".inf",
                "1000000000", "123456789012345678901234567890"
            ]
            b.replaceSubrange(digits, with: Array(awkward[rng.below(awkward.count)].utf8))
        }
    }

    func lineRanges(_ b: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = [], start = 0
        for (i, c) in b.enumerated() where c == 0x0A {
            ranges.append(start..<i)
            start = i + 1
        }
        if start < b.count { ranges.append(start..<b.count) }
        return ranges
    }

    func lineStart(_ b: [UInt8], _ rng: inout SplitMix64) -> Int {
        let lines = lineRanges(b)
        return lines.isEmpty ? 0 : lines[rng.below(lines.count)].lowerBound
    }

    /// A run of digits (with sign, dot and exponent) starting at a random digit, if the input has any.
    func numberRange(_ b: [UInt8], _ rng: inout SplitMix64) -> Range<Int>? {
        guard !b.isEmpty else { return nil }
        let from = rng.below(b.count)
        guard
            let first = b[from...].firstIndex(where: { $0 >= 0x30 && $0 <= 0x39 })
                ?? b[..<from].firstIndex(where: { $0 >= 0x30 && $0 <= 0x39 })
        else {
            return nil
        }
        var lo = first, hi = first
        func numeric(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x2D || c == 0x2B || c == 0x65 || c == 0x45 }
        while lo > 0, numeric(b[lo - 1]) { lo -= 1 }
        while hi < b.count, numeric(b[hi]) { hi += 1 }
        return lo..<hi
    }
}
