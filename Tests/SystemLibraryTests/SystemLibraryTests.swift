import CBLAS
import CGit2
import Foundation
import Testing

/// One real call into each system library, so a missing or broken install fails here first.
@Suite struct SystemLibraryTests {
    @Test func openBLASMultipliesMatrices() {
        // [1 2 3; 4 5 6] × [7 8; 9 10; 11 12] = [58 64; 139 154]
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        #expect(c == [58, 64, 139, 154])
        #expect(String(cString: openblas_get_config()).contains("OpenBLAS"))
    }

    @Test func libgit2ReadsHeadOfARealRepository() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-git-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func git(_ args: String...) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", dir.path, "-c", "user.name=t", "-c", "user.email=t@t"] + args
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try git("init", "-q", "-b", "main")
        try "x".write(to: dir.appendingPathComponent("f.txt"), atomically: true, encoding: .utf8)
        _ = try git("add", "f.txt")
        _ = try git("commit", "-q", "-m", "first")
        let expected = try git("rev-parse", "HEAD")

        git_libgit2_init()
        defer { git_libgit2_shutdown() }
        #expect(cgit2_set_owner_validation(0) == 0)
        var repo: OpaquePointer?
        #expect(git_repository_open_ext(&repo, dir.path, 0, nil) == 0)
        defer { git_repository_free(repo) }
        var oid = git_oid()
        #expect(git_reference_name_to_id(&oid, repo, "HEAD") == 0)
        #expect(String(cString: git_oid_tostr_s(&oid)) == expected)
        var head: OpaquePointer?
        #expect(git_repository_head(&head, repo) == 0)
        defer { git_reference_free(head) }
        #expect(String(cString: git_reference_shorthand(head)) == "main")
    }
}
