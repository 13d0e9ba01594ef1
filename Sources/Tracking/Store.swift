import Foundation
import GRDB

/// The SQLite store (WAL). Harrow is its only writer: trainers write files, the runner batches them in.
/// Several harrow processes may share one store; writers wait on a busy timeout instead of failing.
public final class Store: Sendable {
    public let path: String
    let pool: DatabasePool

    /// The default store, `.harrow/harrow.db`, unless `HARROW_DB` says otherwise.
    public static var defaultPath: String {
        ProcessInfo.processInfo.environment["HARROW_DB"] ?? ".harrow/harrow.db"
    }

    /// How long a writer waits for another harrow's write to end before it fails (`SQLITE_BUSY`).
    static let busyTimeout: TimeInterval = 30

    /// Whether the store was opened for reading only: nothing can be written through it.
    public let readOnly: Bool

    /// Opens a store for reading, never writing: it must exist (a mistyped `--db` is an error, not a new empty
    /// store), and a store whose file cannot be written (a CI artifact, a shared file system) still opens. A store
    /// an older harrow wrote is brought up to date first when its file can be written.
    public static func reading(_ path: String) throws(StoreError) -> Store {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no store at \(path)" + (path == defaultPath ? " (run `harrow sweep` first, or give --db)" : ""))
        }
        let store = try Store(path: path, readOnly: true)
        if try store.needsMigration {
            guard FileManager.default.isWritableFile(atPath: path) else {
                throw StoreError(
                    "the store at \(path) was written by an older harrow and cannot be upgraded here (the file is read-only); "
                        + "open it once with a writable copy")
            }
            _ = try Store(path: path)
        }
        return store
    }

    public convenience init(path: String) throws(StoreError) {
        try self.init(path: path, readOnly: false)
    }

    private init(path: String, readOnly: Bool) throws(StoreError) {
        self.path = path
        self.readOnly = readOnly
        if readOnly {
            var config = Configuration()
            config.readonly = true
            config.busyMode = .timeout(Self.busyTimeout)
            do {
                pool = try DatabasePool(path: path, configuration: config)
            } catch {
                // A WAL store whose folder cannot be written has no shared-memory file to read through: then it is
                // read as an immutable file, which a store nobody can write is.
                do {
                    config.readonly = true
                    pool = try DatabasePool(path: "file:\(path)?immutable=1", configuration: config)
                } catch {
                    throw StoreError("cannot open the store at \(path)", error)
                }
            }
            return
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var config = Configuration()
        config.busyMode = .timeout(Self.busyTimeout)
        config.prepareDatabase { db in
            // WAL with synchronous=NORMAL never corrupts; a power cut may lose the last batch, which the
            // stored byte offset then reads again from the metrics file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        // Harrow processes opening one new (or older) store at once would race to switch it to WAL ("database
        // is locked") and to apply the same migration (duplicate column): a lock file beside the store lets
        // one open and migrate it while the others wait.
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError("cannot open the store at \(path)", error)
        }
        try migrate()
    }

    /// Migrations the store has not had yet.
    var needsMigration: Bool {
        get throws(StoreError) {
            try read { db in try !Schema.migrator.hasCompletedMigrations(db) }
        }
    }

    private func migrate() throws(StoreError) {
        let migrator = Schema.migrator
        do {
            let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
            if superseded {
                // The migrations this binary does not know, by name (identifiers sort as text: "v10" < "v9").
                let unknown = try pool.read { try migrator.appliedIdentifiers($0) }.subtracting(migrator.migrations).sorted()
                throw StoreError(
                    "the store at \(path) was written by a newer Harrow (schema \(unknown.joined(separator: ", "))); "
                        + "this binary knows up to \(migrator.migrations.last ?? "?"). Upgrade harrow, or point --db at another store.")
            }
            try migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot prepare the store at \(path)", error)
        }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        if readOnly { throw StoreError("the store at \(path) is open for reading; this command does not write it") }
        do { return try pool.write(body) } catch let e as StoreError { throw e } catch {
            var failure = StoreError(error)
            // A full disk or a failing device: nothing more can be recorded until it is fixed.
            failure.cannotWrite = failure.resultCode.map { [.SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY].contains($0) } ?? false
            throw failure
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.read(body) } catch let e as StoreError { throw e } catch { throw StoreError(error) }
    }

    /// Bytes on disk for the main file and its WAL.
    public var sizeOnDisk: Int {
        [path, path + "-wal"].reduce(0) { total, p in
            total + ((try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0)
        }
    }

    /// Runs per query when many are read at once (`snapshots`): their rows go in one `IN (…)` list, well within
    /// SQLite's smallest limit on a statement's arguments (999).
    static let batch = 500

    /// Folds the WAL back into the main file (for measuring size, or before copying the store).
    public func checkpoint() throws(StoreError) {
        do {
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw StoreError("cannot checkpoint \(path)", error)
        }
    }
}

extension Array {
    /// The array in consecutive slices of `size` (the last may be shorter).
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

/// Why the store could not be read or written. When SQLite refused, its result codes, its own words and the
/// statement are kept (`resultCode`, `sqliteMessage`, `sql`), and the message says what to do about it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The store could not be written at all (disk full, I/O error, read-only): a sweep stops rather than
    /// run trials it cannot record.
    public var cannotWrite = false
    /// SQLite's extended result code (`SQLITE_BUSY_SNAPSHOT`, `SQLITE_IOERR_WRITE`, …); nil for Harrow's own errors.
    public var extendedResultCode: ResultCode?
    /// SQLite's message (`database or disk is full`).
    public var sqliteMessage: String?
    /// The statement SQLite refused.
    public var sql: String?

    public init(_ message: String) { self.message = message }

    /// An error from GRDB, said with what to do about it.
    init(_ error: any Error) {
        self.init(nil, error)
    }

    /// An error from GRDB after what failed (`cannot open the store at …`), said with what to do about it.
    init(_ context: String?, _ error: any Error) {
        guard let e = error as? DatabaseError else {
            message = context.map { "\($0): \(error)" } ?? "\(error)"
            return
        }
        extendedResultCode = e.extendedResultCode
        sqliteMessage = e.message
        sql = e.sql
        // SQLite's words, then what to do; without advice they stand as GRDB gives them, with the statement: the case
        // nobody foresaw.
        let said =
            Self.advice(e.resultCode).map { advice in
                "SQLite error \(e.resultCode.rawValue)" + (e.message.map { ": " + $0 } ?? "") + "; " + advice
            } ?? "\(e)"
        message = context.map { "\($0): \(said)" } ?? said
    }

    /// SQLite's primary result code (`SQLITE_BUSY`, `SQLITE_FULL`, …); nil for Harrow's own errors.
    public var resultCode: ResultCode? { extendedResultCode?.primaryResultCode }

    /// The error GRDB threw, rebuilt from what was kept (its arguments are not: they may hold users' data).
    public var databaseError: DatabaseError? {
        extendedResultCode.map { DatabaseError(resultCode: $0, message: sqliteMessage, sql: sql) }
    }

    public var description: String { message }

    /// What to do when SQLite refuses with `code`; nil when there is nothing to add to its own words.
    static func advice(_ code: ResultCode) -> String? {
        switch code {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            "another harrow is writing this store and kept it locked for over \(Int(Store.busyTimeout)) s: "
                + "let it finish, or give --db another store"
        case .SQLITE_READONLY: "the store's file or its folder is read-only: make them writable, or work on a copy (--db)"
        case .SQLITE_FULL: "free space on the store's disk, then run the same command again"
        case .SQLITE_IOERR: "the disk failed to read or write: check the device, then run `harrow check`"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: "the store is damaged: `harrow check` says where"
        case .SQLITE_CANTOPEN: "check that the store's folder exists and can be read and written"
        default: nil
        }
    }
}

enum Schema {

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sweeps (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        file TEXT NOT NULL,
                        method TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE provenance (
                        id INTEGER PRIMARY KEY,
                        repository TEXT,
                        commit_id TEXT,
                        branch TEXT,
                        dirty INTEGER NOT NULL DEFAULT 0,
                        diff TEXT,
                        diff_sha256 TEXT,
                        untracked TEXT NOT NULL DEFAULT '[]',
                        note TEXT,
                        UNIQUE (repository, commit_id, branch, diff_sha256, untracked)
                    );
                    -- One row per trial content (trial_key): a sweep re-run finds its finished trials here.
                    CREATE TABLE runs (
                        rowid INTEGER PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        trial_key TEXT NOT NULL UNIQUE,
                        sweep_id INTEGER REFERENCES sweeps(id),
                        source TEXT NOT NULL DEFAULT 'sweep',
                        params TEXT NOT NULL,
                        command TEXT,
                        status TEXT NOT NULL,
                        attempt INTEGER NOT NULL DEFAULT 0,
                        run_dir TEXT,
                        owner_pid INTEGER,
                        owner_host TEXT,
                        heartbeat REAL,
                        trainer_pid INTEGER,
                        queued_at REAL,
                        started_at REAL,
                        ended_at REAL,
                        exit_code INTEGER,
                        signal INTEGER,
                        stderr_tail TEXT,
                        error TEXT,
                        provenance_id INTEGER REFERENCES provenance(id),
                        metrics_offset INTEGER NOT NULL DEFAULT 0,
                        malformed_lines INTEGER NOT NULL DEFAULT 0,
                        nonfinite_values INTEGER NOT NULL DEFAULT 0,
                        total_steps INTEGER,
                        steps_per_epoch INTEGER,
                        warmup_steps INTEGER,
                        best_step INTEGER,
                        checkpoint TEXT,
                        best_checkpoint TEXT
                    );
                    CREATE INDEX runs_by_status ON runs(status);
                    CREATE TABLE sweep_trials (
                        sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        PRIMARY KEY (sweep_id, run)
                    ) WITHOUT ROWID;
                    CREATE TABLE attempts (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        attempt INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        started_at REAL,
                        ended_at REAL,
                        exit_code INTEGER,
                        signal INTEGER,
                        stderr_tail TEXT,
                        PRIMARY KEY (run, attempt)
                    ) WITHOUT ROWID;
                    CREATE TABLE metric_keys (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE
                    );
                    -- Points are packed into chunks of up to 320 (step Int32, value Float64) pairs, about 12 bytes a
                    -- point, so a curve is a handful of rows and a batch is a handful of writes.
                    CREATE TABLE metric_chunks (
                        id INTEGER PRIMARY KEY,
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        key INTEGER NOT NULL REFERENCES metric_keys(id),
                        seq INTEGER NOT NULL,
                        n INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        UNIQUE (run, key, seq)
                    );
                    CREATE TABLE metric_summaries (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        key INTEGER NOT NULL REFERENCES metric_keys(id),
                        count INTEGER NOT NULL,
                        last REAL NOT NULL,
                        last_step INTEGER NOT NULL,
                        min REAL NOT NULL,
                        min_step INTEGER NOT NULL,
                        max REAL NOT NULL,
                        PRIMARY KEY (run, key)
                    ) WITHOUT ROWID;
                    CREATE INDEX metric_summaries_by_min ON metric_summaries(key, min);
                    CREATE TABLE artifacts (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        role TEXT NOT NULL,
                        path TEXT NOT NULL,
                        sha256 TEXT,
                        size INTEGER,
                        PRIMARY KEY (run, role, path)
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    CREATE TABLE diagnoses (
                        run INTEGER PRIMARY KEY REFERENCES runs(rowid) ON DELETE CASCADE,
                        verdict TEXT NOT NULL,
                        confidence REAL NOT NULL,
                        best_step INTEGER,
                        evidence TEXT NOT NULL,
                        advice TEXT NOT NULL,
                        created_at REAL NOT NULL
                    );
                    """)
        }
        m.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    -- One row per run and evalset: the weighted total, and how the evaluation went.
                    CREATE TABLE eval_runs (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        evalset TEXT NOT NULL,
                        status TEXT NOT NULL,
                        total REAL,
                        total_stderr REAL,
                        total_norm REAL,
                        baseline REAL,
                        seconds REAL,
                        error TEXT,
                        scored_at REAL NOT NULL,
                        PRIMARY KEY (run, evalset)
                    ) WITHOUT ROWID;
                    -- Per dimension (task_type '') and per dimension and task_type.
                    CREATE TABLE evals (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        evalset TEXT NOT NULL,
                        dimension TEXT NOT NULL,
                        task_type TEXT NOT NULL,
                        n INTEGER NOT NULL,
                        acc REAL NOT NULL,
                        acc_stderr REAL NOT NULL,
                        acc_norm REAL NOT NULL,
                        acc_norm_stderr REAL NOT NULL,
                        PRIMARY KEY (run, evalset, dimension, task_type)
                    ) WITHOUT ROWID;
                    -- Per item, for the cases that flip between runs.
                    CREATE TABLE eval_items (
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        evalset TEXT NOT NULL,
                        item TEXT NOT NULL,
                        dimension TEXT NOT NULL,
                        task_type TEXT NOT NULL,
                        correct INTEGER NOT NULL,
                        correct_norm INTEGER NOT NULL,
                        chosen INTEGER,
                        logprobs TEXT,
                        text TEXT,
                        prompt TEXT,
                        PRIMARY KEY (run, evalset, item)
                    ) WITHOUT ROWID;
                    -- Scores of starting checkpoints by content hash, evaluated once.
                    CREATE TABLE checkpoint_scores (
                        checkpoint TEXT NOT NULL,
                        evalset TEXT NOT NULL,
                        total REAL NOT NULL,
                        scored_at REAL NOT NULL,
                        PRIMARY KEY (checkpoint, evalset)
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    -- Names for runs (production, release-candidate): baselines for gates and comparisons.
                    CREATE TABLE tags (
                        name TEXT PRIMARY KEY,
                        run INTEGER NOT NULL REFERENCES runs(rowid) ON DELETE CASCADE,
                        created_at REAL NOT NULL
                    );
                    """)
        }
        m.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    -- trial_key is now the key of the whole identity (parameters, command, code, data); params_key is
                    -- the parameters-and-command key it used to be, which links a run to its trial's earlier results.
                    ALTER TABLE runs ADD COLUMN params_key TEXT;
                    UPDATE runs SET params_key = trial_key WHERE source = 'sweep';
                    CREATE INDEX runs_by_params_key ON runs(params_key);
                    ALTER TABLE runs ADD COLUMN identity TEXT;
                    ALTER TABLE runs ADD COLUMN earlier_run INTEGER REFERENCES runs(rowid) ON DELETE SET NULL;
                    ALTER TABLE provenance ADD COLUMN uncommitted TEXT NOT NULL DEFAULT '{}';
                    -- sha256 of files by path, valid while size and modification time are unchanged.
                    CREATE TABLE file_digests (
                        path TEXT PRIMARY KEY,
                        size INTEGER NOT NULL,
                        mtime_ns INTEGER NOT NULL,
                        sha256 TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v6") { db in
            try db.execute(
                sql: """
                    -- The sweep's objective, so readers need not parse its experiment file again.
                    ALTER TABLE sweeps ADD COLUMN metric TEXT;
                    ALTER TABLE sweeps ADD COLUMN goal TEXT;
                    """)
        }
        m.registerMigration("v7") { db in
            try db.execute(
                sql: """
                    -- The job of the last attempt and what ran it: a process group (local) or a cluster job id (slurm).
                    ALTER TABLE runs ADD COLUMN job TEXT;
                    ALTER TABLE runs ADD COLUMN executor TEXT;
                    """)
        }
        m.registerMigration("v8") { db in
            try db.execute(
                sql: """
                    -- Why a bayes or tpe search proposed the trial (JSON), so a resumed sweep continues the same search.
                    ALTER TABLE sweep_trials ADD COLUMN proposal TEXT;
                    """)
        }
        m.registerMigration("v9") { db in
            try db.execute(
                sql: """
                    -- Which starting checkpoint a run's baseline score came from, and that checkpoint's outcome per item,
                    -- so a run can be compared with the model it started from item by item (a paired test).
                    ALTER TABLE eval_runs ADD COLUMN baseline_checkpoint TEXT;
                    -- The evalset's weight per dimension (JSON), so its weighted total can be compared item by item.
                    ALTER TABLE eval_runs ADD COLUMN weights TEXT;
                    -- Paired tests of the run against its starting checkpoint (JSON by value name): gains beyond noise.
                    ALTER TABLE eval_runs ADD COLUMN vs_start TEXT;
                    CREATE TABLE checkpoint_items (
                        checkpoint TEXT NOT NULL,
                        evalset TEXT NOT NULL,
                        item TEXT NOT NULL,
                        dimension TEXT NOT NULL,
                        task_type TEXT NOT NULL,
                        correct INTEGER NOT NULL,
                        PRIMARY KEY (checkpoint, evalset, item)
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v10") { db in
            try db.execute(
                sql: """
                    -- `harrow data check`'s findings on one file (JSON), by a key of its content, the settings and what it
                    -- was checked against: a file unchanged since the last sweep is not read again.
                    CREATE TABLE data_checks (
                        key TEXT PRIMARY KEY,
                        report TEXT NOT NULL,
                        created_at REAL NOT NULL
                    ) WITHOUT ROWID;
                    -- The data check of a sweep's last start (JSON): every dataset its trials name.
                    CREATE TABLE sweep_data (
                        sweep TEXT PRIMARY KEY,
                        report TEXT NOT NULL,
                        checked_at REAL NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v11") { db in
            try db.execute(
                sql: """
                    -- What the next attempt changed after this one, and why (an out-of-memory retry at a smaller micro-batch).
                    ALTER TABLE attempts ADD COLUMN note TEXT;
                    """)
        }
        m.registerMigration("v12") { db in
            try db.execute(
                sql: """
                    -- Judged evalsets (docs/DESIGN.md): a rubric dimension's mean score beside its pass share (acc), each
                    -- reply's scores (JSON) and the judge's rationale, which judge scored the run and the rubric (JSON).
                    ALTER TABLE evals ADD COLUMN mean REAL;
                    ALTER TABLE evals ADD COLUMN mean_stderr REAL;
                    ALTER TABLE eval_items ADD COLUMN scores TEXT;
                    ALTER TABLE eval_items ADD COLUMN rationale TEXT;
                    ALTER TABLE eval_runs ADD COLUMN judge TEXT;
                    ALTER TABLE eval_runs ADD COLUMN rubric TEXT;
                    -- A judge's judgement by the judge's name and the sha256 of the request it read: a rerun asks nothing twice.
                    CREATE TABLE judge_cache (
                        judge TEXT NOT NULL,
                        request TEXT NOT NULL,
                        scores TEXT NOT NULL,
                        rationale TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (judge, request)
                    ) WITHOUT ROWID;
                    -- People's scores of replies (`harrow labels import`): one row per reply, annotator and dimension.
                    CREATE TABLE labels (
                        run TEXT NOT NULL,
                        evalset TEXT NOT NULL,
                        item TEXT NOT NULL,
                        annotator TEXT NOT NULL,
                        dimension TEXT NOT NULL,
                        score REAL NOT NULL,
                        comment TEXT,
                        imported_at REAL NOT NULL,
                        PRIMARY KEY (run, evalset, item, annotator, dimension)
                    ) WITHOUT ROWID;
                    """)
        }
        return m
    }
}
