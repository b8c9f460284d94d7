/// A domain name as its labels. Comparison ignores ASCII case, as DNS does.
public struct DnsName: Hashable, Sendable, CustomStringConvertible {
    /// The labels, most specific first; empty for the root.
    public private(set) var labels: [[UInt8]]

    public static let maxLength = 255
    public static let maxLabelLength = 63
    public static let root = DnsName(validatedLabels: [])

    /// From presentation form (`"app.example.com"`, with or without the trailing dot; `"."` is the root).
    /// `nil` for empty labels or lengths DNS cannot carry. Backslash escapes are not interpreted.
    public init?(_ text: String) {
        guard text != "." else {
            self = .root
            return
        }
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        let labels = trimmed.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard labels.allSatisfy({ !$0.isEmpty && $0.count <= Self.maxLabelLength }),
              Self.wireLength(labels) <= Self.maxLength
        else { return nil }
        self.labels = labels
    }

    init(validatedLabels: [[UInt8]]) {
        labels = validatedLabels
    }

    /// Length on the wire without compression: each label's length byte and bytes, plus the root's zero.
    static func wireLength(_ labels: [[UInt8]]) -> Int {
        labels.reduce(1) { $0 + 1 + $1.count }
    }

    /// Presentation form without the trailing dot; `"."` for the root.
    public var description: String {
        labels.isEmpty ? "." : labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
    }

    /// Lowercased labels: the key for comparison and compression.
    var canonicalLabels: [[UInt8]] {
        labels.map { $0.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 } }
    }

    public static func == (lhs: DnsName, rhs: DnsName) -> Bool {
        lhs.canonicalLabels == rhs.canonicalLabels
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(canonicalLabels)
    }
}
