import Foundation

/// What headless Chromium saw on one page.
struct BrowserReport: Sendable, CustomStringConvertible {
    var page: URL
    /// `src` of every `<img>` that did not load or decode: a missing file and an SVG that does not parse both do this.
    var brokenImages: [String] = []
    /// Uncaught exceptions and unhandled rejections, as Chromium words them ("Uncaught TypeError: ...").
    var scriptErrors: [String] = []
    /// The page's other console messages (log, warn and error look alike on stderr), to help explain a failure.
    var console: [String] = []
    /// The clicked header's column before and after the click; nil if no click was asked for or nothing matched.
    var sort: SortProbe?
    /// What the `probe` script returned.
    var probe: [String: Double] = [:]

    var problems: [String] { brokenImages.map { "broken image \($0)" } + scriptErrors }
    var description: String { "\(page.path): " + (problems.isEmpty ? "ok" : problems.joined(separator: "; ")) }
}

struct SortProbe: Sendable, Codable, Equatable {
    var header: String
    var before: [String]
    var after: [String]
}

enum BrowserCheckError: Error, CustomStringConvertible {
    case chromiumMissing
    case notAFile(URL)
    case timedOut(seconds: Double, stderr: String)
    case noResult(status: Int32, stderr: String)
    case checkerFailed(String)

    var description: String {
        switch self {
        case .chromiumMissing: "chromium is not installed: run the deps step (apt-get install chromium) or set HARROW_CHROMIUM"
        case .notAFile(let url): "no such page file: \(url.path)"
        case .timedOut(let s, let err): "chromium did not finish within \(s) s and was killed\n\(err)"
        case .noResult(let status, let err): "chromium exited (status \(status)) before the checker page finished\n\(err)"
        case .checkerFailed(let message): "the checker page itself failed: \(message)"
        }
    }
}

/// Loads static report pages in headless Chromium and reports broken images and script errors.
///
/// One Chromium run per call. A wrapper page (in a fresh temp dir with its own profile, so concurrent calls share
/// nothing) loads the pages one at a time in an iframe, inspects `contentDocument.images`, optionally clicks a
/// header, and writes JSON into its DOM, which `--dump-dom` prints. Script errors come from Chromium's console log
/// on stderr instead: errors thrown while a page parses happen before the wrapper could hook the frame's
/// `window.onerror`. The wrapper logs a marker before each page, so each console line belongs to the page after
/// the last marker.
enum BrowserCheck {
    /// The chromium binary: `$HARROW_CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
    static let chromium: String? = {
        let env = ProcessInfo.processInfo.environment
        if let path = env["HARROW_CHROMIUM"], !path.isEmpty { return path }
        for name in ["chromium", "chromium-browser"] {
            for dir in (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        }
        return nil
    }()

    /// - Parameters:
    ///   - click: CSS selector of a header to click on each page (e.g. `"table th"`); the cell texts of its column
    ///     before and after the click land in `BrowserReport.sort`, so a test can see the sort script work.
    ///   - timeout: wall-clock limit, after which Chromium and all its child processes are killed.
    ///   - probe: the body of an async JavaScript function of `doc` (the page's document) and `sleep`, run after the
    ///     images settle; the numbers it returns land in `BrowserReport.probe`, so a test can act on a page and measure it.
    static func check(pages: [URL], click: String? = nil, probe: String? = nil, timeout: Double = 60) async throws -> [BrowserReport] {
        guard let chromium else { throw BrowserCheckError.chromiumMissing }
        let pages = pages.map(\.standardizedFileURL)
        for page in pages where !page.isFileURL || !FileManager.default.fileExists(atPath: page.path) {
            throw BrowserCheckError.notAFile(page)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harrow-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let wrapper = dir.appendingPathComponent("check.html")
        try wrapperPage(pages: pages.map(\.absoluteString), click: click ?? "", probe: probe ?? "").write(
            to: wrapper, atomically: true, encoding: .utf8)
        // Files, not pipes: nothing to drain, so a chatty Chromium can never block on a full pipe.
        let outPath = dir.appendingPathComponent("stdout").path, errPath = dir.appendingPathComponent("stderr").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? out.close(); try? err.close() }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu",  // no sandbox: tests run as root in a container
            "--user-data-dir=" + dir.appendingPathComponent("profile").path,
            "--allow-file-access-from-files",  // else contentDocument of a file:// iframe is null
            "--host-resolver-rules=MAP * ~NOTFOUND",  // no network, even if a page links out
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--log-level=0",  // console messages are INFO lines on stderr
            // Virtual time skips idle waits, so a big budget costs no wall time; it must outlast the wrapper's waits
            // (up to 11 s virtual per page), or Chromium dumps the DOM before the results are in.
            "--virtual-time-budget=\(10_000 + 11_000 * pages.count)",
            "--window-size=1400,900", "--dump-dom", wrapper.absoluteString
        ]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err

        // Foundation starts the child in its own process group (pgid == pid), and /usr/bin/chromium execs the
        // browser, so killing the group takes the zygote, renderers and GPU process with it.
        let killer = DispatchWorkItem { if p.isRunning { kill(-p.processIdentifier, SIGKILL) } }
        let started = Date()
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            p.terminationHandler = { _ in c.resume() }
            do { try p.run() } catch { c.resume(throwing: error); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        }
        killer.cancel()

        let stdout = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        if p.terminationReason == .uncaughtSignal && Date().timeIntervalSince(started) >= timeout {
            throw BrowserCheckError.timedOut(seconds: timeout, stderr: significant(stderr))
        }
        guard let start = stdout.range(of: "<pre id=\"harrow-result\">"),
            let end = stdout.range(of: "</pre>", range: start.upperBound..<stdout.endIndex)
        else {
            throw BrowserCheckError.noResult(status: p.terminationStatus, stderr: significant(stderr))
        }
        let results = try JSONDecoder().decode([FrameResult].self, from: Data(stdout[start.upperBound..<end.lowerBound].utf8))
        guard results.count == pages.count else {
            throw BrowserCheckError.checkerFailed("\(results.count) results for \(pages.count) pages")
        }
        if let failed = results.first(where: { $0.error != nil }) { throw BrowserCheckError.checkerFailed(failed.error!) }

        var reports = zip(pages, results).map { page, r in
            BrowserReport(page: page, brokenImages: r.broken, sort: r.sort, probe: r.probe ?? [:])
        }
        var current: Int?, markers = 0
        for (message, source) in consoleMessages(stderr) {
            if message.hasPrefix(marker) { current = Int(message.dropFirst(marker.count)); markers += 1; continue }
            if source == wrapper.absoluteString { throw BrowserCheckError.checkerFailed(message) }
            guard let i = current, reports.indices.contains(i) else { continue }
            if message.hasPrefix("Uncaught") { reports[i].scriptErrors.append(message) } else { reports[i].console.append(message) }
        }
        // Without the markers, script errors would go unseen and every page would look clean.
        guard markers == pages.count else {
            throw BrowserCheckError.checkerFailed("found \(markers) of \(pages.count) page markers in Chromium's console log")
        }
        return reports
    }

    private struct FrameResult: Decodable {
        var broken: [String]
        var sort: SortProbe?
        var probe: [String: Double]?
        var error: String?
    }

    private static let marker = "harrow-browser-check page "

    /// Console records from Chromium's stderr log, as (message, source URL). A record starts with a header like
    /// `[123:123:1124/165903.608096:INFO:CONSOLE:1] "text", source: file:///x.html (1)` and may span lines.
    static func consoleMessages(_ stderr: String) -> [(message: String, source: String)] {
        let header = #/^\[\d+:\d+:\d+/\d+\.\d+:[A-Z]+:([^\]]*)\] /#
        var records: [(component: Substring, text: String)] = []
        for line in stderr.split(separator: "\n", omittingEmptySubsequences: false) {
            if let m = line.prefixMatch(of: header) {
                records.append((m.1, String(line[m.range.upperBound...])))
            } else if !records.isEmpty {
                records[records.count - 1].text += "\n" + line
            }
        }
        return records.compactMap { record in
            guard record.component.hasPrefix("CONSOLE"), record.text.hasPrefix("\""),
                let tail = record.text.range(of: "\", source: ", options: .backwards)
            else { return nil }
            let source = record.text[tail.upperBound...].replacing(#/ \(\d+\)$/#, with: "")
            return (String(record.text[record.text.index(after: record.text.startIndex)..<tail.lowerBound]), String(source))
        }
    }

    /// Stderr without the noise every run prints (D-Bus, the Debian launcher's `[: ...` line), for error messages.
    static func significant(_ stderr: String) -> String {
        stderr.split(separator: "\n")
            .filter { !$0.contains("dbus") && !$0.contains("unexpected operator") && !$0.contains(":WARNING:") }
            .suffix(30).joined(separator: "\n")
    }

    private static func wrapperPage(pages: [String], click: String, probe: String) throws -> String {
        // JSONSerialization writes "/" as "\/", so no "</script>" can appear inside the script.
        let config = String(
            decoding: try JSONSerialization.data(withJSONObject: ["pages": pages, "click": click, "probe": probe]), as: UTF8.self)
        return """
            <!doctype html><meta charset="utf-8"><title>harrow browser check</title><body><pre id="harrow-result"></pre>
            <script>
            const config = \(config);
            const sleep = ms => new Promise(r => setTimeout(r, ms));
            const settled = img => img.complete ? null
              : new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
            async function probe(url, i) {
              console.log('\(marker)' + i);
              const frame = document.createElement('iframe');
              frame.width = 1400; frame.height = 900;
              await new Promise(r => { frame.onload = r; frame.src = url; document.body.append(frame); });
              const doc = frame.contentDocument, result = {broken: [], sort: null};
              if (!doc) { result.error = 'cannot read ' + url; return result; }
              // A lazy image outside the iframe's viewport would never load, and would look broken.
              for (const img of doc.images) if (img.loading === 'lazy') img.loading = 'eager';
              await Promise.race([Promise.all([...doc.images].map(settled)), sleep(10000)]);
              // A missing file and an SVG that does not parse both leave naturalWidth at 0.
              result.broken = [...doc.images].filter(img => !(img.complete && img.naturalWidth > 0))
                .map(img => img.getAttribute('src') ?? img.currentSrc);
              if (config.probe) {
                const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
                result.probe = await new AsyncFunction('doc', 'sleep', config.probe)(doc, sleep);
              }
              const th = config.click ? doc.querySelector(config.click) : null;
              if (th) {
                const column = () => [...th.closest('table').tBodies].flatMap(b => [...b.rows])
                  .filter(row => row !== th.parentElement).map(row => (row.cells[th.cellIndex]?.textContent ?? '').trim());
                const before = column();
                th.click();
                await sleep(100);
                result.sort = {header: th.textContent.trim(), before, after: column()};
              }
              await sleep(100);   // let late errors land before the next page's marker
              frame.remove();     // and stop this page's timers
              return result;
            }
            (async () => {
              const results = [];
              for (const [i, url] of config.pages.entries()) results.push(await probe(url, i));
              // Escape <, > and & (and non-ASCII) so the DOM dump prints the JSON verbatim.
              document.getElementById('harrow-result').textContent = JSON.stringify(results)
                .replace(/[<>&\\u007f-\\uffff]/g, c => '\\\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
            })();
            </script>
            """
    }
}
