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

    @Test func notAWandbFile() {
        #expect(WandbLog.scan(Array("{\"step\": 1}\n".utf8), from: 0).notWandb)
        #expect(throws: ImportError.self) { try WandbImporter.read("/nonexistent/offline-run-x") }
    }
}
