#if canImport(Glibc)
import Dns
import Foundation
import SansIO
import Synchronization

/// The gateway's system nameservers, ranked by how fast they answer (spec `tunnel-dns.md` §5.9): every
/// nameserver is asked `A firezone.dev` over UDP and over TCP at once, each probe with a 2 s timeout, at most
/// 20 probes, and the evaluation is repeated every 60 s. The fastest NOERROR answer wins.
///
/// Deliberate deviations from Firezone: the ranking is that of the latest evaluation (Firezone keeps the best
/// round-trip time a nameserver ever had, so one that stopped answering stays first); a nameserver that answered
/// with another code ranks after those that answered NOERROR; and while no nameserver has answered at all (before
/// the first evaluation, or on a network where firezone.dev cannot be resolved), `/etc/resolv.conf`'s order
/// stands, so queries are still forwarded rather than all failed.
public final class NameserverSet: Sendable {
    /// What one probe saw.
    public struct Probe: Sendable, Equatable {
        public enum Transport: String, Sendable { case udp, tcp }
        public let nameserver: IpAddress
        public let transport: Transport
        /// The answer's response code, `nil` when none came within the timeout.
        public let rcode: DnsRcode?
        public let roundTrip: Duration
    }

    public static let probeTimeout: Duration = .seconds(2)
    public static let evaluationInterval: Duration = .seconds(60)
    static let maximumProbes = 20
    static let probeDomain = DnsName("firezone.dev")!

    /// The nameservers in `/etc/resolv.conf`'s order, without duplicates.
    public let nameservers: [IpAddress]
    private let ranking: Mutex<[IpAddress]>

    public init(_ nameservers: [IpAddress]) {
        var unique: [IpAddress] = []
        for nameserver in nameservers where !unique.contains(nameserver) { unique.append(nameserver) }
        self.nameservers = unique
        ranking = Mutex(unique)
    }

    /// Where to forward a query: the fastest nameserver of the latest evaluation; `nil` without nameservers.
    public var fastest: IpAddress? { ranking.withLock { $0.first } }

    /// The nameservers, best first.
    public var ranked: [IpAddress] { ranking.withLock { $0 } }

    /// Probes the nameservers (at most ``probeTimeout`` of blocking work, on threads of its own) and ranks them.
    @discardableResult
    public func evaluate() async -> [Probe] {
        let probes = await Self.probe(nameservers)
        let ranked = Self.rank(nameservers, by: probes)
        ranking.withLock { $0 = ranked }
        return probes
    }

    /// NOERROR answers by their fastest round trip, then nameservers that answered otherwise; resolv.conf's order
    /// when nobody answered.
    static func rank(_ nameservers: [IpAddress], by probes: [Probe]) -> [IpAddress] {
        func fastest(_ answered: (Probe) -> Bool) -> [IpAddress] {
            let best = Dictionary(probes.filter(answered).map { ($0.nameserver, $0.roundTrip) }, uniquingKeysWith: min)
            return nameservers.filter { best[$0] != nil }.sorted { best[$0]! < best[$1]! }
        }
        let noError = fastest { $0.rcode == .noError }
        let other = fastest { $0.rcode != nil }.filter { !noError.contains($0) }
        guard !noError.isEmpty || !other.isEmpty else { return nameservers }
        return noError + other
    }

    private static func probe(_ nameservers: [IpAddress]) async -> [Probe] {
        let targets = nameservers.flatMap { [($0, Probe.Transport.udp), ($0, Probe.Transport.tcp)] }.prefix(maximumProbes)
        let results = Mutex<[Probe]>([])
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for (nameserver, transport) in targets {
                group.enter()
                Thread {
                    let probe = Self.probe(nameserver, over: transport)
                    results.withLock { $0.append(probe) }
                    group.leave()
                }.start()
            }
            group.notify(queue: .global()) { continuation.resume() }
        }
        return results.withLock { $0 }
    }

    private static func probe(_ nameserver: IpAddress, over transport: Probe.Transport) -> Probe {
        var flags = DnsFlags()
        flags.recursionDesired = true
        let query = DnsMessage(id: UInt16.random(in: 0...UInt16.max), flags: flags,
                               questions: [DnsQuestion(name: probeDomain, type: .a)])
        let server = SocketAddress(ip: nameserver, port: 53)
        let clock = ContinuousClock()
        let started = clock.now
        let answer = switch transport {
        case .udp: DnsExchange.udp(query, with: server, timeout: probeTimeout)
        case .tcp: DnsExchange.tcp(query, with: server, timeout: probeTimeout)
        }
        let elapsed = started.duration(to: clock.now)
        let answered = answer.flatMap { $0.id == query.id && $0.flags.isResponse && elapsed <= probeTimeout ? $0 : nil }
        return Probe(nameserver: nameserver, transport: transport, rcode: answered?.flags.rcode, roundTrip: elapsed)
    }
}
#endif
