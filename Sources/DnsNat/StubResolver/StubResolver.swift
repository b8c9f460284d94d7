import Dns
import IpPacket

/// The client's stub resolver for DNS resources (spec `tunnel-dns.md` §4.6.4, HEAD semantics): decides, per
/// query, whether to answer locally with proxy IPs, to recurse through the system or portal upstream, or to
/// recurse in the resource's site (SRV and TXT go to the Gateway's DNS server on port 53535).
public struct StubResolver: Sendable {
    /// What to do with one query.
    public enum Strategy: Hashable, Sendable {
        /// Answer with this message (TTL 1 records, the question echoed).
        case localResponse(DnsMessage)
        /// Forward to the upstream resolver.
        case recurseLocally
        /// Forward to the Gateway serving this resource.
        case recurseInSite(ResourceId)
    }

    /// Firefox's canary domain: NXDOMAIN turns off its built-in DNS-over-HTTPS.
    public static let dohCanary = DnsName("use-application-dns.net")!

    /// The proxy-IP records; export them to keep proxy IPs across sessions.
    public private(set) var allocator = ProxyIpAllocator()
    private var resources: [ResourceId: DnsResource] = [:]
    /// Patterns in precedence order: the first match is the most specific.
    private var ordered: [DnsResource] = []

    public init(restoring records: [(domain: DnsName, ips: [IpAddress])] = []) {
        allocator.importRecords(records)
    }

    /// Adds or replaces a DNS resource.
    public mutating func upsert(_ resource: DnsResource) {
        resources[resource.id] = resource
        reorder()
    }

    /// Forgets a DNS resource; proxy IPs stay allocated so the addresses are never reused.
    public mutating func remove(_ id: ResourceId) {
        guard resources.removeValue(forKey: id) != nil else { return }
        reorder()
    }

    /// Every resource whose pattern matches `domain`, most specific first.
    public func matchingResources(_ domain: DnsName) -> [DnsResource] {
        ordered.filter { $0.pattern.matches(domain) }
    }

    /// The domain and resources a proxy IP stands for, for routing and PTR answers.
    public func resolveProxyIp(_ ip: IpAddress) -> (domain: DnsName, resources: [DnsResource])? {
        guard let domain = allocator.domainByIp[ip] else { return nil }
        return (domain, matchingResources(domain))
    }

    /// Chooses the strategy for a query with exactly one question; allocates proxy IPs on a domain's first
    /// A or AAAA query.
    public mutating func handle(_ query: DnsMessage) -> Strategy {
        guard let question = query.questions.first else { return .recurseLocally }
        let domain = question.name
        if domain == Self.dohCanary { return .localResponse(DnsMessage.response(to: query, rcode: .nameError)) }
        if question.type == .ptr { return answerPtr(query, question) }
        let matches = matchingResources(domain)
        guard let mostSpecific = matches.first else { return .recurseLocally }
        switch question.type {
        case .a, .aaaa:
            let wantsV4 = question.type == .a
            let allowed = matches.contains { wantsV4 ? $0.stack.allowsIPv4 : $0.stack.allowsIPv6 }
            let ips = allocator.ips(for: domain).filter { ip in
                if case .v4 = ip { return wantsV4 && allowed } else { return !wantsV4 && allowed }
            }
            return .localResponse(response(query, question, ips.map { ip in
                switch ip {
                case .v4(let v4): .a(v4)
                case .v6(let v6): .aaaa(v6)
                }
            }))
        case .srv, .txt:
            return .recurseInSite(mostSpecific.id)
        case .https:
            return .localResponse(response(query, question, []))
        default:
            return .recurseLocally
        }
    }

    private mutating func answerPtr(_ query: DnsMessage, _ question: DnsQuestion) -> Strategy {
        guard let ip = ReverseName.address(of: question.name), let domain = allocator.domainByIp[ip] else {
            return .recurseLocally
        }
        return .localResponse(response(query, question, [.ptr(domain)]))
    }

    private func response(_ query: DnsMessage, _ question: DnsQuestion, _ data: [DnsRecordData]) -> DnsMessage {
        var answer = DnsMessage.response(to: query, rcode: .noError)
        answer.answers = data.map { DnsRecord(name: question.name, ttl: 1, data: $0) }
        return answer
    }

    private mutating func reorder() {
        // Equal patterns: the highest resource ID first, as Firezone breaks ties for SRV/TXT.
        ordered = resources.values.sorted {
            $0.pattern == $1.pattern ? $0.id.description > $1.id.description : $0.pattern < $1.pattern
        }
    }
}

/// A DNS resource as the stub resolver needs it.
public struct DnsResource: Hashable, Sendable {
    public var id: ResourceId
    public var pattern: DomainPattern
    public var stack: IpStack

    public init(id: ResourceId, pattern: DomainPattern, stack: IpStack = .dual) {
        self.id = id
        self.pattern = pattern
        self.stack = stack
    }
}
