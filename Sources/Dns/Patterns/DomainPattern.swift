/// A DNS resource's address: a case-insensitive glob over labels (spec `tunnel-dns.md` §4.6.4).
/// `*` matches within one label (any characters, including none), `?` exactly one character within a label,
/// `**` any number of whole labels (including zero); a pattern starting with `*.` also matches the bare
/// parent (`*.example.com` matches `example.com`).
public struct DomainPattern: Hashable, Sendable, CustomStringConvertible {
    /// The pattern as configured, lowercased.
    public let text: String
    private let labels: [[UInt8]]

    public init(_ text: String) {
        self.text = text.lowercased()
        labels = self.text.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
    }

    public var description: String { text }

    /// Whether `name` matches.
    public func matches(_ name: DnsName) -> Bool {
        let domain = name.canonicalLabels
        if Self.match(labels[...], domain[...]) { return true }
        if labels.count > 1, labels[0] == [UInt8(ascii: "*")] {
            return Self.match(labels.dropFirst(), domain[...])
        }
        return false
    }

    private static func match(_ pattern: ArraySlice<[UInt8]>, _ domain: ArraySlice<[UInt8]>) -> Bool {
        guard let first = pattern.first else { return domain.isEmpty }
        if first == [UInt8(ascii: "*"), UInt8(ascii: "*")] {
            // `**`: zero or more whole labels.
            var rest = domain
            while true {
                if match(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let label = domain.first, glob(first[...], label[...]) else { return false }
        return match(pattern.dropFirst(), domain.dropFirst())
    }

    /// `*` and `?` within one label.
    private static func glob(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        guard let head = pattern.first else { return text.isEmpty }
        switch head {
        case UInt8(ascii: "*"):
            var rest = text
            while true {
                if glob(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        case UInt8(ascii: "?"):
            return !text.isEmpty && glob(pattern.dropFirst(), text.dropFirst())
        default:
            return text.first == head && glob(pattern.dropFirst(), text.dropFirst())
        }
    }
}

extension DomainPattern: Comparable {
    /// Firezone's precedence (the first match wins): compare right to left; at the first difference a pattern
    /// that ran out comes first, an ordinary character (`.` included) before a wildcard, `?` before `*`, and
    /// between ordinary characters the higher code point first. So exact names beat `?`, `?` beats `*`,
    /// and `*` beats `**`.
    public static func < (lhs: DomainPattern, rhs: DomainPattern) -> Bool {
        let left = Array(lhs.text.utf8.reversed())
        let right = Array(rhs.text.utf8.reversed())
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index] : nil
            let b = index < right.count ? right[index] : nil
            guard a != b else { continue }
            guard let a else { return true }
            guard let b else { return false }
            switch (isWildcard(a), isWildcard(b)) {
            case (true, true): return a == UInt8(ascii: "?")
            case (false, true): return true
            case (true, false): return false
            case (false, false): return a > b
            }
        }
        return false
    }

    private static func isWildcard(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "*") || byte == UInt8(ascii: "?")
    }
}
