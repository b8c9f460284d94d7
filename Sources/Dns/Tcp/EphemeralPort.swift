/// Source ports for DNS queries the client sends through the tunnel (spec `tunnel-dns.md` §4.6.8): random in
/// 49152–65535 and not in use, by UDP query or TCP connection.
public enum EphemeralPort {
    public static let range: ClosedRange<UInt16> = 49_152...65_535

    /// A random free port, walking up from a random start; the caller makes sure one is free.
    public static func pick(using random: inout some RandomNumberGenerator, isTaken: (UInt16) -> Bool) -> UInt16 {
        var port = UInt16.random(in: range, using: &random)
        while isTaken(port) { port = port == range.upperBound ? range.lowerBound : port + 1 }
        return port
    }
}
