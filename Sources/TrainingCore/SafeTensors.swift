import HarrowCore
import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON header of
/// `name: {dtype, shape, data_offsets}` (plus `__metadata__`), then the raw little-endian data.
public enum SafeTensors {
    public struct Entry: Sendable {
        public var shape: [Int]
        public var values: [Float]
    }

    /// Writes F32 tensors in name order, header padded with spaces to 8 bytes, metadata `{"format": "pt"}`.
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)], to url: URL) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var entries: [String] = [#""__metadata__":{"format":"pt"}"#]
        var offset = 0
        for t in sorted {
            precondition(t.shape.reduce(1, *) == t.values.count, "shape of \(t.name) does not match its data")
            let end = offset + t.values.count * 4
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for t in sorted {
            // Float32 is little-endian on every platform Swift supports here.
            out.append(UnsafeBufferPointer(start: t.values.baseAddress, count: t.values.count))
        }
        try out.write(to: url, options: .atomic)
    }

    public static func read(_ url: URL) throws -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TrainingError.file("cannot read \(url.path)") }
        func bad(_ why: String) -> TrainingError { .file("\(url.path): not a valid safetensors file (\(why))") }
        guard data.count >= 8 else { throw bad("too short") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8),
            let header = (try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n))))) as? [String: Any]
        else { throw bad("unreadable header") }
        let base = 8 + Int(n)
        var out: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw bad("entry \(name)") }
            guard dtype == "F32" else { throw TrainingError.file("\(url.path): tensor \(name) is \(dtype); only F32 is supported") }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * 4, base + offsets[1] <= data.count else { throw bad("offsets of \(name)") }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.copyBytes(to: dst, from: (base + offsets[0])..<(base + offsets[1]))
            }
            out[name] = Entry(shape: shape, values: values)
        }
        return out
    }

    static func jsonString(_ s: String) -> String { JSONText.quote(s) }
}
