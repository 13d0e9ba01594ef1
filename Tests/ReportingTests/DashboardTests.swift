import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Testing
@testable import Reporting

@Suite("dashboards")
struct DashboardTests {
    @Test("the shipped dashboards parse and are the built-in copies", arguments: ["sweep", "run", "compare"])
    func shipped(name: String) throws {
        let text = try String(contentsOf: projectRoot.appendingPathComponent("dashboards/\(name).yaml"), encoding: .utf8)
        #expect(
            text.trimmingCharacters(in: .newlines) == Dashboard.builtIn[name],
            "regenerate BuiltInDashboards.swift from dashboards/\(name).yaml")
        let d = try Dashboard.parse(yaml: text, file: name)
        #expect(!d.panels.isEmpty)
    }

    @Test("both panel forms read the same")
    func panelForms() throws {
        let a = try Dashboard.parse(
            yaml: "panels:\n  - type: scatter\n    x: lr\n    y: val/loss\n    log_x: true\n  - params\n", file: "a.yaml")
        let b = try Dashboard.parse(yaml: "panels:\n  - scatter: {x: lr, y: val/loss, log_x: true}\n  - params\n", file: "b.yaml")
        #expect(a.panels == b.panels)
        let scatter = a.panels[0].kind as? ScatterPanel
        #expect(scatter != nil && scatter?.x == "lr" && scatter?.logX == true)
        #expect(a.panels[1].kind is ParamsPanel)
    }

    func problems(_ yaml: String) -> [String] {
        do {
            _ = try Dashboard.parse(yaml: yaml, file: "d.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test("every mistake is reported at once with file, line and column")
    func malformed() {
        let p = problems(
            """
            title: t
            panles: []
            panels:
              - type: curvs
              - type: curves
                tpo: 3
              - type: heatmap
                x: lr
              - type: table
                top: -2
            """)
        #expect(p.contains("d.yaml:2:1: error: unknown key 'panles'; did you mean 'panels'?"))
        #expect(p.contains("d.yaml:4:11: error: unknown panel type 'curvs'; did you mean 'curves'?"))
        #expect(p.contains("d.yaml:6:5: error: curves has no option 'tpo'; did you mean 'top'? (it reads title, metrics, top, points)"))
        #expect(p.contains("d.yaml:7:11: error: heatmap needs 'y'"))
        #expect(p.contains("d.yaml:7:11: error: heatmap needs 'value'"))
        #expect(p.contains("d.yaml:10:10: error: top is a positive whole number"))
        #expect(p.count == 6)
    }

    @Test("a panel named bare that needs options says which, instead of drawing nothing or crashing")
    func bareNameNeedingOptions() {
        let p = problems("title: t\npanels:\n  - scatter\n  - curves\n")
        #expect(p == ["d.yaml:3:5: error: scatter needs 'x'", "d.yaml:3:5: error: scatter needs 'y'"])
    }

    @Test("a dashboard declares which way a custom metric improves")
    func declaredGoal() throws {
        let d = try Dashboard.parse(yaml: "title: t\nmetric: latency_ms\ngoal: minimize\npanels: [table]\n", file: "d.yaml")
        #expect(d.metric == "latency_ms" && d.goal == .minimize)
        #expect(problems("title: t\ngoal: smaller\npanels: [table]\n") == ["d.yaml:2:7: error: goal is minimize or maximize"])
    }

    @Test("broken YAML names where the parser stopped")
    func invalidYAML() {
        let p = problems("panels:\n  - type: table\n    params: [lr\n")
        #expect(p.count == 1)
        #expect(p[0].hasPrefix("d.yaml:4:1: error: invalid YAML"), "\(p)")
        #expect(problems("") == ["d.yaml:1:1: error: the dashboard is empty"])
        #expect(problems("title: t\n") == ["d.yaml:1:1: error: a dashboard needs panels"])
    }
}

@Suite("drawing")
struct DrawingTests {
    @Test("LTTB keeps the ends and the spike, and returns the asked-for number of points")
    func lttb() {
        let x = (0..<1000).map(Double.init)
        var y = x.map { 2 / ($0 + 1) }
        y[437] = 9  // a loss spike must survive thinning
        let keep = Downsample.lttb(x: x, y: y, threshold: 100)
        #expect(keep.count == 100)
        #expect(keep.first == 0 && keep.last == 999)
        #expect(keep.contains(437))
        #expect(keep == keep.sorted() && Set(keep).count == keep.count)
        #expect(Downsample.lttb(x: [1, 2, 3], y: [1, 2, 3], threshold: 100) == [0, 1, 2])
    }

    @Test("runs group by every parameter but the seed")
    func seedGroups() {
        let runs: [[String: String]] = [
            ["lr": "1", "seed": "1"], ["lr": "2", "seed": "1"], ["lr": "1", "seed": "2"], ["lr": "1", "seed": "3", "r": "8"]
        ]
        let groups = SeedGroups.group(runs) { $0 }
        #expect(groups.map(\.count) == [2, 1, 1])
        #expect(groups[0].map { $0["seed"] } == ["1", "2"])
        let s = Spread([1, 2, 3, .nan])!
        #expect(s.n == 3 && s.mean == 2 && s.sd == 1)
        #expect(Spread([]) == nil)
        let m = SeedGroups.meanCurve([(steps: [0, 10, 20], values: [3, 2, 1]), (steps: [0, 20, 30], values: [5, 3, 0])])
        #expect(m.steps == [0, 20])
        #expect(m.mean == [4, 2])
        #expect(m.sd.map { ($0 * 1e6).rounded() / 1e6 } == [1.414214, 1.414214])
    }

    @Test("chart scripts quote user text for gnuplot and plot with it as plain text")
    func chartScript() {
        var c = Chart(output: "plots/a.svg", title: "it's <b>")
        c.elements = [.line(title: "run 'x'\nnext", x: [1, 2], y: [3, .nan], color: 0)]
        let s = c.script(id: 7)
        #expect(s.contains("noenhanced"))
        #expect(s.contains("set title 'it''s <b>'"))
        #expect(s.contains("title 'run ''x'' next'"))
        #expect(s.contains("$C7_0 << EOD\n1.0 3.0\n2.0 NaN\nEOD\n"))
        #expect(s.contains("undefine $C7_0"))
        #expect(Chart(output: "e.svg", title: "e").script(id: 1).contains("'no data'"))
    }
}

@Suite("gnuplot")
struct GnuplotTests {
    @Test("one process draws every chart; a script error stops it and its message reaches the user")
    func process() throws {
        let dir = temporaryDirectory("gnuplot")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("plots"), withIntermediateDirectories: true)
        let g = try Gnuplot(directory: dir)
        for i in 0..<3 {
            var c = Chart(output: "plots/\(i).svg", title: "chart \(i)")
            c.elements = [.line(title: "a", x: [0, 1, 2], y: [1, 0.5, 0.25], color: i)]
            try g.draw(c)
        }
        try g.finish()
        #expect(g.charts == 3)
        for i in 0..<3 { #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("plots/\(i).svg").path)) }

        let broken = try Gnuplot(directory: dir)
        try broken.send("plot sin(\n")
        #expect {
            try broken.finish()
        } throws: { error in
            let text = "\(error)"
            return text.contains("gnuplot exited with status") && text.contains("line 1")
        }
        #expect(throws: GnuplotError.self) { try Gnuplot(directory: dir, executable: "/nonexistent/gnuplot") }
    }

    /// Titles and legends come from users (dashboard titles, parameter values, run names): in the SVG they
    /// are text, with quotes, backslashes, gnuplot's enhanced-text markup and newlines kept harmless.
    @Test("hostile titles and legends stay text in the SVG")
    func hostileText() throws {
        let dir = temporaryDirectory("gnuplot-hostile")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("plots"), withIntermediateDirectories: true)
        let nasty = "<script>alert(1)</script> \"' \\ ` $x {@^_} & ]]>\nsystem('touch pwned')"
        let g = try Gnuplot(directory: dir)
        var c = Chart(output: "plots/h.svg", title: nasty)
        c.elements = [
            .line(title: nasty, x: [0, 1, 2], y: [1, 0.5, 0.25], color: 0),
            .labels(x: [1], y: [1], text: ["a\"\nEOD\nsystem('touch pwned')\n\u{7}"])
        ]
        try g.draw(c)
        try g.finish()
        let data = try Data(contentsOf: dir.appendingPathComponent("plots/h.svg"))
        let svg = String(decoding: data, as: UTF8.self)
        #expect(XMLParser(data: data).parse())
        #expect(!svg.contains("<script") && svg.contains("&lt;script>alert(1)&lt;/script>"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("pwned").path))
    }

    /// A gnuplot that stops reading, or never exits, is killed after the stall timeout with a clear error.
    @Test("a gnuplot that hangs is stopped")
    func hang() throws {
        let dir = temporaryDirectory("gnuplot-hang")
        // `exec`: gnuplot is one process, and so is each stand-in for it.
        for (name, script) in [("deaf", "exec sleep 300"), ("stuck", "cat > /dev/null; exec sleep 300")] {
            let fake = dir.appendingPathComponent(name).path
            try "#!/bin/sh\n\(script)\n".write(toFile: fake, atomically: true, encoding: .utf8)
            chmod(fake, 0o755)
            // A script just written may be "text file busy" while another test's fork still holds its descriptor.
            var launched: Gnuplot?
            for _ in 0..<50 where launched == nil {
                launched = try? Gnuplot(directory: dir, executable: fake)
                if launched == nil { usleep(20_000) }
            }
            let g = try #require(launched)
            g.stallTimeout = 0.5
            let started = Date()
            let error = #expect(throws: GnuplotError.self, "\(name)") {
                // 1 MB of script: more than a pipe holds, so the deaf one blocks the write.
                for _ in 0..<4 { try g.send(String(repeating: "# padding\n", count: 26_215)) }
                try g.finish()
            }
            #expect(Date().timeIntervalSince(started) < 120, "\(name)")  // far below the 300 s of a hang
            let lines = (error?.description ?? "").split(separator: "\n").map(String.init)
            #expect(
                lines.contains { $0.hasPrefix("gnuplot made no progress for ") && $0.hasSuffix(" s and was stopped") }, "\(name): \(lines)")
            // The user is told the timeout that stopped gnuplot: 0.5 s, not 0 s.
            #expect(lines.contains("gnuplot made no progress for 0.5 s and was stopped"), "\(name): \(lines)")
        }
    }
}
