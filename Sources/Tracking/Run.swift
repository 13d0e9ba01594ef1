import HarrowCore
import Foundation
import GRDB

/// docs/DESIGN.md's statuses. `succeeded` and `stopped_early` count as finished: a re-run skips them.
public enum RunStatus: String, Sendable, CaseIterable, Codable {
    case queued, running, succeeded, stopped_early, failed, timed_out, interrupted

    public var isFinished: Bool { self == .succeeded || self == .stopped_early }
    public var isTerminal: Bool { self != .queued && self != .running }

    /// The finished statuses, for queries (`finished.contains(Run.Columns.status)`).
    static let finished = allCases.filter(\.isFinished)
}

/// Stored as its name.
extension RunStatus: DatabaseValueConvertible {}

/// A run as stored: one trial's record (`runs`), its latest attempt, and where its files are. It is read through
/// `Run.selection`, which adds its sweep's name and its earlier run's id (the query interface's `SELECT *` has
/// neither), and written column by column (`claim`, `finish`, `ingest`), never whole.
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
}

extension Run: Decodable, FetchableRecord, TableRecord {
    public static let databaseTableName = "runs"

    /// The columns of `runs`, each named once: they decode a run and name its columns in queries. The last two are
    /// not stored: `selection` reads them through `sweepID` and `earlierRun` (its sweep's name, its earlier run's id).
    public enum Columns: String, CodingKey, ColumnExpression, CaseIterable, Sendable {
        case rowID = "rowid", id, trialKey = "trial_key", paramsKey = "params_key", sweepID = "sweep_id", source
        case paramsJSON = "params", command, status, attempt, runDir = "run_dir"
        case ownerPID = "owner_pid", ownerHost = "owner_host", heartbeat, trainerPID = "trainer_pid", job, executor
        case queuedAt = "queued_at", startedAt = "started_at", endedAt = "ended_at", exitCode = "exit_code", signal
        case stderrTail = "stderr_tail", error, metricsOffset = "metrics_offset", malformedLines = "malformed_lines"
        case nonfiniteValues = "nonfinite_values", totalSteps = "total_steps", stepsPerEpoch = "steps_per_epoch"
        case warmupSteps = "warmup_steps", bestStep = "best_step", checkpoint, bestCheckpoint = "best_checkpoint"
        case provenanceID = "provenance_id", identity, earlierRun = "earlier_run"
        case sweepName = "sweep_name", earlierRunID = "earlier_run_id"
    }

    /// What one attempt leaves in its run: a new attempt starts with none of it (`Store.claim`).
    static let attemptColumns: [Columns] = [
        .endedAt, .exitCode, .signal, .stderrTail, .error, .trainerPID, .totalSteps,
        .stepsPerEpoch, .warmupSteps, .bestStep, .checkpoint, .bestCheckpoint
    ]

    /// The select list a run is read with (from `Run.from`): the columns of `runs r`, its sweep's name and its earlier
    /// run's id.
    static let selection: String = Columns.allCases.map { column -> String in
        switch column {
        case .sweepName: "s.name AS \(column.name)"
        case .earlierRunID: "(SELECT e.id FROM runs e WHERE e.rowid = r.earlier_run) AS \(column.name)"
        default: "r.\(column.name)"
        }
    }.joined(separator: ", ")
    static let from = "runs r LEFT JOIN sweeps s ON s.id = r.sweep_id"

    /// Times are stored as seconds since 1970.
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// Decodes the stored JSON (parameters, command, identity) once; a status this harrow does not know reads as failed.
    public init(from decoder: any Decoder) throws {
        let row = try decoder.container(keyedBy: Columns.self)
        rowID = try row.decode(Int64.self, forKey: .rowID)
        id = try row.decode(String.self, forKey: .id)
        trialKey = try row.decode(String.self, forKey: .trialKey)
        paramsKey = try row.decodeIfPresent(String.self, forKey: .paramsKey)
        sweepName = try row.decodeIfPresent(String.self, forKey: .sweepName)
        source = try row.decode(String.self, forKey: .source)
        paramsJSON = try row.decode(String.self, forKey: .paramsJSON)
        params = ParamValue.object(fromJSON: paramsJSON)
        command =
            try row.decodeIfPresent(String.self, forKey: .command)
            .flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        status = RunStatus(rawValue: try row.decode(String.self, forKey: .status)) ?? .failed
        attempt = try row.decode(Int.self, forKey: .attempt)
        runDir = try row.decodeIfPresent(String.self, forKey: .runDir)
        ownerPID = try row.decodeIfPresent(Int32.self, forKey: .ownerPID)
        ownerHost = try row.decodeIfPresent(String.self, forKey: .ownerHost)
        heartbeat = try row.decodeIfPresent(Date.self, forKey: .heartbeat)
        trainerPID = try row.decodeIfPresent(Int32.self, forKey: .trainerPID)
        job = try row.decodeIfPresent(String.self, forKey: .job)
        executor = try row.decodeIfPresent(String.self, forKey: .executor)
        queuedAt = try row.decodeIfPresent(Date.self, forKey: .queuedAt)
        startedAt = try row.decodeIfPresent(Date.self, forKey: .startedAt)
        endedAt = try row.decodeIfPresent(Date.self, forKey: .endedAt)
        exitCode = try row.decodeIfPresent(Int32.self, forKey: .exitCode)
        signal = try row.decodeIfPresent(Int32.self, forKey: .signal)
        stderrTail = try row.decodeIfPresent(String.self, forKey: .stderrTail)
        error = try row.decodeIfPresent(String.self, forKey: .error)
        metricsOffset = try row.decode(Int64.self, forKey: .metricsOffset)
        malformedLines = try row.decode(Int.self, forKey: .malformedLines)
        nonfiniteValues = try row.decode(Int.self, forKey: .nonfiniteValues)
        totalSteps = try row.decodeIfPresent(Int.self, forKey: .totalSteps)
        stepsPerEpoch = try row.decodeIfPresent(Int.self, forKey: .stepsPerEpoch)
        warmupSteps = try row.decodeIfPresent(Int.self, forKey: .warmupSteps)
        bestStep = try row.decodeIfPresent(Int.self, forKey: .bestStep)
        checkpoint = try row.decodeIfPresent(String.self, forKey: .checkpoint)
        bestCheckpoint = try row.decodeIfPresent(String.self, forKey: .bestCheckpoint)
        provenanceID = try row.decodeIfPresent(Int64.self, forKey: .provenanceID)
        identity = TrialIdentity(json: try row.decodeIfPresent(String.self, forKey: .identity))
        earlierRunID = try row.decodeIfPresent(String.self, forKey: .earlierRunID)
    }
}

/// A trial's new run as `Store.register` inserts it: the columns it starts with; the others take their defaults.
struct NewRun: PersistableRecord {
    static let databaseTableName = Run.databaseTableName
    typealias Columns = Run.Columns

    var id: String
    /// The key of the trial's whole identity (`TrialIdentity.key`).
    var trialKey: String
    var trial: TrialRecord
    var sweepID: Int64
    /// The latest earlier run of the same parameters and command.
    var earlierRun: Int64?
    var queuedAt: Date
    var runDir: String

    func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.trialKey] = trialKey
        container[Columns.paramsKey] = trial.identity.paramsKey
        container[Columns.identity] = trial.identity.json
        container[Columns.earlierRun] = earlierRun
        container[Columns.sweepID] = sweepID
        container[Columns.paramsJSON] = trial.paramsJSON
        container[Columns.command] = String(decoding: try JSONEncoder().encode(trial.command), as: UTF8.self)
        container[Columns.status] = RunStatus.queued.rawValue
        container[Columns.queuedAt] = queuedAt.seconds
        container[Columns.runDir] = runDir
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

/// One attempt of a run, as stored (`attempts`): written when a claim starts it, updated when it ends.
public struct Attempt: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "attempts"

    /// The run's row.
    public var run: Int64
    public var attempt: Int
    public var status: String
    public var startedAt: Date?
    public var endedAt: Date?
    public var exitCode: Int32?
    public var signal: Int32?
    public var stderrTail: String?
    /// What the next attempt changed after this one, and why (`out of memory (GPU): retried at batch_size 8 …`).
    public var note: String?

    /// Seconds from its start to its end; nil until it ended.
    public var duration: Double? {
        guard let startedAt, let endedAt else { return nil }
        return endedAt.seconds - startedAt.seconds
    }

    /// The columns of `attempts`, each named once.
    public enum Columns: String, CodingKey, ColumnExpression, Sendable {
        case run, attempt, status, startedAt = "started_at", endedAt = "ended_at", exitCode = "exit_code", signal
        case stderrTail = "stderr_tail", note
    }
    typealias CodingKeys = Columns

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
}

/// A file recorded with a run (`artifacts`): an input it read, a checkpoint it wrote.
public struct Artifact: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "artifacts"

    /// The run's row.
    public var run: Int64
    /// `input:dataset`, `checkpoint`, …
    public var role: String
    public var path: String
    public var sha256: String?
    public var size: Int?

    /// The columns of `artifacts`, each named once.
    public enum Columns: String, CodingKey, ColumnExpression, Sendable {
        case run, role, path, sha256, size
    }
    typealias CodingKeys = Columns
}

extension Run {
    /// Why the run did not finish (`FailureReading`), from what the store keeps of it; nil for a run that finished,
    /// or is queued or running.
    public var failure: FailureReading.Failure? {
        FailureReading.classify(
            .init(
                status: status.rawValue, exitCode: exitCode, signal: signal, duration: duration, stderrTail: stderrTail,
                note: error, nonfinite: nonfiniteValues, reported: metricsOffset > 0))
    }
}
