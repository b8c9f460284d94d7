import Dns
import IpPacket

/// The Client's cache of upstream answers (spec `tunnel-dns.md` §4.6.9), keyed by (name, type). Only useful
/// answers are kept: NOERROR, not truncated, at least one record, and records of the asked type living at
/// least 5 s. Local proxy-IP answers have TTL 1 and so are never cached.
public struct DnsCache: Sendable {
    public static let minimumTtl: UInt32 = 5

    private struct Key: Hashable, Sendable {
        var name: DnsName
        var type: DnsRecordType
    }

    private struct Entry: Sendable {
        var answers: [DnsRecord]
        var storedAt: Instant
        var expiresAt: Instant
    }

    private var entries: [Key: Entry] = [:]

    public init() {}

    public var count: Int { entries.count }

    /// Offers an answer to `query` for caching; it is kept only when it qualifies.
    public mutating func offer(_ response: DnsMessage, for query: DnsMessage, now: Instant) {
        guard let question = query.questions.first,
              response.flags.rcode == .noError, !response.flags.isTruncated, !response.answers.isEmpty,
              let ttl = response.answers.filter({ $0.type == question.type }).map(\.ttl).min(),
              ttl >= Self.minimumTtl
        else { return }
        entries[Key(name: question.name, type: question.type)] =
            Entry(answers: response.answers, storedAt: now, expiresAt: now + .seconds(Int64(ttl)))
    }

    /// A fresh NOERROR answer to `query` from the cache, with the query's ID and every TTL reduced by the
    /// seconds the answer has been cached; `nil` on a miss or an expired entry.
    public func answer(_ query: DnsMessage, now: Instant) -> DnsMessage? {
        guard let question = query.questions.first,
              let entry = entries[Key(name: question.name, type: question.type)], now < entry.expiresAt
        else { return nil }
        let elapsed = UInt32(clamping: (now - entry.storedAt).components.seconds)
        var response = DnsMessage.response(to: query, rcode: .noError)
        response.answers = entry.answers.map { record in
            var aged = record
            aged.ttl = record.ttl > elapsed ? record.ttl - elapsed : 0
            return aged
        }
        return response
    }

    /// Drops expired entries (their answers are already never served).
    public mutating func removeExpired(now: Instant) {
        entries = entries.filter { now < $0.value.expiresAt }
    }

    /// Forgets everything: a resource was added or removed, or the DNS servers changed.
    public mutating func flush() {
        entries.removeAll()
    }
}
