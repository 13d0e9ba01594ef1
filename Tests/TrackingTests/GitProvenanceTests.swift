import Foundation
import Testing
@testable import Tracking

@Suite struct GitProvenanceTests {
    @Test func cleanRepository() throws {
        let dir = try temporaryDirectory()
        try sh("git init -q -b main && echo a > f.txt && git add f.txt && git commit -q -m one", in: dir)
        let p = GitProvenance.capture(at: dir)
        #expect(p.commit == (try sh("git rev-parse HEAD", in: dir)))
        #expect(p.branch == "main")
        #expect(!p.dirty && p.diff == nil && p.untracked.isEmpty && p.note == nil)
        #expect(p.repository.map { URL(fileURLWithPath: $0).standardized.path } == URL(fileURLWithPath: dir).standardized.path)
    }

    @Test func dirtyRepositoryKeepsTheDiffAndUntrackedNames() throws {
        let dir = try temporaryDirectory()
        try sh(
            "git init -q -b main && echo a > f.txt && git add f.txt && git commit -q -m one && echo b >> f.txt && mkdir -p new && echo x > new/u.txt",
            in: dir)
        let p = GitProvenance.capture(at: dir + "/new")  // any folder inside the work tree
        #expect(p.dirty)
        #expect(p.diff?.contains("+b") == true)
        #expect(p.diffSHA256?.count == 64)
        #expect(p.untracked == ["new/u.txt"])
        let store = try temporaryStore()
        let id = try store.record(p)
        #expect(try store.record(p) == id)  // stored once
        #expect(try store.provenance(id: id) == p)
    }

    @Test func detachedAndUnbornAndAbsent() throws {
        let dir = try temporaryDirectory()
        try sh("git init -q -b dev", in: dir)
        let unborn = GitProvenance.capture(at: dir)
        #expect(unborn.commit == nil && unborn.branch == "dev" && unborn.note == "no commits yet")
        try sh("echo a > f && git add f && git commit -q -m one && git checkout -q --detach", in: dir)
        #expect(GitProvenance.capture(at: dir).branch == "(detached)")
        let plain = try temporaryDirectory()
        let none = GitProvenance.capture(at: plain)
        #expect(none.repository == nil && none.commit == nil && none.note == "not in a git repository")
    }

    @Test func uncommittedChangesAreHashedPerFileAndCommitsCompared() throws {
        let dir = try temporaryDirectory()
        try sh("git init -q -b main && echo a > f.txt && echo b > g.txt && git add -A && git commit -q -m one", in: dir)
        let first = try sh("git rev-parse HEAD", in: dir)
        try sh("echo a2 >> f.txt", in: dir)
        let edited = GitProvenance.capture(at: dir)
        #expect(Array(edited.uncommitted.keys) == ["f.txt"])
        try sh("echo a3 >> f.txt", in: dir)
        #expect(GitProvenance.capture(at: dir).uncommitted["f.txt"] != edited.uncommitted["f.txt"])
        let store = try temporaryStore()
        #expect(try store.provenance(id: try store.record(edited))?.uncommitted == edited.uncommitted)

        try sh("git commit -qam two && echo c > h.txt && git add h.txt && git commit -q -m three", in: dir)
        let third = try sh("git rev-parse HEAD", in: dir)
        #expect(GitProvenance.capture(at: dir).uncommitted.isEmpty)
        #expect(GitProvenance.changedFiles(at: dir, from: first, to: third) == ["f.txt", "h.txt"])
        #expect(GitProvenance.changedFiles(at: dir, from: String(repeating: "0", count: 40), to: third) == nil)
    }

    /// A FIFO (or device) named as a dataset is not read: reading one would block forever.
    @Test func onlyRegularFilesAreHashed() throws {
        let dir = try temporaryDirectory()
        #expect(mkfifo(dir + "/pipe", 0o644) == 0)
        #expect(sha256(ofFile: dir + "/pipe") == nil)
        #expect(try temporaryStore().digest(ofFile: dir + "/pipe") == nil)
        #expect(sha256(ofFile: "/dev/zero") == nil)
        try "abc".write(toFile: dir + "/f", atomically: true, encoding: .utf8)
        #expect(sha256(ofFile: dir + "/f")?.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
