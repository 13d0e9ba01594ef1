import Foundation
import Testing

/// The checker itself, on hand-made pages with one known fault each.
@Suite final class BrowserCheckTests {
    var roots: [URL] = []
    deinit { for root in roots { try? FileManager.default.removeItem(at: root) } }

    static let goodSVG = #"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20"/></svg>"#
    static let sortScript = """
        <script>
        for (const th of document.querySelectorAll('table.sortable th')) th.addEventListener('click', () => {
          const body = th.closest('table').tBodies[0];
          [...body.rows].sort((a, b) => a.cells[th.cellIndex].textContent.localeCompare(b.cells[th.cellIndex].textContent))
            .forEach(row => body.append(row));
        });
        </script>
        """
    static func page(_ body: String) -> String { "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>\(body)</body></html>" }

    /// Writes `files` (relative path → contents) into a fresh temp folder and returns the URLs of the .html ones, in order.
    func site(_ files: KeyValuePairs<String, String>) throws -> [URL] {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-bc-\(UUID().uuidString)")
        roots.append(root)
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return files.map(\.key).filter { $0.hasSuffix(".html") }.map { root.appendingPathComponent($0) }
    }

    @Test func aMissingImageIsReported() async throws {
        let pages = try site([
            "plots/ok.svg": Self.goodSVG,
            "index.html": Self.page(#"<img src="plots/ok.svg"><img src="plots/gone.svg">"#)
        ])
        let reports = try await BrowserCheck.check(pages: pages)
        #expect(reports.map(\.brokenImages) == [["plots/gone.svg"]])
        #expect(reports[0].scriptErrors.isEmpty)
    }

    @Test func anSVGThatDoesNotParseIsReported() async throws {
        let pages = try site([
            "plots/bad.svg": #"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40"></svg>"#,
            "runs/r1.html": Self.page(#"<img src="../plots/bad.svg">"#)
        ])
        let reports = try await BrowserCheck.check(pages: pages)
        #expect(reports.map(\.brokenImages) == [["../plots/bad.svg"]])
    }

    @Test func scriptErrorsAreReportedForTheirOwnPage() async throws {
        let pages = try site([
            "throws.html": Self.page("<p>before</p><script>console.log('hi'); null.x</script>"),
            "clean.html": Self.page("<script>console.log('fine')</script>"),
            "syntax.html": Self.page("<script>function (</script><script>throw new Error('boom')</script>"),
            "onclick.html": Self.page("<table><tr><th onclick=\"undefinedSort()\">a</th></tr><tr><td>1</td></tr></table>")
        ])
        let reports = try await BrowserCheck.check(pages: pages, click: "th")
        #expect(reports[0].scriptErrors == ["Uncaught TypeError: Cannot read properties of null (reading 'x')"])
        #expect(reports[0].console == ["hi"])
        #expect(reports[1].scriptErrors.isEmpty && reports[1].console == ["fine"])
        #expect(reports[2].scriptErrors.count == 2)
        #expect(reports[2].scriptErrors.first?.hasPrefix("Uncaught SyntaxError") == true)
        #expect(reports[2].scriptErrors.last == "Uncaught Error: boom")
        #expect(reports[3].scriptErrors == ["Uncaught ReferenceError: undefinedSort is not defined"])
    }

    @Test func aCleanPageReportsNothingAndItsTableSorts() async throws {
        let table = """
            <table class="sortable"><thead><tr><th>run</th><th>loss</th></tr></thead><tbody>
            <tr><td>b &amp; c</td><td>2</td></tr><tr><td>c</td><td>1</td></tr><tr><td>a</td><td>3</td></tr></tbody></table>
            """
        let pages = try site([
            "plots/loss.svg": Self.goodSVG,
            "index.html": Self.page(#"<style>td{padding:2px}</style><img src="plots/loss.svg" alt="loss">"# + table + Self.sortScript)
        ])
        let reports = try await BrowserCheck.check(pages: pages, click: "table.sortable th")
        #expect(reports.count == 1)
        #expect(reports[0].problems.isEmpty, "\(reports[0])")
        #expect(reports[0].sort == SortProbe(header: "run", before: ["b & c", "c", "a"], after: ["a", "b & c", "c"]))
    }

    @Test func aPageThatHangsIsKilledAtTheTimeout() async throws {
        let pages = try site(["hang.html": Self.page("<script>for (;;) {}</script>")])
        let started = Date()
        let error = await #expect(throws: BrowserCheckError.self) { try await BrowserCheck.check(pages: pages, timeout: 3) }
        guard case .timedOut = error else { Issue.record("expected a timeout, got \(String(describing: error))"); return }
        // Without the timeout it would never end; the bound leaves room for a busy machine to start and kill Chromium.
        #expect(Date().timeIntervalSince(started) < 60)
    }
}
