import Foundation
import HarrowCore
import Testing
@testable import Tracking

/// The `.wandb` reader against a file the W&B SDK wrote (Fixtures/wandb-run: `scripts/wandb_fixture.py`, wandb
/// 0.31.0), whose contents W&B's own reader counted into `expected.json`.
@Suite struct WandbLogTests {
    let file = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/wandb-run/run.wandb").path

    struct Expected: Decodable {
        var history_records: Int
        var points: [String: Int]
        var config_keys: [String]
        var size: Int
    }

    var bytes: [UInt8] { [UInt8](FileManager.default.contents(atPath: file)!) }
    var expected: Expected {
        let url = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("expected.json")
        return try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }

    func histories(_ records: [[UInt8]]) -> Int {
        records.count { if case .history = WandbLog.decode($0) { true } else { false } }
    }

    @Test func readsEveryPointWandbsOwnReaderFinds() throws {
        let e = expected
        #expect(bytes.count == e.size)
        let scan = WandbLog.scan(bytes, from: 0)
        #expect(!scan.notWandb && scan.corrupt == 0 && !scan.torn)
        #expect(scan.offset == Int64(bytes.count))
        #expect(histories(scan.records) == e.history_records)
        let run = try WandbImporter.read(file)
        #expect(run.batch.series.mapValues(\.steps.count) == e.points)
        #expect(run.batch.nonfinite == 1)  // the NaN grad_norm is counted, not stored
        #expect(run.batch.series["train/loss"]?.steps == (0..<300).map(Int32.init))
        #expect(run.batch.series["val_loss"]?.steps.first == 9)
        let first = try #require(run.batch.series["train/loss"]?.values.first)
        #expect(abs(first - 2.1) < 1e-12)
        // Parameters from the config; a mapping becomes dotted names, W&B's own `_wandb` is left out.
        #expect(run.params["lr"] == .double(1e-4) && run.params["lora.r"] == .int(8) && run.params["lora.alpha"] == .int(16))
        #expect(run.params["targets"] == .list([.string("q_proj"), .string("v_proj")]))
        #expect(Set(run.params.keys.map { $0.split(separator: ".").first.map(String.init)! }) == Set(e.config_keys))
        #expect(run.exitCode == 0 && run.startedAt != nil && run.endedAt! >= run.startedAt!)
    }

    @Test func aFileReadAsItGrowsGivesTheSameRecords() {
        let whole = WandbLog.scan(bytes, from: 0).records
        // The writer's bytes arrive in arbitrary pieces; each scan starts where the last complete record ended.
        var rng = SplitMix64(seed: 7)
        var visible = 0, offset: Int64 = 0, records: [[UInt8]] = []
        while visible < bytes.count {
            visible = min(bytes.count, visible + 1 + rng.below(9000))
            let scan = WandbLog.scan(Array(bytes[Int(offset)..<visible]), from: offset)
            #expect(scan.corrupt == 0)
            records += scan.records
            offset = scan.offset
        }
        #expect(records == whole)
        #expect(offset == Int64(bytes.count))
    }

    @Test func aTornTailKeepsEveryCompleteRecord() {
        let whole = WandbLog.scan(bytes, from: 0)
        // Cut inside the last record: everything before it is read, and the scan says the file ends inside a record.
        let cut = Array(bytes.prefix(bytes.count - 5))
        let scan = WandbLog.scan(cut, from: 0)
        #expect(scan.torn && scan.corrupt == 0)
        #expect(scan.records == Array(whole.records.dropLast()))
        #expect(scan.offset < Int64(cut.count))
    }

    @Test func aDamagedBlockIsSkippedAndTheRestIsRead() {
        let whole = WandbLog.scan(bytes, from: 0)
        var damaged = bytes
        damaged[150_000] ^= 0xFF  // inside block 4, among history records
        let scan = WandbLog.scan(damaged, from: 0)
        #expect(scan.corrupt >= 1)
        let lost = histories(whole.records) - histories(scan.records)
        // One block holds at most a few hundred of these records; the blocks after it are all read.
        #expect(lost > 0 && lost < 300)
        #expect(scan.offset == Int64(bytes.count) && !scan.torn)
        let tailRecords = WandbLog.scan(Array(bytes[(5 * 32_768)...]), from: 5 * 32_768).records
        #expect(scan.records.suffix(10) == tailRecords.suffix(10))
    }

    /// Records sized so the first block ends with 0 to 8 bytes to spare: fewer than a chunk header's 7 are padding,
    /// 7 hold an empty FIRST chunk, more hold a FIRST chunk with data. Every record is read back whole.
    @Test(arguments: 0...8) func everyBlockEndIsFramedAsLevelDBDoes(_ spare: Int) {
        var file: [UInt8] = Array(":W&B".utf8) + [0xE1, 0xBE, 0x00]
        // One chunk, split at block ends as LevelDB's writer splits it (google/leveldb db/log_writer.cc).
        func append(_ record: [UInt8]) {
            var rest = record[...], first = true
            repeat {
                let left = WandbLog.blockLength - file.count % WandbLog.blockLength
                if left < 7 { file += [UInt8](repeating: 0, count: left); continue }
                let take = min(rest.count, left - 7)
                let last = take == rest.count
                let type: UInt8 = first && last ? 1 : first ? 2 : last ? 4 : 3
                let data = Array(rest.prefix(take))
                let crc = WandbLog.crc32([type], data[...])
                file +=
                    [
                        UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24), UInt8(take & 0xFF),
                        UInt8(take >> 8), type
                    ] + data
                rest = rest.dropFirst(take)
                first = false
            } while !rest.isEmpty
        }
        // A first record that leaves `spare` bytes in block 0, then two more.
        let firstSize = WandbLog.blockLength - 7 - 7 - spare
        let records: [[UInt8]] = [
            [UInt8](repeating: 1, count: firstSize), [UInt8](repeating: 2, count: 100), [UInt8](repeating: 3, count: 40_000)
        ]
        for r in records { append(r) }
        let scan = WandbLog.scan(file, from: 0)
        #expect(scan.corrupt == 0 && !scan.torn && scan.offset == Int64(file.count))
        #expect(scan.records == records)
    }

    @Test func notAWandbFile() {
        #expect(WandbLog.scan(Array("{\"step\": 1}\n".utf8), from: 0).notWandb)
        #expect(throws: ImportError.self) { try WandbImporter.read("/nonexistent/offline-run-x") }
    }
}
