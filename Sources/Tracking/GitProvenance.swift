import CGit2
import Crypto
import Foundation
import GRDB

/// Where the code that ran came from: the git state of the repository holding the experiment file.
public struct Provenance: Sendable, Equatable {
    /// The work tree's root, or nil when the path is in no repository.
    public var repository: String?
    public var commit: String?
    public var branch: String?
    public var dirty = false
    /// Patch of tracked changes against HEAD (staged and unstaged).
    public var diff: String?
    public var diffSHA256: String?
    public var untracked: [String] = []
    /// Tracked files with uncommitted changes (relative to the work tree), each with the sha256 of its own
    /// patch: what a trial's identity compares, so a changed file can be named.
    public var uncommitted: [String: String] = [:]
    /// Why something could not be read (not a repository, bare, unborn branch).
    public var note: String?
}

public enum GitProvenance {
    /// Reads HEAD, branch, dirty state, the diff and untracked names through libgit2. Never fails: what
    /// cannot be read is said in `note`.
    public static func capture(at path: String) -> Provenance {
        git_libgit2_init()
        defer { git_libgit2_shutdown() }
        // A checkout owned by another user (CI, shared machines) is still ours to read.
        _ = cgit2_set_owner_validation(0)

        var p = Provenance()
        var repo: OpaquePointer?
        guard git_repository_open_ext(&repo, path, 0, nil) == 0, let repo else {
            p.note = "not in a git repository"
            return p
        }
        defer { git_repository_free(repo) }
        if git_repository_is_bare(repo) == 1 {
            p.note = "bare repository"
            return p
        }
        if let workdir = git_repository_workdir(repo) {
            var root = String(cString: workdir)
            if root.count > 1, root.hasSuffix("/") { root.removeLast() }
            p.repository = root
        }

        var head: OpaquePointer?
        let headStatus = git_repository_head(&head, repo)
        if headStatus == 0, let head {
            p.branch = git_reference_is_branch(head) == 1 ? String(cString: git_reference_shorthand(head)) : "(detached)"
            git_reference_free(head)
            var oid = git_oid()
            if git_reference_name_to_id(&oid, repo, "HEAD") == 0 { p.commit = String(cString: git_oid_tostr_s(&oid)) }
        } else if headStatus == GIT_EUNBORNBRANCH.rawValue {
            var symbolic: OpaquePointer?
            if git_reference_lookup(&symbolic, repo, "HEAD") == 0, let symbolic {
                if let target = git_reference_symbolic_target(symbolic) {
                    p.branch = String(String(cString: target).dropFirst("refs/heads/".count))
                }
                git_reference_free(symbolic)
            }
            p.note = "no commits yet"
        } else {
            p.note = lastError()
        }

        readStatus(repo, into: &p)
        readDiff(repo, into: &p)
        return p
    }

    private static func readStatus(_ repo: OpaquePointer, into p: inout Provenance) {
        var options = git_status_options()
        git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION))
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        options.flags =
            GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_STATUS_OPT_EXCLUDE_SUBMODULES.rawValue
        var list: OpaquePointer?
        guard git_status_list_new(&list, repo, &options) == 0, let list else { return }
        defer { git_status_list_free(list) }
        for i in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, i)?.pointee else { continue }
            if entry.status.rawValue & GIT_STATUS_WT_NEW.rawValue != 0 {
                if let delta = entry.index_to_workdir, let name = delta.pointee.new_file.path { p.untracked.append(String(cString: name)) }
            } else if entry.status.rawValue != 0 {
                p.dirty = true
            }
        }
        p.untracked.sort()
    }

    private static func readDiff(_ repo: OpaquePointer, into p: inout Provenance) {
        var tree: OpaquePointer?
        var object: OpaquePointer?
        if git_revparse_single(&object, repo, "HEAD^{tree}") == 0 { tree = object }
        defer { if let object { git_object_free(object) } }
        var diff: OpaquePointer?
        guard git_diff_tree_to_workdir_with_index(&diff, repo, tree, nil) == 0, let diff else { return }
        defer { git_diff_free(diff) }
        guard git_diff_num_deltas(diff) > 0 else { return }
        for i in 0..<git_diff_num_deltas(diff) {
            var patch: OpaquePointer?
            guard git_patch_from_diff(&patch, diff, i) == 0, let patch else { continue }
            defer { git_patch_free(patch) }
            var text = git_buf()
            defer { git_buf_dispose(&text) }
            guard let delta = git_patch_get_delta(patch)?.pointee, git_patch_to_buf(&text, patch) == 0, let ptr = text.ptr,
                let name = delta.new_file.path ?? delta.old_file.path
            else { continue }
            p.uncommitted[String(cString: name)] = sha256Hex(Data(bytes: ptr, count: text.size))
        }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        guard git_diff_to_buf(&buffer, diff, GIT_DIFF_FORMAT_PATCH) == 0, let ptr = buffer.ptr else { return }
        let text = String(cString: ptr)
        p.diff = text
        p.diffSHA256 = sha256Hex(Data(text.utf8))
    }

    /// Files that differ between two commits of the repository holding `path`, or nil when either commit
    /// cannot be read (for example, history rewritten since).
    public static func changedFiles(at path: String, from old: String, to new: String) -> [String]? {
        git_libgit2_init()
        defer { git_libgit2_shutdown() }
        _ = cgit2_set_owner_validation(0)
        var repo: OpaquePointer?
        guard git_repository_open_ext(&repo, path, 0, nil) == 0, let repo else { return nil }
        defer { git_repository_free(repo) }
        func tree(_ commit: String) -> OpaquePointer? {
            var object: OpaquePointer?
            return git_revparse_single(&object, repo, commit + "^{tree}") == 0 ? object : nil
        }
        guard let a = tree(old) else { return nil }
        defer { git_object_free(a) }
        guard let b = tree(new) else { return nil }
        defer { git_object_free(b) }
        var diff: OpaquePointer?
        guard git_diff_tree_to_tree(&diff, repo, a, b, nil) == 0, let diff else { return nil }
        defer { git_diff_free(diff) }
        return (0..<git_diff_num_deltas(diff)).compactMap { i in
            guard let delta = git_diff_get_delta(diff, i)?.pointee, let name = delta.new_file.path ?? delta.old_file.path else {
                return nil
            }
            return String(cString: name)
        }
    }

    private static func lastError() -> String {
        guard let e = git_error_last() else { return "libgit2 error" }
        return String(cString: e.pointee.message)
    }
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// SHA-256 of a regular file, streamed (model weights can be large). Nil for anything else: a FIFO or a
/// device named as a dataset would block the read forever.
public func sha256(ofFile path: String) -> (hex: String, size: Int)? {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        return nil
    }
    let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    defer { try? handle.close() }
    var hasher = SHA256()
    var size = 0
    while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        hasher.update(data: chunk)
        size += chunk.count
    }
    return (hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
}

extension Store {
    /// Stores a provenance record once and returns its id.
    public func record(_ p: Provenance) throws(StoreError) -> Int64 {
        try write { db in
            let untracked = String(decoding: try JSONEncoder().encode(p.untracked), as: UTF8.self)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let uncommitted = String(decoding: try encoder.encode(p.uncommitted), as: UTF8.self)
            let match = """
                SELECT id FROM provenance WHERE repository IS ? AND commit_id IS ? AND branch IS ? AND diff_sha256 IS ? AND untracked = ?
                """
            let args: StatementArguments = [p.repository, p.commit, p.branch, p.diffSHA256, untracked]
            if let id = try Int64.fetchOne(db, sql: match, arguments: args) { return id }
            try db.execute(
                sql: """
                    INSERT INTO provenance(repository, commit_id, branch, dirty, diff, diff_sha256, untracked, note, uncommitted)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [p.repository, p.commit, p.branch, p.dirty, p.diff, p.diffSHA256, untracked, p.note, uncommitted])
            return db.lastInsertedRowID
        }
    }

    public func provenance(id: Int64) throws(StoreError) -> Provenance? {
        try read { db in try Self.provenance(ids: [id], db: db)[id] }
    }

    /// Provenance records by id.
    static func provenance(ids: [Int64], db: Database) throws -> [Int64: Provenance] {
        var out: [Int64: Provenance] = [:]
        for ids in ids.chunked(batch) {
            for row in try Row.fetchAll(db, SQLRequest(literal: "SELECT * FROM provenance WHERE id IN \(ids)")) {
                let untracked: String = row["untracked"], uncommitted: String = row["uncommitted"]
                out[row["id"]] = Provenance(
                    repository: row["repository"], commit: row["commit_id"], branch: row["branch"], dirty: row["dirty"], diff: row["diff"],
                    diffSHA256: row["diff_sha256"], untracked: (try? JSONDecoder().decode([String].self, from: Data(untracked.utf8))) ?? [],
                    uncommitted: (try? JSONDecoder().decode([String: String].self, from: Data(uncommitted.utf8))) ?? [:], note: row["note"])
            }
        }
        return out
    }
}

extension Store {
    /// SHA-256 of a file, computed once and kept while its size and modification time stay the same, so a
    /// sweep over a 15 GB checkpoint hashes it once, not at every start. Nil when the file cannot be read.
    public func digest(ofFile path: String) -> (hex: String, size: Int)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let size = Int(st.st_size), mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        if let cached = try? read({ db in
            try String.fetchOne(
                db, sql: "SELECT sha256 FROM file_digests WHERE path = ? AND size = ? AND mtime_ns = ?",
                arguments: [path, size, mtime])
        }) {
            return (cached, size)
        }
        guard let digest = sha256(ofFile: path) else { return nil }
        // A file that changed while it was read is not cached: the next call reads it again.
        var after = stat()
        if stat(path, &after) == 0, Int(after.st_size) == size,
            Int64(after.st_mtim.tv_sec) * 1_000_000_000 + Int64(after.st_mtim.tv_nsec) == mtime
        {
            _ = try? write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO file_digests(path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                    arguments: [path, size, mtime, digest.hex])
            }
        }
        return digest
    }
}
