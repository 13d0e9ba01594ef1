import Foundation
import HarrowCore
#if canImport(Glibc)
    import Glibc
#endif

/// W&B's offline run file (`wandb/offline-run-DATE-ID/run-ID.wandb`), read as it grows.
///
/// The file is a LevelDB log (google/leveldb `doc/log_format.md`) behind a 7-byte W&B header: `:W&B`, the magic
/// 0xBEE1 (little-endian) and version 0. Blocks are 32 KiB counted from the file's start; each chunk has a
/// CRC-32 (IEEE, zlib's, not LevelDB's masked CRC-32C) of its type byte and data, a little-endian length, and a type
/// (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); fewer than 7 bytes left in a block are zero padding. Sources: wandb/wandb
/// `core/pkg/leveldb/record.go` (`NewReaderExt(f, CRCAlgoIEEE)`) and `wandb/sdk/internal/datastore.py` (SDK 0.19.11,
/// the last Python reader). Each record is a protobuf `Record` of `wandb/proto/wandb_internal.proto`.
public enum WandbLog {
    static let headerLength = 7
    static let blockLength = 32_768
    static let chunkHeaderLength = 7
    static let ident: [UInt8] = Array(":W&B".utf8)
    static let magic: UInt16 = 0xBEE1

    /// What a scan of some bytes of the file found.
    public struct Scan: Sendable {
        /// The protobuf payloads of the complete records, in order.
        public var records: [[UInt8]] = []
        /// File offset just past the last complete record (or padding): where the next scan starts.
        public var offset: Int64
        /// Chunks whose checksum or framing was wrong; the rest of their block was skipped, as LevelDB's reader does.
        public var corrupt = 0
        /// A record begun and not finished at the end of the bytes (at the end of a run: torn by a crash).
        public var torn = false
        /// The header is not W&B's.
        public var notWandb = false
    }

    /// Scans `bytes`, which start at file offset `start` (0, or an offset an earlier scan returned).
    public static func scan(_ bytes: [UInt8], from start: Int64) -> Scan {
        var scan = Scan(offset: start)
        var position = 0  // index into bytes
        func fileOffset(_ i: Int) -> Int64 { start + Int64(i) }
        if start == 0 {
            guard bytes.count >= headerLength else { return scan }
            guard Array(bytes[0..<4]) == ident, UInt16(bytes[4]) | UInt16(bytes[5]) << 8 == magic else {
                scan.notWandb = true
                return scan
            }
            position = headerLength
            scan.offset = Int64(headerLength)
        }
        var fragments: [UInt8] = []
        var inRecord = false
        /// A damaged chunk: the rest of its block is skipped, as LevelDB's reader does. Only a complete block can be
        /// judged (a chunk past the bytes read so far may still be being written): false means wait for more.
        func skipBlock(left: Int) -> Bool {
            guard position + left <= bytes.count else { return false }
            scan.corrupt += 1
            position += left
            fragments = []; inRecord = false
            scan.offset = fileOffset(position)
            return true
        }
        while true {
            let inBlock = Int(fileOffset(position) % Int64(blockLength))
            let left = blockLength - inBlock
            if left < chunkHeaderLength {
                guard position + left <= bytes.count else { break }
                position += left
                if !inRecord { scan.offset = fileOffset(position) }
                continue
            }
            guard position + chunkHeaderLength <= bytes.count else { break }
            let checksum =
                UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16 | UInt32(bytes[position + 3])
                << 24
            let length = Int(bytes[position + 4]) | Int(bytes[position + 5]) << 8
            let type = bytes[position + 6]
            let end = position + chunkHeaderLength + length
            // A zero chunk header is padding a writer left (or the unwritten tail of a preallocated block).
            if type == 0, length == 0, checksum == 0 {
                guard position + left <= bytes.count else { break }
                position += left
                if !inRecord { scan.offset = fileOffset(position) }
                continue
            }
            if length > left - chunkHeaderLength || !(1...4).contains(type) {
                if skipBlock(left: left) { continue } else { break }
            }
            guard end <= bytes.count else { break }
            let data = bytes[(position + chunkHeaderLength)..<end]
            guard crc32([type], data) == checksum else {
                if skipBlock(left: left) { continue } else { break }
            }
            position = end
            switch type {
            case 1:
                if inRecord { scan.corrupt += 1 }
                scan.records.append(Array(data))
                fragments = []; inRecord = false
                scan.offset = fileOffset(position)
            case 2:
                if inRecord { scan.corrupt += 1 }
                fragments = Array(data); inRecord = true
            case 3:
                if inRecord { fragments += data } else { scan.corrupt += 1; scan.offset = fileOffset(position) }
            default:
                if inRecord {
                    scan.records.append(fragments + data)
                } else {
                    scan.corrupt += 1
                }
                fragments = []; inRecord = false
                scan.offset = fileOffset(position)
            }
        }
        scan.torn = inRecord || scan.offset < fileOffset(bytes.count)
        return scan
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// zlib's CRC-32 of `a` then `b`.
    static func crc32(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in a { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        for byte in b { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

// MARK: - Records

extension WandbLog {
    /// The fields of `wandb_internal.proto` Harrow reads (field numbers from wandb 0.31.0's `wandb_internal_pb2`).
    public enum Record: Sendable {
        /// `HistoryRecord` (Record field 2): one `wandb.log` call, `_step` and the logged keys' JSON values.
        case history(step: Int?, items: [(key: String, json: String)])
        /// `ConfigRecord` (field 5), or the config inside `RunRecord` (field 17, its field 4).
        case config([(key: String, json: String)])
        /// `RunRecord`: the run's id, W&B sweep id and start (seconds since 1970).
        case run(id: String, sweep: String?, start: Double?, config: [(key: String, json: String)])
        /// `RunExitRecord` (field 18): the script's exit code and runtime in seconds.
        case exit(code: Int, runtime: Int)
        case other
    }

    public static func decode(_ payload: [UInt8]) -> Record {
        var r = ProtoReader(payload[...])
        while let (field, value) = r.next() {
            guard case .bytes(let body) = value else { continue }
            switch field {
            case 2: return history(body)
            case 5: return .config(items(body, field: 1))
            case 17: return run(body)
            case 18:
                var e = ProtoReader(body)
                var code = 0, runtime = 0
                while let (f, v) = e.next() {
                    if case .varint(let n) = v {
                        if f == 1 {
                            code = Int(Int32(truncatingIfNeeded: n))
                        } else if f == 2 {
                            runtime = Int(Int32(truncatingIfNeeded: n))
                        }
                    }
                }
                return .exit(code: code, runtime: runtime)
            default: continue
            }
        }
        return .other
    }

    private static func history(_ body: ArraySlice<UInt8>) -> Record {
        var r = ProtoReader(body)
        var entries: [(String, String)] = []
        var step: Int?
        while let (field, value) = r.next() {
            switch (field, value) {
            case (1, .bytes(let item)): if let kv = keyValue(item) { entries.append(kv) }
            case (2, .bytes(let s)):
                var sr = ProtoReader(s)
                step = 0  // proto3 leaves a zero step out
                while let (f, v) = sr.next() { if f == 1, case .varint(let n) = v { step = Int(Int64(bitPattern: n)) } }
            default: break
            }
        }
        if let s = entries.first(where: { $0.0 == "_step" }).flatMap({ Int($0.1) }) { step = s }
        return .history(step: step, items: entries)
    }

    private static func run(_ body: ArraySlice<UInt8>) -> Record {
        var r = ProtoReader(body)
        var id = "", sweep: String?, start: Double?, config: [(String, String)] = []
        while let (field, value) = r.next() {
            guard case .bytes(let b) = value else { continue }
            switch field {
            case 1: id = String(decoding: b, as: UTF8.self)
            case 4: config = items(b, field: 1)
            case 12: sweep = String(decoding: b, as: UTF8.self)
            case 17:
                var t = ProtoReader(b)
                var seconds = 0.0, nanos = 0.0
                while let (f, v) = t.next() {
                    if case .varint(let n) = v { if f == 1 { seconds = Double(Int64(bitPattern: n)) } else if f == 2 { nanos = Double(n) } }
                }
                start = seconds + nanos / 1e9
            default: break
            }
        }
        return .run(id: id, sweep: sweep?.isEmpty == true ? nil : sweep, start: start, config: config)
    }

    /// The `field` items (`ConfigItem`, `HistoryItem`) of a message, as key and JSON value.
    private static func items(_ body: ArraySlice<UInt8>, field: Int) -> [(key: String, json: String)] {
        var r = ProtoReader(body)
        var out: [(String, String)] = []
        while let (f, value) = r.next() {
            if f == field, case .bytes(let item) = value, let kv = keyValue(item) { out.append(kv) }
        }
        return out
    }

    /// `key` (1) or `nested_key` (2, joined with `.`, as W&B shows nested keys) and `value_json` (16).
    private static func keyValue(_ item: ArraySlice<UInt8>) -> (String, String)? {
        var r = ProtoReader(item)
        var key = "", nested: [String] = [], json: String?
        while let (f, v) = r.next() {
            guard case .bytes(let b) = v else { continue }
            switch f {
            case 1: key = String(decoding: b, as: UTF8.self)
            case 2: nested.append(String(decoding: b, as: UTF8.self))
            case 16: json = String(decoding: b, as: UTF8.self)
            default: break
            }
        }
        let name = key.isEmpty ? nested.joined(separator: ".") : key
        guard !name.isEmpty, let json else { return nil }
        return (name, json)
    }
}

/// Protobuf's wire format, enough to walk messages: varints, 64- and 32-bit fields, length-delimited fields.
struct ProtoReader {
    enum Value { case varint(UInt64), bytes(ArraySlice<UInt8>), fixed }
    var data: ArraySlice<UInt8>
    init(_ data: ArraySlice<UInt8>) { self.data = data }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0, shift: UInt64 = 0
        while let byte = data.first {
            data = data.dropFirst()
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// The next field, or nil at the end (or on a malformed message, which ends the walk).
    mutating func next() -> (Int, Value)? {
        guard !data.isEmpty, let tag = varint() else { return nil }
        let field = Int(tag >> 3)
        switch tag & 7 {
        case 0: return varint().map { (field, .varint($0)) }
        case 1: guard data.count >= 8 else { return nil }; data = data.dropFirst(8); return (field, .fixed)
        case 5: guard data.count >= 4 else { return nil }; data = data.dropFirst(4); return (field, .fixed)
        case 2:
            guard let n = varint(), n <= UInt64(data.count) else { return nil }
            let body = data.prefix(Int(n))
            data = data.dropFirst(Int(n))
            return (field, .bytes(body))
        default: return nil
        }
    }
}

// MARK: - Curves and runs

/// A W&B run's history as Harrow's curves: every numeric value `wandb.log` sent, under its own key (or the name
/// `keys` maps it to), at the run's `_step`. W&B's own `_timestamp`, `_runtime` and `_step` are not curves.
public enum WandbImporter {
    /// Adds the history in `records` to `batch`.
    public static func add(_ records: [[UInt8]], keys: [String: String] = [:], into batch: inout MetricsBatch) {
        for payload in records {
            guard case .history(let step, let items) = WandbLog.decode(payload) else { continue }
            guard let step, step >= 0 else { batch.malformed += 1; continue }
            batch.lines += 1
            for (key, json) in items where !key.hasPrefix("_") {
                guard let value = number(json) else { continue }
                if value.isFinite { batch.add(keys[key] ?? key, step: Int32(clamping: step), value: value) } else { batch.nonfinite += 1 }
            }
        }
        batch.inferStepsPerEpoch()
    }

    /// A JSON number (W&B writes NaN and ±Infinity bare); booleans, strings and objects are not curves.
    static func number(_ json: String) -> Double? {
        if let n = PythonJSON.nonFinite[json] { return n }
        guard let first = json.utf8.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return nil
        }
        return Double(json)
    }

    /// An offline run folder (`wandb/offline-run-*`), its `.wandb` file, or a folder holding one run: parameters from
    /// its config (nested values named `a.b`), curves from its history, and when it started and ended.
    public static func read(_ path: String) throws(ImportError) -> ImportedRun {
        let file = try locate(path)
        guard let data = FileManager.default.contents(atPath: file) else { throw ImportError("cannot read \(file)") }
        let scan = WandbLog.scan([UInt8](data), from: 0)
        if scan.notWandb { throw ImportError("\(file) is not a W&B run file (its header is not `:W&B`)") }
        var run = ImportedRun(source: "wandb", directory: (file as NSString).deletingLastPathComponent, params: [:])
        var runtime: Int?
        for payload in scan.records {
            switch WandbLog.decode(payload) {
            case .run(let id, let sweep, let start, let config):
                run.startedAt = start
                addConfig(config, to: &run.params)
                run.notes.append("W&B run \(id)" + (sweep.map { " of sweep \($0)" } ?? ""))
            case .config(let items): addConfig(items, to: &run.params)
            case .exit(let code, let seconds):
                runtime = seconds
                run.exitCode = code
            default: break
            }
        }
        add(scan.records, into: &run.batch)
        if let start = run.startedAt, let runtime { run.endedAt = start + Double(runtime) }
        if scan.corrupt > 0 { run.notes.append("\(scan.corrupt) damaged block(s) skipped") }
        if scan.torn { run.notes.append("the file ends inside a record (the run did not finish writing it)") }
        if runtime == nil { run.notes.append("no exit record: the run had not finished, or crashed") }
        run.batch.malformed += scan.corrupt
        return run
    }

    /// Config items as parameters: W&B's own `_wandb` is left out, and a mapping becomes dotted names.
    static func addConfig(_ items: [(key: String, json: String)], to params: inout [String: ParamValue]) {
        for (key, json) in items where !key.hasPrefix("_") {
            guard
                let object = PythonJSON.object(Data(json.utf8))
                    ?? PythonJSON.object(Data("[\(json)]".utf8)).flatMap({ ($0 as? [Any])?.first })
            else { continue }
            flatten(key, object, into: &params)
        }
    }

    private static func flatten(_ name: String, _ value: Any, into params: inout [String: ParamValue]) {
        if let d = value as? [String: Any] {
            for (k, v) in d { flatten(name + "." + k, v, into: &params) }
        } else if let s = value as? String, let n = PythonJSON.nonFinite[s] {
            params[name] = .double(n)
        } else {
            params[name] = ParamValue(jsonObject: value)
        }
    }

    /// The `.wandb` file of a run folder, a wandb folder's newest run, or the file itself.
    static func locate(_ path: String) throws(ImportError) -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ImportError("no such file or folder: \(path)") }
        guard isDir.boolValue else { return path }
        for pattern in [
            "run-*.wandb", "offline-run-*/run-*.wandb", "run-*/run-*.wandb", TrainerContract.RunFile.wandb, "wandb/run-*/run-*.wandb"
        ] {
            if let found = FilePattern.newest(path + "/" + pattern) { return found }
        }
        throw ImportError(
            "no W&B run file (run-*.wandb) in \(path); give an offline run folder such as wandb/offline-run-20250101_120000-abc123")
    }
}

/// Paths whose components may hold `*` (ms-swift writes under `output/v0-DATE/`, W&B under `offline-run-DATE-ID/`).
public enum FilePattern {
    /// The most recently modified file matching `pattern`.
    public static func newest(_ pattern: String) -> String? {
        var candidates = [pattern.hasPrefix("/") ? "/" : ""]
        for component in pattern.split(separator: "/").map(String.init) {
            candidates = candidates.flatMap { base -> [String] in
                let join = { (name: String) in base.isEmpty ? name : (base.hasSuffix("/") ? base + name : base + "/" + name) }
                guard component.contains("*") else { return [join(component)] }
                let names = (try? FileManager.default.contentsOfDirectory(atPath: base.isEmpty ? "." : base)) ?? []
                return names.filter { fnmatch(component, $0, 0) == 0 }.map(join)
            }
        }
        func modified(_ path: String) -> Date {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        }
        return candidates.filter { FileManager.default.fileExists(atPath: $0) }.max { modified($0) < modified($1) }
    }
}
