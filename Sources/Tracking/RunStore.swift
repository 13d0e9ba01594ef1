import Foundation
import HarrowCore
import GRDB

/// One planned trial as the store needs it.
public struct TrialRecord: Sendable {
    public var identity: TrialIdentity
    public var paramsJSON: String
    public var command: [String]
    /// Why an adaptive search proposed the trial (JSON); nil for grid and random trials.
    public var proposal: String?

    public init(identity: TrialIdentity, paramsJSON: String, command: [String], proposal: String? = nil) {
        self.identity = identity
        self.paramsJSON = paramsJSON
        self.command = command
        self.proposal = proposal
    }
}

/// What a finished run must share with a trial to stand for it.
public enum ReuseRule: String, Sendable, CaseIterable {
    /// Parameters, command, code, trainer and data: the whole identity (the default).
    case identity
    /// Parameters and command only: a result survives code and data changes.
    case params
}

/// A trial that runs again although the store holds a run with its parameters: the new run, the earlier
/// one, and both identities, so the caller can say what changed.
public struct Rerun: Sendable {
    public var run: String
    public var earlier: String
    public var earlierStatus: RunStatus
    public var earlierIdentity: TrialIdentity?
    public var identity: TrialIdentity
}

public struct Registration: Sendable {
    /// The sweep's runs in plan order.
    public var runs: [Run]
    /// Trials whose earlier run does not match their identity.
    public var reruns: [Rerun]
}

/// The harrow process that holds a run: a run whose owner is gone is picked up by the next harrow.
public struct Owner: Sendable {
    public var pid: Int32
    public var host: String

    public init(pid: Int32 = getpid(), host: String = ProcessInfo.processInfo.hostName) {
        self.pid = pid
        self.host = host
    }
}

/// A sweep's objective: the metric it optimises and whether higher is better.
public struct Objective: Sendable, Equatable {
    public var metric: String
    /// Stored as `minimize` or `maximize`, as W&B files say it.
    public var goal: Goal
    public var lowerIsBetter: Bool { goal.lowerIsBetter }

    public init(metric: String, goal: Goal) {
        self.metric = metric
        self.goal = goal
    }
}

public struct SweepSummary: Sendable {
    public var name: String
    public var file: String
    public var method: String
    /// The objective stored with the sweep; nil for a sweep without `metric:` (or stored before it was kept).
    public var objective: Objective?
    public var createdAt: Date
    public var updatedAt: Date
    public var counts: [RunStatus: Int]
    public var startedAt: Date?
    /// Mean seconds of the sweep's finished runs.
    public var meanDuration: Double?
    /// Runs of this sweep that another sweep ran (same identity).
    public var reused = 0
    /// The Slurm job arrays its runs' last attempts ran in.
    public var slurmArrays: [String] = []

    public var total: Int { counts.values.reduce(0, +) }
}

extension Store {
    // MARK: Sweeps and trials

    /// Records the sweep (name unique; the latest file text wins) and its trials. A trial stands on the run
    /// that matches it under `reuse`; otherwise it gets a new run, linked to the latest run with its
    /// parameters as its earlier result.
    public func register(
        sweep name: String, file: String, method: String, spec: String, objective: Objective? = nil, trials: [TrialRecord],
        runsRoot: String, reuse: ReuseRule = .identity, now: Date = Date()
    ) throws(StoreError) -> Registration {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO sweeps(name, file, method, spec, metric, goal, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET file = excluded.file, method = excluded.method, spec = excluded.spec,
                        metric = excluded.metric, goal = excluded.goal, updated_at = excluded.updated_at
                    """, arguments: [name, file, method, spec, objective?.metric, objective?.goal.rawValue, now.seconds, now.seconds])
            let sweepID = try Int64.fetchOne(db, sql: "SELECT id FROM sweeps WHERE name = ?", arguments: [name])!
            try db.execute(sql: "DELETE FROM sweep_trials WHERE sweep_id = ?", arguments: [sweepID])
            var reruns: [Rerun] = []
            for (position, trial) in trials.enumerated() {
                if let rerun = try Self.link(trial, sweep: sweepID, position: position, runsRoot: runsRoot, reuse: reuse, now: now, db: db)
                {
                    reruns.append(rerun)
                }
            }
            let runs = try Run.fetchAll(
                db,
                sql: """
                    SELECT \(Run.selection) FROM \(Run.from) JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? ORDER BY t.position
                    """, arguments: [sweepID])
            return Registration(runs: runs, reruns: reruns)
        }
    }

    /// Links one trial to the sweep at `position`: to the run that matches it under `reuse`, or to a new run.
    /// Returns the rerun when a new run stands where an earlier one with the same parameters was.
    static func link(
        _ trial: TrialRecord, sweep sweepID: Int64, position: Int, runsRoot: String, reuse: ReuseRule, now: Date,
        db: Database
    ) throws -> Rerun? {
        let key = trial.identity.key, paramsKey = trial.identity.paramsKey
        let exact = try Run.filter { $0.trialKey == key }.select({ $0.rowID }, as: Int64.self).fetchOne(db)
        let sameParams = Run.filter { $0.paramsKey == paramsKey }.order { $0.rowID.desc }
        let latest = try sameParams.select { [$0.rowID, $0.id, $0.status, $0.identity] }.asRequest(of: Row.self).fetchOne(db)
        let finished =
            reuse == .params
            ? try sameParams.filter { RunStatus.finished.contains($0.status) }.select({ $0.rowID }, as: Int64.self).fetchOne(db) : nil
        var row: Int64
        var rerun: Rerun?
        if let match = finished ?? exact {
            row = match
        } else {
            let id = try freshID(for: key, db: db)
            try NewRun(
                id: id, trialKey: key, trial: trial, sweepID: sweepID, earlierRun: latest?[Run.Columns.rowID], queuedAt: now,
                runDir: (runsRoot as NSString).appendingPathComponent(id)
            ).insert(db)
            row = db.lastInsertedRowID
            if let latest {
                rerun = Rerun(
                    run: id, earlier: latest[Run.Columns.id],
                    earlierStatus: RunStatus(rawValue: latest[Run.Columns.status]) ?? .failed,
                    earlierIdentity: TrialIdentity(json: latest[Run.Columns.identity]), identity: trial.identity)
            }
        }
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO sweep_trials(sweep_id, run, position, proposal) VALUES (?, ?, ?, ?)")
            .execute(arguments: [sweepID, row, position, trial.proposal])
        return rerun
    }

    /// Adds one proposed trial at the end of a registered sweep; returns its run and, when a new run stands
    /// where an earlier one with its parameters was, the rerun.
    public func append(
        sweep name: String, trial: TrialRecord, runsRoot: String, reuse: ReuseRule = .identity,
        now: Date = Date()
    ) throws(StoreError) -> (run: Run, rerun: Rerun?) {
        try write { db in
            guard let sweepID = try Int64.fetchOne(db, sql: "SELECT id FROM sweeps WHERE name = ?", arguments: [name]) else {
                throw StoreError("no sweep named \(name) in the store")
            }
            let position = try Int.fetchOne(
                db, sql: "SELECT COALESCE(MAX(position) + 1, 0) FROM sweep_trials WHERE sweep_id = ?",
                arguments: [sweepID])!
            let rerun = try Self.link(trial, sweep: sweepID, position: position, runsRoot: runsRoot, reuse: reuse, now: now, db: db)
            let run = try Run.fetchOne(
                db,
                sql: """
                    SELECT \(Run.selection) FROM \(Run.from) JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? AND t.position = ?
                    """, arguments: [sweepID, position])
            guard let run else { throw StoreError("the trial appended to sweep \(name) has no run") }
            return (run, rerun)
        }
    }

    /// Why an adaptive search proposed a run (JSON), from the latest sweep that did.
    public func proposal(run: Int64) throws(StoreError) -> String? {
        try read { db in
            try String.fetchOne(
                db, sql: "SELECT proposal FROM sweep_trials WHERE run = ? AND proposal IS NOT NULL ORDER BY sweep_id DESC LIMIT 1",
                arguments: [run])
        }
    }

    /// Why each trial of an adaptive sweep was proposed, by run id (JSON as the search wrote it).
    public func proposals(sweep name: String) throws(StoreError) -> [String: String] {
        try read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT r.id, t.proposal FROM sweep_trials t JOIN sweeps s ON s.id = t.sweep_id JOIN runs r ON r.rowid = t.run
                    WHERE s.name = ? AND t.proposal IS NOT NULL
                    """, arguments: [name])
            {
                out[row["id"]] = row["proposal"]
            }
            return out
        }
    }

    /// The trial's run id, or a longer one if another trial already took it.
    static func freshID(for key: String, db: Database) throws -> String {
        if let existing = try Run.filter({ $0.trialKey == key }).select({ $0.id }, as: String.self).fetchOne(db) { return existing }
        for length in [8, 10, 12, 16, 26] {
            let id = RunID.make(fromHexKey: key, length: length)
            if try Run.filter({ $0.id == id }).isEmpty(db) { return id }
        }
        return RunID.make(fromHexKey: key + key, length: 52)
    }

    // MARK: Lifecycle

    /// Takes a run for a new attempt if its status is one of `from`, atomically: two harrow processes can
    /// never both claim it. Its curves start afresh. Returns the attempt number, or nil if it was not claimable.
    /// The run then belongs to `sweep`, the sweep that ran it.
    public func claim(run: Int64, from statuses: Set<RunStatus>, owner: Owner, sweep: String? = nil, now: Date = Date()) throws(StoreError)
        -> Int?
    {
        try write { db in
            typealias Columns = Run.Columns
            let claimed = try Run.filter { $0.rowID == run && statuses.contains($0.status) }.updateAll(
                db,
                [
                    Columns.status.set(to: RunStatus.running), Columns.attempt += 1, Columns.ownerPID.set(to: owner.pid),
                    Columns.ownerHost.set(to: owner.host), Columns.heartbeat.set(to: now.seconds),
                    Columns.sweepID.set(to: SQL("COALESCE((SELECT id FROM sweeps WHERE name = \(sweep)), \(Columns.sweepID))")),
                    Columns.startedAt.set(to: now.seconds)
                ] + Run.attemptColumns.map { $0.set(to: nil) })
            guard claimed == 1 else { return nil }
            try clearMetrics(run: run, db: db)
            let attempt = try Run.filter { $0.rowID == run }.select({ $0.attempt }, as: Int.self).fetchOne(db)!
            try Attempt(run: run, attempt: attempt, status: RunStatus.running.rawValue, startedAt: now).insert(db, onConflict: .replace)
            return attempt
        }
    }

    /// The trainer started: its pid (= process group) and provenance.
    /// The job running an attempt: a process group here (`local`), or a cluster job id (`slurm`, `12345_7`).
    public func started(run: Int64, job: String, executor: String, provenance: Int64?) throws(StoreError) {
        try write { db in
            _ = try Run.filter { $0.rowID == run }.updateAll(db) {
                [
                    $0.trainerPID.set(to: executor == "local" ? Int32(job) : nil), $0.job.set(to: job), $0.executor.set(to: executor),
                    $0.provenanceID.set(to: provenance)
                ]
            }
        }
    }

    /// Records how an attempt ended.
    public func finish(
        run: Int64, attempt: Int, status: RunStatus, exitCode: Int32?, signal: Int32?, stderrTail: String?,
        error: String? = nil, now: Date = Date()
    ) throws(StoreError) {
        try write { db in
            try Run.filter { $0.rowID == run && $0.attempt == attempt }.updateAll(db) {
                [
                    $0.status.set(to: status), $0.endedAt.set(to: now.seconds), $0.exitCode.set(to: exitCode), $0.signal.set(to: signal),
                    $0.stderrTail.set(to: stderrTail), $0.error.set(to: error), $0.trainerPID.set(to: nil), $0.ownerPID.set(to: nil),
                    $0.heartbeat.set(to: nil)
                ]
            }
            try Attempt.filter { $0.run == run && $0.attempt == attempt }.updateAll(db) {
                [
                    $0.status.set(to: status), $0.endedAt.set(to: now.seconds), $0.exitCode.set(to: exitCode), $0.signal.set(to: signal),
                    $0.stderrTail.set(to: stderrTail)
                ]
            }
        }
    }

    public func heartbeat(runs: [Int64], now: Date = Date()) throws(StoreError) {
        guard !runs.isEmpty else { return }
        try write { db in
            for runs in runs.chunked(Self.batch) {
                try Run.filter { runs.contains($0.rowID) && $0.status == RunStatus.running }.updateAll(db) {
                    $0.heartbeat.set(to: now.seconds)
                }
            }
        }
    }

    /// Runs left `running` by a harrow that is gone (pid dead on this host, or heartbeat older than
    /// `staleAfter`) are marked interrupted and returned, so the caller can kill their trainers' groups.
    public func recoverAbandoned(
        owner: Owner, staleAfter: TimeInterval = 60, isAlive: (Int32) -> Bool,
        now: Date = Date()
    ) throws(StoreError) -> [Run] {
        let runs = try abandoned(owner: owner, staleAfter: staleAfter, isAlive: isAlive, now: now)
        try interrupt(runs, now: now)
        return runs
    }

    /// Runs left `running` by a harrow that is gone: its pid dead on this host, or, from another host, its
    /// heartbeat older than `staleAfter`.
    public func abandoned(owner: Owner, staleAfter: TimeInterval = 60, isAlive: (Int32) -> Bool, now: Date = Date()) throws(StoreError)
        -> [Run]
    {
        try read { db in
            let running = try Run.fetchAll(
                db, sql: "SELECT \(Run.selection) FROM \(Run.from) WHERE r.status = ?",
                arguments: [RunStatus.running])
            return running.filter { run in
                if run.ownerPID == owner.pid && run.ownerHost == owner.host { return false }
                let sameHost = run.ownerHost == owner.host
                let ownerGone = sameHost && !(run.ownerPID.map(isAlive) ?? false)
                let stale = (run.heartbeat.map { now.timeIntervalSince($0) > staleAfter } ?? true)
                return ownerGone || (!sameHost && stale)
            }
        }
    }

    /// Marks abandoned runs interrupted: they run again.
    public func interrupt(_ runs: [Run], now: Date = Date()) throws(StoreError) {
        guard !runs.isEmpty else { return }
        try write { db in
            for run in runs {
                try Run.filter { $0.rowID == run.rowID && $0.status == RunStatus.running }.updateAll(db) {
                    [
                        $0.status.set(to: RunStatus.interrupted), $0.endedAt.set(to: now.seconds),
                        $0.error.set(to: "harrow stopped while it ran"), $0.ownerPID.set(to: nil)
                    ]
                }
                try Attempt.filter { $0.run == run.rowID && $0.attempt == run.attempt }.updateAll(db) {
                    [$0.status.set(to: RunStatus.interrupted), $0.endedAt.set(to: now.seconds)]
                }
            }
        }
    }

    /// Takes over an abandoned run whose job still lives (a cluster job): same attempt, curves kept. False when
    /// another harrow took it first.
    public func adopt(run: Int64, from previous: Owner?, owner: Owner, now: Date = Date()) throws(StoreError) -> Bool {
        try write { db in
            typealias Columns = Run.Columns
            let held = Columns.ownerPID === previous?.pid && Columns.ownerHost === previous?.host
            let adopted = try Run.filter(Columns.rowID == run && Columns.status == RunStatus.running && held).updateAll(db) {
                [$0.ownerPID.set(to: owner.pid), $0.ownerHost.set(to: owner.host), $0.heartbeat.set(to: now.seconds)]
            }
            return adopted == 1
        }
    }

    // MARK: Reading back

    public func runs(sweep: String? = nil, status: RunStatus? = nil) throws(StoreError) -> [Run] {
        try read { db in
            var sql = "SELECT \(Run.selection) FROM \(Run.from)"
            var args: [(any DatabaseValueConvertible)?] = []
            var conditions: [String] = []
            if let sweep {
                sql += " JOIN sweep_trials t ON t.run = r.rowid JOIN sweeps s2 ON s2.id = t.sweep_id"
                conditions.append("s2.name = ?")
                args.append(sweep)
            }
            if let status {
                conditions.append("r.status = ?")
                args.append(status.rawValue)
            }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += sweep == nil ? " ORDER BY r.rowid" : " ORDER BY t.position"
            return try Run.fetchAll(db, sql: sql, arguments: StatementArguments(args))
        }
    }

    /// A run by tag, id, or a unique prefix of its id or trial key.
    public func run(_ id: String) throws(StoreError) -> Run? {
        try read { db in
            if let tagged = try Run.fetchOne(
                db,
                sql: """
                    SELECT \(Run.selection) FROM \(Run.from) JOIN tags t ON t.run = r.rowid WHERE t.name = ?
                    """, arguments: [id])
            {
                return tagged
            }
            guard !id.isEmpty else { return nil }
            // A prefix, literally: `%` and `_` typed by a user match themselves, not any run.
            let prefix =
                id.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            let runs = try Run.fetchAll(
                db,
                sql: """
                    SELECT \(Run.selection) FROM \(Run.from) WHERE r.id = ? OR r.id LIKE ? ESCAPE '\\' OR r.trial_key LIKE ? ESCAPE '\\' LIMIT 3
                    """, arguments: [id, prefix, prefix])
            if let exact = runs.first(where: { $0.id == id }) { return exact }
            guard runs.count <= 1 else { throw StoreError("'\(id)' matches several runs; give more characters") }
            return runs.first
        }
    }

    public func sweeps() throws(StoreError) -> [SweepSummary] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, name, file, method, metric, goal, created_at, updated_at FROM sweeps ORDER BY updated_at DESC"
            ).map { row in
                let id: Int64 = row["id"]
                var counts: [RunStatus: Int] = [:]
                for c in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT r.status, COUNT(*) AS n FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? GROUP BY r.status
                        """, arguments: [id])
                {
                    if let s = RunStatus(rawValue: c["status"]) { counts[s] = c["n"] }
                }
                let times = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT MIN(r.started_at) AS first, AVG(CASE WHEN r.status IN ('succeeded', 'stopped_early') THEN r.ended_at - r.started_at END) AS mean
                        FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ?
                        """, arguments: [id])
                let metric: String? = row["metric"], goal: String? = row["goal"]
                return SweepSummary(
                    name: row["name"], file: row["file"], method: row["method"],
                    objective: metric.map { Objective(metric: $0, goal: goal.flatMap(Goal.init(rawValue:)) ?? .minimize) },
                    createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
                    counts: counts, startedAt: (times?["first"] as Double?).map { Date(timeIntervalSince1970: $0) },
                    meanDuration: times?["mean"],
                    reused: try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? AND r.sweep_id IS NOT ?
                            """, arguments: [id, id]) ?? 0,
                    slurmArrays: try String.fetchAll(
                        db,
                        sql: """
                            SELECT DISTINCT substr(r.job, 1, instr(r.job, '_') - 1) AS array FROM runs r
                            JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? AND r.executor = 'slurm' AND instr(r.job, '_') > 0
                            ORDER BY CAST(array AS INTEGER)
                            """, arguments: [id]))
            }
        }
    }

    /// The experiment text a sweep was last registered with.
    public func sweepSpec(_ name: String) throws(StoreError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT spec FROM sweeps WHERE name = ?", arguments: [name]) }
    }

    /// The best `limit` runs by a metric's minimum (or maximum), through the summary index.
    public func best(
        metric: String, limit: Int, maximize: Bool = false, sweep: String? = nil,
        status: RunStatus? = nil
    ) throws(StoreError) -> [(run: Run, summary: MetricSummary)] {
        try read { db in
            // A summary's columns are named unlike a run's: one row decodes both.
            var sql = """
                SELECT \(Run.selection), \(MetricSummary.selection(from: "m"))
                FROM metric_summaries m JOIN metric_keys k ON k.id = m.key JOIN runs r ON r.rowid = m.run LEFT JOIN sweeps s ON s.id = r.sweep_id
                """
            var args: [(any DatabaseValueConvertible)?] = [metric]
            if let sweep {
                sql += " JOIN sweep_trials t ON t.run = r.rowid JOIN sweeps s2 ON s2.id = t.sweep_id AND s2.name = ?"
                args.insert(sweep, at: 0)
            }
            sql += " WHERE k.name = ?"
            if let status {
                sql += " AND r.status = ?"
                args.append(status.rawValue)
            }
            sql += " ORDER BY \(maximize ? "m.max DESC" : "m.min") LIMIT ?"
            args.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
                (try Run(row: row), try MetricSummary(row: row))
            }
        }
    }

    /// Attempts of a run, oldest first.
    public func attempts(run: Int64) throws(StoreError) -> [Attempt] {
        try read { db in try Self.attempts(runs: [run], db: db) }
    }

    /// Attempts of several runs, ordered by run row, each run's oldest first.
    static func attempts(runs: [Int64], db: Database) throws -> [Attempt] {
        try runs.chunked(batch).flatMap { runs in
            try Attempt.filter { runs.contains($0.run) }.order { [$0.run, $0.attempt] }.fetchAll(db)
        }
    }

    /// Says what the next attempt changes after this one (an out-of-memory retry at a smaller micro-batch).
    public func note(run: Int64, attempt: Int, _ text: String) throws(StoreError) {
        try write { db in
            _ = try Attempt.filter { $0.run == run && $0.attempt == attempt }.updateAll(db) { $0.note.set(to: text) }
        }
    }

    // MARK: Artifacts

    /// Records a file with a run; the same role and path again replaces it.
    public func recordArtifact(run: Int64, role: String, path: String, sha256: String?, size: Int?) throws(StoreError) {
        try write { db in
            try Artifact(run: run, role: role, path: path, sha256: sha256, size: size).insert(db, onConflict: .replace)
        }
    }

    /// The files recorded with a run, by role and path.
    public func artifacts(run: Int64) throws(StoreError) -> [Artifact] {
        try read { db in try Self.artifacts(runs: [run], db: db) }
    }

    /// The files recorded with several runs, ordered by run row, then role and path.
    static func artifacts(runs: [Int64], db: Database) throws -> [Artifact] {
        try runs.chunked(batch).flatMap { runs in
            try Artifact.filter { runs.contains($0.run) }.order { [$0.run, $0.role, $0.path] }.fetchAll(db)
        }
    }
}
