/// A replay drawn as a timeline: one row per connection (a UDP endpoint pair of the underlay, or a direction of
/// the client's traffic), with a mark for each event (STUN and TURN requests and answers, WireGuard handshakes,
/// path changes, malformed messages) and a bar per second stacked by what the packets were (message kinds or
/// verdicts). ``html()`` renders one self-contained page: inline SVG and CSS, no script, nothing fetched.
public struct Timeline: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var marks: [Mark] = []
        /// Seconds since the start → packets by category.
        public var perSecond: [Int: [String: Int]] = [:]
        /// Marks beyond ``Timeline/marksPerRow`` are counted, not drawn.
        public var marksLeftOut = 0

        public init(name: String) { self.name = name }
    }

    public struct Mark: Sendable {
        public var nanoseconds: Int64
        public var label: String
        public var kind: Kind
    }

    public enum Kind: String, Sendable, CaseIterable {
        case stun, turn, handshake, path, malformed, event

        var color: String {
            switch self {
            case .stun: "#1f77b4"
            case .turn: "#9467bd"
            case .handshake: "#2ca02c"
            case .path: "#ff7f0e"
            case .malformed: "#d62728"
            case .event: "#7f7f7f"
            }
        }
    }

    public static let marksPerRow = 2000
    public static let rowLimit = 60
    /// Row names longer than this are cut to fit the label column.
    public static let labelLength = 44

    public var title: String
    public var subtitle: String
    /// The capture's first timestamp; marks and seconds count from it.
    public var startNanoseconds: Int64
    public var durationNanoseconds: Int64
    public var rows: [Row]

    public init(title: String, subtitle: String, startNanoseconds: Int64, durationNanoseconds: Int64, rows: [Row]) {
        self.title = title
        self.subtitle = subtitle
        self.startNanoseconds = startNanoseconds
        self.durationNanoseconds = durationNanoseconds
        self.rows = rows
    }

    // MARK: Layout

    static let width = 1280, labelWidth = 300, rowHeight = 72, markBand = 26, top = 40
    static var plotWidth: Int { width - labelWidth - 20 }

    /// The y of row `index`'s top edge in the SVG.
    public static func rowTop(_ index: Int) -> Int { top + index * rowHeight }

    /// The page.
    public func html() -> String {
        let shown = Array(rows.prefix(Self.rowLimit))
        let height = Self.top + max(1, shown.count) * Self.rowHeight + 40
        let seconds = max(1, Int((durationNanoseconds + 999_999_999) / 1_000_000_000))
        let categories = Array(Set(shown.flatMap { $0.perSecond.values.flatMap(\.keys) })).sorted()
        var svg = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.width)\" height=\"\(height)\" viewBox=\"0 0 \(Self.width) \(height)\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"]
        svg += axis(seconds: seconds, height: height)
        for (index, row) in shown.enumerated() {
            svg += draw(row, at: Self.rowTop(index), seconds: seconds, categories: categories)
        }
        svg.append("</svg>")
        let left = rows.count > shown.count ? "<p>\(rows.count - shown.count) more rows left out.</p>" : ""
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
            <style>body{font-family:'DejaVu Sans',sans-serif;margin:16px;color:#222}h1{font-size:18px}p{font-size:13px}
            .legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}</style>
            </head><body>
            <h1>\(Self.escape(title))</h1>
            <p>\(Self.escape(subtitle))</p>
            <p class="legend">\(legend(categories: categories))</p>
            \(svg.joined(separator: "\n"))
            \(left)
            </body></html>

            """
    }

    private func axis(seconds: Int, height: Int) -> [String] {
        let step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400].first { seconds / $0 <= 12 } ?? 86400
        var lines: [String] = []
        for second in stride(from: 0, through: seconds, by: step) {
            let x = Self.labelWidth + second * Self.plotWidth / seconds
            lines.append("<line x1=\"\(x)\" y1=\"\(Self.top - 8)\" x2=\"\(x)\" y2=\"\(height - 30)\" stroke=\"#e0e0e0\"/>")
            lines.append("<text x=\"\(x)\" y=\"\(Self.top - 12)\" text-anchor=\"middle\" fill=\"#555\">\(second) s</text>")
        }
        return lines
    }

    private func draw(_ row: Row, at y: Int, seconds: Int, categories: [String]) -> [String] {
        var lines = ["<g class=\"row\">",
                     "<rect x=\"0\" y=\"\(y)\" width=\"\(Self.width)\" height=\"\(Self.rowHeight - 4)\" fill=\"#f7f7f7\"/>",
                     "<text x=\"8\" y=\"\(y + 20)\" font-weight=\"bold\">\(Self.escape(String(row.name.prefix(Self.labelLength))))</text>",
                     "<text x=\"8\" y=\"\(y + 38)\" fill=\"#555\">\(row.perSecond.values.reduce(0) { $0 + $1.values.reduce(0, +) }) packets, \(row.marks.count + row.marksLeftOut) events</text>"]
        for mark in row.marks {
            let x = Self.labelWidth + Int(Double(mark.nanoseconds) / 1e9 * Double(Self.plotWidth) / Double(seconds))
            lines.append("<rect x=\"\(x - 1)\" y=\"\(y + 4)\" width=\"3\" height=\"\(Self.markBand - 6)\" fill=\"\(mark.kind.color)\"><title>\(Self.escape(String(format: mark.nanoseconds, label: mark.label)))</title></rect>")
        }
        let busiest = max(1, row.perSecond.values.map { $0.values.reduce(0, +) }.max() ?? 1)
        let barWidth = max(1, Self.plotWidth / seconds - 1)
        let barBand = Self.rowHeight - Self.markBand - 10
        for (second, counts) in row.perSecond.sorted(by: { $0.key < $1.key }) {
            let x = Self.labelWidth + second * Self.plotWidth / seconds
            var bottom = y + Self.rowHeight - 6
            for category in categories {
                guard let count = counts[category], count > 0 else { continue }
                let height = max(1, count * barBand / busiest)
                bottom -= height
                lines.append("<rect x=\"\(x)\" y=\"\(bottom)\" width=\"\(barWidth)\" height=\"\(height)\" fill=\"\(Self.color(of: category, in: categories))\"><title>\(second) s: \(count) \(Self.escape(category))</title></rect>")
            }
        }
        lines.append("</g>")
        return lines
    }

    private func legend(categories: [String]) -> String {
        let marks = Kind.allCases.map { "<span><i style=\"background:\($0.color)\"></i>\($0.rawValue)</span>" }
        let bars = categories.map { "<span><i style=\"background:\(Self.color(of: $0, in: categories))\"></i>\(Self.escape($0))</span>" }
        return "Events: " + marks.joined() + " Packets per second: " + bars.joined()
    }

    private static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    static func color(of category: String, in categories: [String]) -> String {
        palette[(categories.firstIndex(of: category) ?? 0) % palette.count]
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

private extension String {
    /// "12.345 s: label"
    init(format nanoseconds: Int64, label: String) {
        let milliseconds = nanoseconds / 1_000_000
        let fraction = String(milliseconds % 1000)
        self = "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s: \(label)"
    }
}
