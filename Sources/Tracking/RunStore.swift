import Foundation
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
    /// `minimize` or `maximize`, as W&B files say it.
    public var goal: String
    public var lowerIsBetter: Bool { goal != "maximize" }

    public init(metric: String, goal: String) {
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
    public func register(sweep name: String, file: String, method: String, spec: String, objective: Objective? = nil, trials: [TrialRecord],
                         runsRoot: String, reuse: ReuseRule = .identity, now: Date = Date()) throws(StoreError) -> Registration {
        try write { db in
            try db.execute(sql: """
                INSERT INTO sweeps(name, file, method, spec, metric, goal, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET file = excluded.file, method = excluded.method, spec = excluded.spec,
                    metric = excluded.metric, goal = excluded.goal, updated_at = excluded.updated_at
                """, arguments: [name, file, method, spec, objective?.metric, objective?.goal, now.seconds, now.seconds])
            let sweepID = try Int64.fetchOne(db, sql: "SELECT id FROM sweeps WHERE name = ?", arguments: [name])!
            try db.execute(sql: "DELETE FROM sweep_trials WHERE sweep_id = ?", arguments: [sweepID])
            var reruns: [Rerun] = []
            for (position, trial) in trials.enumerated() {
                if let rerun = try Self.link(trial, sweep: sweepID, position: position, runsRoot: runsRoot, reuse: reuse, now: now, db: db) {
                    reruns.append(rerun)
                }
            }
            let runs = try Row.fetchAll(db, sql: "SELECT \(Run.columns) FROM \(Run.from) JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? ORDER BY t.position",
                                        arguments: [sweepID]).map(Run.init(row:))
            return Registration(runs: runs, reruns: reruns)
        }
    }

    /// Links one trial to the sweep at `position`: to the run that matches it under `reuse`, or to a new run.
    /// Returns the rerun when a new run stands where an earlier one with the same parameters was.
    static func link(_ trial: TrialRecord, sweep sweepID: Int64, position: Int, runsRoot: String, reuse: ReuseRule, now: Date,
                     db: Database) throws -> Rerun? {
        let key = trial.identity.key
        let exact = try Int64.fetchOne(db, sql: "SELECT rowid FROM runs WHERE trial_key = ?", arguments: [key])
        let latest = try Row.fetchOne(db, sql: """
            SELECT rowid, id, status, identity FROM runs WHERE params_key = ? ORDER BY rowid DESC LIMIT 1
            """, arguments: [trial.identity.paramsKey])
        let finished = reuse == .params ? try Int64.fetchOne(db, sql: """
            SELECT rowid FROM runs WHERE params_key = ? AND status IN ('succeeded', 'stopped_early') ORDER BY rowid DESC LIMIT 1
            """, arguments: [trial.identity.paramsKey]) : nil
        var row: Int64
        var rerun: Rerun?
        if let match = finished ?? exact {
            row = match
        } else {
            let id = try freshID(for: key, db: db)
            let command = String(decoding: try JSONEncoder().encode(trial.command), as: UTF8.self)
            try db.cachedStatement(sql: """
                INSERT INTO runs(id, trial_key, params_key, identity, earlier_run, sweep_id, params, command, status, queued_at, run_dir)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)
                """).execute(arguments: [id, key, trial.identity.paramsKey, trial.identity.json, latest?["rowid"] as Int64?,
                                         sweepID, trial.paramsJSON, command, now.seconds, (runsRoot as NSString).appendingPathComponent(id)])
            row = db.lastInsertedRowID
            if let latest {
                rerun = Rerun(run: id, earlier: latest["id"], earlierStatus: RunStatus(rawValue: latest["status"]) ?? .failed,
                              earlierIdentity: TrialIdentity(json: latest["identity"]), identity: trial.identity)
            }
        }
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO sweep_trials(sweep_id, run, position, proposal) VALUES (?, ?, ?, ?)")
            .execute(arguments: [sweepID, row, position, trial.proposal])
        return rerun
    }

    /// Adds one proposed trial at the end of a registered sweep; returns its run and, when a new run stands
    /// where an earlier one with its parameters was, the rerun.
    public func append(sweep name: String, trial: TrialRecord, runsRoot: String, reuse: ReuseRule = .identity,
                       now: Date = Date()) throws(StoreError) -> (run: Run, rerun: Rerun?) {
        try write { db in
            guard let sweepID = try Int64.fetchOne(db, sql: "SELECT id FROM sweeps WHERE name = ?", arguments: [name]) else {
                throw StoreError("no sweep named \(name) in the store")
            }
            let position = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(position) + 1, 0) FROM sweep_trials WHERE sweep_id = ?",
                                            arguments: [sweepID])!
            let rerun = try Self.link(trial, sweep: sweepID, position: position, runsRoot: runsRoot, reuse: reuse, now: now, db: db)
            let run = try Row.fetchOne(db, sql: "SELECT \(Run.columns) FROM \(Run.from) JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? AND t.position = ?",
                                       arguments: [sweepID, position]).map(Run.init(row:))
            guard let run else { throw StoreError("the trial appended to sweep \(name) has no run") }
            return (run, rerun)
        }
    }

    /// Why an adaptive search proposed a run (JSON), from the latest sweep that did.
    public func proposal(run: Int64) throws(StoreError) -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT proposal FROM sweep_trials WHERE run = ? AND proposal IS NOT NULL ORDER BY sweep_id DESC LIMIT 1",
                                arguments: [run])
        }
    }

    /// Why each trial of an adaptive sweep was proposed, by run id (JSON as the search wrote it).
    public func proposals(sweep name: String) throws(StoreError) -> [String: String] {
        try read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT r.id, t.proposal FROM sweep_trials t JOIN sweeps s ON s.id = t.sweep_id JOIN runs r ON r.rowid = t.run
                WHERE s.name = ? AND t.proposal IS NOT NULL
                """, arguments: [name]) {
                out[row["id"]] = row["proposal"]
            }
            return out
        }
    }

    /// The trial's run id, or a longer one if another trial already took it.
    static func freshID(for key: String, db: Database) throws -> String {
        if let existing = try String.fetchOne(db, sql: "SELECT id FROM runs WHERE trial_key = ?", arguments: [key]) { return existing }
        for length in [8, 10, 12, 16, 26] {
            let id = RunID.make(fromHexKey: key, length: length)
            if try !Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM runs WHERE id = ?)", arguments: [id])! { return id }
        }
        return RunID.make(fromHexKey: key + key, length: 52)
    }

    // MARK: Lifecycle

    /// Takes a run for a new attempt if its status is one of `from`, atomically: two harrow processes can
    /// never both claim it. Its curves start afresh. Returns the attempt number, or nil if it was not claimable.
    /// The run then belongs to `sweep`, the sweep that ran it.
    public func claim(run: Int64, from statuses: Set<RunStatus>, owner: Owner, sweep: String? = nil, now: Date = Date()) throws(StoreError) -> Int? {
        try write { db in
            let placeholders = statuses.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            try db.execute(sql: """
                UPDATE runs SET status = 'running', attempt = attempt + 1, owner_pid = ?, owner_host = ?, heartbeat = ?,
                    sweep_id = COALESCE((SELECT id FROM sweeps WHERE name = ?), sweep_id),
                    started_at = ?, ended_at = NULL, exit_code = NULL, signal = NULL, stderr_tail = NULL, error = NULL,
                    trainer_pid = NULL, total_steps = NULL, steps_per_epoch = NULL, warmup_steps = NULL, best_step = NULL,
                    checkpoint = NULL, best_checkpoint = NULL
                WHERE rowid = ? AND status IN (\(placeholders))
                """, arguments: [owner.pid, owner.host, now.seconds, sweep, now.seconds, run])
            guard db.changesCount == 1 else { return nil }
            try clearMetrics(run: run, db: db)
            let attempt = try Int.fetchOne(db, sql: "SELECT attempt FROM runs WHERE rowid = ?", arguments: [run])!
            try db.execute(sql: "INSERT OR REPLACE INTO attempts(run, attempt, status, started_at) VALUES (?, ?, 'running', ?)",
                           arguments: [run, attempt, now.seconds])
            return attempt
        }
    }

    /// The trainer started: its pid (= process group) and provenance.
    /// The job running an attempt: a process group here (`local`), or a cluster job id (`slurm`, `12345_7`).
    public func started(run: Int64, job: String, executor: String, provenance: Int64?) throws(StoreError) {
        try write { db in
            try db.execute(sql: "UPDATE runs SET trainer_pid = ?, job = ?, executor = ?, provenance_id = ? WHERE rowid = ?",
                           arguments: [executor == "local" ? Int32(job) : nil, job, executor, provenance, run])
        }
    }

    /// Records how an attempt ended.
    public func finish(run: Int64, attempt: Int, status: RunStatus, exitCode: Int32?, signal: Int32?, stderrTail: String?,
                       error: String? = nil, now: Date = Date()) throws(StoreError) {
        try write { db in
            try db.execute(sql: """
                UPDATE runs SET status = ?, ended_at = ?, exit_code = ?, signal = ?, stderr_tail = ?, error = ?, trainer_pid = NULL,
                    owner_pid = NULL, heartbeat = NULL
                WHERE rowid = ? AND attempt = ?
                """, arguments: [status.rawValue, now.seconds, exitCode, signal, stderrTail, error, run, attempt])
            try db.execute(sql: """
                UPDATE attempts SET status = ?, ended_at = ?, exit_code = ?, signal = ?, stderr_tail = ? WHERE run = ? AND attempt = ?
                """, arguments: [status.rawValue, now.seconds, exitCode, signal, stderrTail, run, attempt])
        }
    }

    public func heartbeat(runs: [Int64], now: Date = Date()) throws(StoreError) {
        guard !runs.isEmpty else { return }
        try write { db in
            let stmt = try db.cachedStatement(sql: "UPDATE runs SET heartbeat = ? WHERE rowid = ? AND status = 'running'")
            for r in runs { try stmt.execute(arguments: [now.seconds, r]) }
        }
    }

    /// Runs left `running` by a harrow that is gone (pid dead on this host, or heartbeat older than
    /// `staleAfter`) are marked interrupted and returned, so the caller can kill their trainers' groups.
    public func recoverAbandoned(owner: Owner, staleAfter: TimeInterval = 60, isAlive: (Int32) -> Bool,
                                 now: Date = Date()) throws(StoreError) -> [Run] {
        let runs = try abandoned(owner: owner, staleAfter: staleAfter, isAlive: isAlive, now: now)
        try interrupt(runs, now: now)
        return runs
    }

    /// Runs left `running` by a harrow that is gone: its pid dead on this host, or, from another host, its
    /// heartbeat older than `staleAfter`.
    public func abandoned(owner: Owner, staleAfter: TimeInterval = 60, isAlive: (Int32) -> Bool, now: Date = Date()) throws(StoreError) -> [Run] {
        try read { db in
            let running = try Row.fetchAll(db, sql: "SELECT \(Run.columns) FROM \(Run.from) WHERE r.status = 'running'").map(Run.init(row:))
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
                try db.execute(sql: """
                    UPDATE runs SET status = 'interrupted', ended_at = ?, error = 'harrow stopped while it ran', owner_pid = NULL
                    WHERE rowid = ? AND status = 'running'
                    """, arguments: [now.seconds, run.rowID])
                try db.execute(sql: "UPDATE attempts SET status = 'interrupted', ended_at = ? WHERE run = ? AND attempt = ?",
                               arguments: [now.seconds, run.rowID, run.attempt])
            }
        }
    }

    /// Takes over an abandoned run whose job still lives (a cluster job): same attempt, curves kept. False when
    /// another harrow took it first.
    public func adopt(run: Int64, from previous: Owner?, owner: Owner, now: Date = Date()) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: """
                UPDATE runs SET owner_pid = ?, owner_host = ?, heartbeat = ?
                WHERE rowid = ? AND status = 'running' AND owner_pid IS ? AND owner_host IS ?
                """, arguments: [owner.pid, owner.host, now.seconds, run, previous?.pid, previous?.host])
            return db.changesCount == 1
        }
    }

    // MARK: Reading back

    public func runs(sweep: String? = nil, status: RunStatus? = nil) throws(StoreError) -> [Run] {
        try read { db in
            var sql = "SELECT \(Run.columns) FROM \(Run.from)"
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
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Run.init(row:))
        }
    }

    /// A run by tag, id, or a unique prefix of its id or trial key.
    public func run(_ id: String) throws(StoreError) -> Run? {
        try read { db in
            if let tagged = try Row.fetchOne(db, sql: "SELECT \(Run.columns) FROM \(Run.from) JOIN tags t ON t.run = r.rowid WHERE t.name = ?", arguments: [id]) {
                return Run(row: tagged)
            }
            guard !id.isEmpty else { return nil }
            // A prefix, literally: `%` and `_` typed by a user match themselves, not any run.
            let prefix = id.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(Run.columns) FROM \(Run.from) WHERE r.id = ? OR r.id LIKE ? ESCAPE '\\' OR r.trial_key LIKE ? ESCAPE '\\' LIMIT 3
                """, arguments: [id, prefix, prefix])
            if let exact = rows.first(where: { ($0["id"] as String) == id }) { return Run(row: exact) }
            guard rows.count <= 1 else { throw StoreError("'\(id)' matches several runs; give more characters") }
            return rows.first.map(Run.init(row:))
        }
    }

    public func sweeps() throws(StoreError) -> [SweepSummary] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id, name, file, method, metric, goal, created_at, updated_at FROM sweeps ORDER BY updated_at DESC").map { row in
                let id: Int64 = row["id"]
                var counts: [RunStatus: Int] = [:]
                for c in try Row.fetchAll(db, sql: """
                    SELECT r.status, COUNT(*) AS n FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? GROUP BY r.status
                    """, arguments: [id]) {
                    if let s = RunStatus(rawValue: c["status"]) { counts[s] = c["n"] }
                }
                let times = try Row.fetchOne(db, sql: """
                    SELECT MIN(r.started_at) AS first, AVG(CASE WHEN r.status IN ('succeeded', 'stopped_early') THEN r.ended_at - r.started_at END) AS mean
                    FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ?
                    """, arguments: [id])
                let metric: String? = row["metric"], goal: String? = row["goal"]
                return SweepSummary(name: row["name"], file: row["file"], method: row["method"],
                                    objective: metric.map { Objective(metric: $0, goal: goal ?? "minimize") },
                                    createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
                                    counts: counts, startedAt: (times?["first"] as Double?).map { Date(timeIntervalSince1970: $0) },
                                    meanDuration: times?["mean"],
                                    reused: try Int.fetchOne(db, sql: """
                                        SELECT COUNT(*) FROM runs r JOIN sweep_trials t ON t.run = r.rowid WHERE t.sweep_id = ? AND r.sweep_id IS NOT ?
                                        """, arguments: [id, id]) ?? 0,
                                    slurmArrays: try String.fetchAll(db, sql: """
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
    public func best(metric: String, limit: Int, maximize: Bool = false, sweep: String? = nil,
                     status: RunStatus? = nil) throws(StoreError) -> [(run: Run, summary: MetricSummary)] {
        try read { db in
            var sql = """
                SELECT \(Run.columns), m.count AS m_count, m.last AS m_last, m.last_step AS m_last_step, m.min AS m_min,
                    m.min_step AS m_min_step, m.max AS m_max
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
                (Run(row: row), MetricSummary(count: row["m_count"], last: row["m_last"], lastStep: row["m_last_step"],
                                              min: row["m_min"], minStep: row["m_min_step"], max: row["m_max"]))
            }
        }
    }

    /// Attempts of a run, oldest first.
    public func attempts(run: Int64) throws(StoreError) -> [Attempt] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT attempt, status, exit_code, signal, ended_at - started_at AS d, note FROM attempts WHERE run = ? ORDER BY attempt",
                             arguments: [run]).map {
                Attempt(attempt: $0["attempt"], status: $0["status"], exitCode: $0["exit_code"], signal: $0["signal"], duration: $0["d"], note: $0["note"])
            }
        }
    }

    /// Says what the next attempt changes after this one (an out-of-memory retry at a smaller micro-batch).
    public func note(run: Int64, attempt: Int, _ text: String) throws(StoreError) {
        try write { db in
            try db.execute(sql: "UPDATE attempts SET note = ? WHERE run = ? AND attempt = ?", arguments: [text, run, attempt])
        }
    }

    // MARK: Artifacts

    public func recordArtifact(run: Int64, role: String, path: String, sha256: String?, size: Int?) throws(StoreError) {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO artifacts(run, role, path, sha256, size) VALUES (?, ?, ?, ?, ?)",
                           arguments: [run, role, path, sha256, size])
        }
    }

    public func artifacts(run: Int64) throws(StoreError) -> [(role: String, path: String, sha256: String?, size: Int?)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT role, path, sha256, size FROM artifacts WHERE run = ? ORDER BY role, path", arguments: [run])
                .map { ($0["role"], $0["path"], $0["sha256"], $0["size"]) }
        }
    }
}
