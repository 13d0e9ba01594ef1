import Foundation

/// A plot described as data; `script` turns it into gnuplot commands. Pure, so a chart's script can be
/// checked without running gnuplot.
public struct Chart: Sendable {
    public enum Element: Sendable {
        case line(title: String, x: [Double], y: [Double], color: Int, dashed: Bool = false)
        /// A shaded band between `low` and `high` (mean ± sd of seed repeats).
        case band(x: [Double], low: [Double], high: [Double], color: Int)
        case points(title: String, x: [Double], y: [Double], color: Int, yError: [Double]? = nil, size: Double = 0.7)
        case boxes(title: String, x: [Double], y: [Double], width: Double, color: Int, yError: [Double]? = nil)
        /// Error bars from `low` to `high` at each x, without a marker: an interval that need not be symmetric
        /// (Wilson's for a share), drawn over boxes or points.
        case intervals(x: [Double], y: [Double], low: [Double], high: [Double])
        /// Heatmap cells centred on integer grid positions, coloured by value (NaN: no run there).
        case cells(x: [Double], y: [Double], value: [Double])
        case labels(x: [Double], y: [Double], text: [String])
        /// Parallel coordinates: one vertical axis per column (labelled, with its own tics when given), one line per
        /// row, coloured on the palette by `color`.
        case parallel(axes: [ParallelAxis], color: [Double])
    }

    public struct ParallelAxis: Sendable {
        public var label: String
        public var values: [Double]
        /// Tic labels at positions (a categorical parameter's values, a log axis's powers); nil: gnuplot's own.
        public var tics: [(label: String, at: Double)]?
        public init(label: String, values: [Double], tics: [(label: String, at: Double)]? = nil) {
            self.label = label
            self.values = values
            self.tics = tics
        }
    }

    public struct Segment: Sendable {
        public var x1, y1, x2, y2: Double
        public var color: String
        public var label: String?
    }

    /// File name relative to the report folder.
    public var output: String
    public var title: String
    public var xLabel = ""
    public var yLabel = ""
    public var logX = false
    public var logY = false
    public var xTics: [(label: String, at: Double)]?
    /// Long tic labels (parameter values) are turned so they do not run into each other; short numbers stay level.
    public var rotateXTics = true
    public var yTics: [(label: String, at: Double)]?
    public var xRange: (Double, Double)?
    public var yRange: (Double, Double)?
    public var width = 640
    public var height = 360
    public var keyOutside = false
    /// The legend under the plot, in a row: for charts whose points may fill any corner.
    public var keyBelow = false
    public var elements: [Element] = []
    public var segments: [Segment] = []
    public var paletteLabel: String?
    /// gnuplot's `defined (…)` list for the palette; nil: light to teal (heatmaps).
    public var palette: String?
    /// Hundreds of points: drawn translucent, and points that land on each other spread apart (gnuplot's jitter),
    /// so no series hides another.
    public var dense = false

    public init(output: String, title: String) {
        self.output = output
        self.title = title
    }

    /// Colours that stay apart for the first ten series (Tableau 10).
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    public static func color(_ i: Int) -> String { palette[((i % palette.count) + palette.count) % palette.count] }

    /// A gnuplot single-quoted string: quotes doubled.
    static func quote(_ s: String) -> String { "'" + plain(s).replacingOccurrences(of: "'", with: "''") + "'" }

    /// User text as it may reach gnuplot and its SVG: control characters (line breaks, which would end a
    /// command or a data block, and the others XML forbids) become spaces, and `]]>`, which gnuplot leaves
    /// as is and XML does not allow in text, is broken up.
    static func plain(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
            .replacingOccurrences(of: "]]>", with: "]] >")
    }

    static func num(_ v: Double) -> String { v.isFinite ? String(v) : "NaN" }

    /// A series colour, translucent (gnuplot's `#AARRGGBB`, 00 opaque) when the chart is dense.
    func pointColor(_ i: Int) -> String { dense ? "#70" + Self.color(i).dropFirst() : Self.color(i) }

    /// The commands for this chart; `id` keeps its data blocks apart from other charts' in the same process.
    public func script(id: Int) -> String {
        var s = "reset\nset terminal svg size \(width),\(height) noenhanced font 'sans,11' background '#ffffff'\n"
        s += "set output \(Self.quote(output))\nset title \(Self.quote(title))\n"
        s += "set xlabel \(Self.quote(xLabel))\nset ylabel \(Self.quote(yLabel))\n"
        s += "set grid lc '#e6e9ee'\nset border lc '#888888'\nset style fill solid 0.85 border -1\n"
        // A long legend goes outside in small type, in columns of at most 14 entries, instead of running off the chart.
        let entries = elements.filter { element in
            switch element {
            case .line(let t, _, _, _, _), .points(let t, _, _, _, _, _), .boxes(let t, _, _, _, _, _): return !t.isEmpty
            default: return false
            }
        }.count
        if entries > 8 {
            s += "set key outside right top vertical maxrows 14 spacing 0.8 samplen 1 font 'sans,8'\n"
        } else {
            s +=
                keyBelow
                ? "set key below horizontal spacing 0.9 samplen 2\n"
                : keyOutside
                    ? "set key outside right top vertical spacing 0.9 samplen 2\n" : "set key top right spacing 0.9 samplen 2 opaque\n"
        }
        if dense { s += "set jitter overlap 0.5 spread 0.6\n" }
        if logX { s += "set logscale x\nset format x '%g'\n" }
        if logY { s += "set logscale y\nset format y '%g'\n" }
        if let t = xTics {
            s +=
                "set xtics (" + t.map { "\(Self.quote($0.label)) \(Self.num($0.at))" }.joined(separator: ", ")
                + ")\(rotateXTics ? " rotate by -30" : "")\n"
        }
        if let t = yTics { s += "set ytics (" + t.map { "\(Self.quote($0.label)) \(Self.num($0.at))" }.joined(separator: ", ") + ")\n" }
        if let r = xRange { s += "set xrange [\(Self.num(r.0)):\(Self.num(r.1))]\n" }
        if let r = yRange { s += "set yrange [\(Self.num(r.0)):\(Self.num(r.1))]\n" }
        if let p = paletteLabel {
            s += "set palette defined \(palette ?? "(0 '#fff7bc', 1 '#a1dab4', 2 '#41b6c4')")\nset cblabel \(Self.quote(p))\n"
        } else {
            s += "unset colorbox\n"
        }
        for (i, seg) in segments.enumerated() {
            s +=
                "set arrow \(i + 1) from \(Self.num(seg.x1)),\(Self.num(seg.y1)) to \(Self.num(seg.x2)),\(Self.num(seg.y2)) nohead lc '\(seg.color)' lw 2 dt 2 front\n"
            if let label = seg.label {
                s +=
                    "set label \(i + 1) \(Self.quote(label)) at \(Self.num(seg.x2)),\(Self.num(seg.y2)) right offset 0,0.6 tc '\(seg.color)' font 'sans,9' front\n"
            }
        }
        var plots: [String] = []
        for (e, element) in elements.enumerated() {
            let block = "$C\(id)_\(e)"
            func rows(_ columns: [[Double]]) {
                s += "\(block) << EOD\n"
                for r in 0..<(columns.first?.count ?? 0) { s += columns.map { Self.num($0[r]) }.joined(separator: " ") + "\n" }
                s += "EOD\n"
            }
            switch element {
            case let .line(title, x, y, color, dashed):
                rows([x, y])
                plots.append(
                    "\(block) using 1:2 with lines lw 1.6 lc '\(Self.color(color))'\(dashed ? " dt 2" : "") title \(Self.quote(title))")
            case let .band(x, low, high, color):
                rows([x, low, high])
                plots.append("\(block) using 1:2:3 with filledcurves fs transparent solid 0.18 noborder lc '\(Self.color(color))' notitle")
            case let .points(title, x, y, color, yError, size):
                if let yError {
                    rows([x, y, yError])
                    plots.append(
                        "\(block) using 1:2:3 with yerrorbars pt 7 ps \(size) lc rgb '\(pointColor(color))' title \(Self.quote(title))")
                } else {
                    rows([x, y])
                    plots.append("\(block) using 1:2 with points pt 7 ps \(size) lc rgb '\(pointColor(color))' title \(Self.quote(title))")
                }
            case let .boxes(title, x, y, width, color, yError):
                rows([x, y, [Double](repeating: width, count: x.count)] + (yError.map { [$0] } ?? []))
                plots.append("\(block) using 1:2:3 with boxes lc '\(Self.color(color))' title \(Self.quote(title))")
                if yError != nil { plots.append("\(block) using 1:2:4 with yerrorbars pt -1 lc '#333333' notitle") }
            case let .intervals(x, y, low, high):
                rows([x, y, low, high])
                plots.append("\(block) using 1:2:3:4 with yerrorbars pt -1 lc '#333333' notitle")
            case let .cells(x, y, value):
                rows([x, y, value])
                plots.append("\(block) using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder lc palette notitle")
            case let .parallel(axes, color):
                rows(axes.map(\.values) + [color])
                s +=
                    "unset ytics\nunset border\nset xtics ("
                    + axes.enumerated().map { "\(Self.quote($0.element.label)) \($0.offset + 1)" }
                    .joined(separator: ", ") + ") nomirror scale 0\nset xrange [0.7:\(Self.num(Double(axes.count) + 0.3))]\n"
                for (i, axis) in axes.enumerated() {
                    if let t = axis.tics {
                        s +=
                            "set paxis \(i + 1) tics (" + t.map { "\(Self.quote($0.label)) \(Self.num($0.at))" }.joined(separator: ", ")
                            + ")\n"
                    } else {
                        s += "set paxis \(i + 1) tics\n"
                    }
                }
                // gnuplot 5.4: the first axis's extra column colours the line; the other axes follow it.
                plots.append("\(block) using 1:\(axes.count + 1) with parallelaxes lw 1.2 lc palette notitle")
                if axes.count > 1 { plots.append("for [i=2:\(axes.count)] \(block) using i with parallelaxes notitle") }
            case let .labels(x, y, text):
                s += "\(block) << EOD\n"
                for i in x.indices {
                    s += "\(Self.num(x[i])) \(Self.num(y[i])) \"\(Self.plain(text[i]).replacingOccurrences(of: "\"", with: "'"))\"\n"
                }
                s += "EOD\n"
                plots.append("\(block) using 1:2:3 with labels font 'sans,9' notitle")
            }
        }
        if plots.isEmpty {
            s += "set label 100 'no data' at graph 0.5, graph 0.5 center\nset xrange [0:1]\nset yrange [0:1]\nplot NaN notitle\n"
        } else {
            s += "plot " + plots.joined(separator: ", \\\n     ") + "\n"
        }
        // Free the data blocks: a report with thousands of charts would otherwise hold them all.
        for e in elements.indices { s += "undefine $C\(id)_\(e)\n" }
        return s
    }
}
