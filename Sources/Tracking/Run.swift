import HarrowCore
import Foundation
import GRDB

/// docs/DESIGN.md's statuses. `succeeded` and `stopped_early` count as finished: a re-run skips them.
public enum RunStatus: String, Sendable, CaseIterable, Codable {
    case queued, running, succeeded, stopped_early, failed, timed_out, interrupted

    public var isFinished: Bool { self == .succeeded || self == .stopped_early }
    public var isTerminal: Bool { self != .queued && self != .running }
}

/// A run as stored: one trial's record, its latest attempt, and where its files are.
public struct Run: Sendable {
    public var rowID: Int64
    public var id: String
    /// The key of the run's whole identity (parameters, command, code, data).
    public var trialKey: String
    /// The key of its parameters and command alone (`Trial.key`); nil for imported runs.
    public var paramsKey: String?
    public var sweepName: String?
    public var source: String
    public var paramsJSON: String
    public var command: [String]
    public var status: RunStatus
    public var attempt: Int
    public var runDir: String?
    public var ownerPID: Int32?
    public var ownerHost: String?
    public var heartbeat: Date?
    public var trainerPID: Int32?
    /// The job of the last attempt (a pid here, `12345_7` under Slurm) and the executor that ran it.
    public var job: String?
    public var executor: String?
    public var queuedAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    public var exitCode: Int32?
    public var signal: Int32?
    public var stderrTail: String?
    public var error: String?
    public var metricsOffset: Int64
    public var malformedLines: Int
    public var nonfiniteValues: Int
    public var totalSteps: Int?
    public var stepsPerEpoch: Int?
    public var warmupSteps: Int?
    public var bestStep: Int?
    public var checkpoint: String?
    public var bestCheckpoint: String?
    public var provenanceID: Int64?
    /// What the run's result depends on; nil for imported runs and runs recorded before identities.
    public var identity: TrialIdentity?
    /// The latest earlier run of the same parameters and command, when this one ran because its code or data changed.
    public var earlierRunID: String?

    /// The resolved parameters, decoded once from the stored JSON.
    public var params: [String: ParamValue]

    public var duration: TimeInterval? {
        guard let startedAt else { return nil }
        return (endedAt ?? Date()).timeIntervalSince(startedAt)
    }

    static let columns = """
        r.rowid, r.id, r.trial_key, r.params_key, s.name AS sweep_name, r.source, r.params, r.command, r.status, r.attempt, r.run_dir,
        r.owner_pid, r.owner_host, r.heartbeat, r.trainer_pid, r.job, r.executor, r.queued_at, r.started_at, r.ended_at, r.exit_code, r.signal,
        r.stderr_tail, r.error, r.metrics_offset, r.malformed_lines, r.nonfinite_values, r.total_steps, r.steps_per_epoch,
        r.warmup_steps, r.best_step, r.checkpoint, r.best_checkpoint, r.provenance_id, r.identity,
        (SELECT e.id FROM runs e WHERE e.rowid = r.earlier_run) AS earlier_run_id
        """
    static let from = "runs r LEFT JOIN sweeps s ON s.id = r.sweep_id"

    init(row: Row) {
        func date(_ c: String) -> Date? { (row[c] as Double?).map { Date(timeIntervalSince1970: $0) } }
        rowID = row["rowid"]
        id = row["id"]
        trialKey = row["trial_key"]
        paramsKey = row["params_key"]
        sweepName = row["sweep_name"]
        source = row["source"]
        paramsJSON = row["params"]
        params = ParamValue.object(fromJSON: paramsJSON)
        let commandJSON: String? = row["command"]
        command = commandJSON.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        status = RunStatus(rawValue: row["status"]) ?? .failed
        attempt = row["attempt"]
        runDir = row["run_dir"]
        ownerPID = row["owner_pid"]
        ownerHost = row["owner_host"]
        heartbeat = date("heartbeat")
        trainerPID = row["trainer_pid"]
        job = row["job"]
        executor = row["executor"]
        queuedAt = date("queued_at")
        startedAt = date("started_at")
        endedAt = date("ended_at")
        exitCode = row["exit_code"]
        signal = row["signal"]
        stderrTail = row["stderr_tail"]
        error = row["error"]
        metricsOffset = row["metrics_offset"]
        malformedLines = row["malformed_lines"]
        nonfiniteValues = row["nonfinite_values"]
        totalSteps = row["total_steps"]
        stepsPerEpoch = row["steps_per_epoch"]
        warmupSteps = row["warmup_steps"]
        bestStep = row["best_step"]
        checkpoint = row["checkpoint"]
        bestCheckpoint = row["best_checkpoint"]
        provenanceID = row["provenance_id"]
        identity = TrialIdentity(json: row["identity"])
        earlierRunID = row["earlier_run_id"]
    }
}

/// Run ids: 8 lowercase base32 characters of the trial key's hash, so the same trial has the same id in
/// every store; a clash (one in about 10¹² pairs) takes more characters.
enum RunID {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")

    static func make(fromHexKey key: String, length: Int = 8) -> String {
        var bits: UInt64 = 0, count = 0
        var out = ""
        for c in key.utf8 {
            let v: UInt8 = c >= 97 ? c - 87 : c - 48  // hex digit value
            bits = (bits << 4) | UInt64(v)
            count += 4
            while count >= 5, out.count < length {
                count -= 5
                out.append(alphabet[Int((bits >> UInt64(count)) & 31)])
            }
            if out.count == length { break }
        }
        return out
    }
}

extension Date {
    var seconds: Double { timeIntervalSince1970 }
}

/// One attempt of a run, as stored.
public struct Attempt: Sendable, Equatable {
    public var attempt: Int
    public var status: String
    public var exitCode: Int32?
    public var signal: Int32?
    public var duration: Double?
    /// What the next attempt changed after this one, and why (`out of memory (GPU): retried at batch_size 8 …`).
    public var note: String?
}

extension Run {
    /// Why the run did not finish (`FailureReading`), from what the store keeps of it; nil for a run that finished,
    /// or is queued or running.
    public var failure: FailureReading.Failure? {
        FailureReading.classify(.init(status: status.rawValue, exitCode: exitCode, signal: signal, duration: duration, stderrTail: stderrTail,
                                      note: error, nonfinite: nonfiniteValues, reported: metricsOffset > 0))
    }
}
