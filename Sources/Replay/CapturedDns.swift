import Dns
import DnsNat
import IpPacket
import SansIO
import Tunnel

/// What the capture's own DNS traffic tells the replay. The capture was recorded without a tunnel, so its
/// client asked a real resolver and connected to real addresses; in the replay the stub resolver answers
/// with proxy IPs instead. This links the two: the captured answers resolve the gateway's DNS resources
/// and answer the client's recursions, and packets to a DNS resource's real address are sent to the proxy
/// IP the stub resolver gave out for it, as an app using the tunnel would.
struct CapturedDns {
    /// Captured answers by question, for the gateway's nameserver.
    private var answers: [DnsQuestion: DnsMessage] = [:]
    private var realAddresses: [DnsName: [IpAddress]] = [:]
    private var proxyAddresses: [DnsName: [IpAddress]] = [:]
    /// A DNS resource's real address → the proxy IP the stub resolver handed out for its name.
    private(set) var proxyForReal: [IpAddress: IpAddress] = [:]
    /// Every real address of a DNS resource the client was given a proxy IP for.
    private(set) var translatedReal: Set<IpAddress> = []
    /// The name whose answer gave a real address that has a proxy IP.
    private(set) var nameForReal: [IpAddress: DnsName] = [:]

    private var recursions: [ClientDns.PendingQuery] = []
    private var resolutions: [GatewayResolveRequest] = []
    private var forwards: [GatewayDnsQuery] = []

    /// What the caller must do with waiting requests after learning an answer.
    enum Reply {
        case recursion(ClientDns.PendingQuery, DnsMessage)
        case resolution(GatewayResolveRequest, [IpAddress])
        case forward(GatewayDnsQuery, DnsMessage)
    }

    mutating func waitForRecursion(_ pending: ClientDns.PendingQuery) {
        recursions.append(pending)
    }

    /// The gateway wants a domain resolved: answered now if the capture already did.
    mutating func resolve(_ request: GatewayResolveRequest) -> [IpAddress]? {
        if let known = realAddresses[request.request.domain] { return known }
        resolutions.append(request)
        return nil
    }

    /// The gateway forwards a client's query to its nameserver: answered now if the capture already did.
    mutating func forward(_ query: GatewayDnsQuery) -> DnsMessage? {
        if let question = query.query.questions.first, let answer = answers[question] { return Self.answer(answer, to: query.query) }
        forwards.append(query)
        return nil
    }

    /// A DNS answer the capture's resolver sent: remembered, and handed to whoever waits for it.
    mutating func learnCaptured(_ message: DnsMessage) -> [Reply] {
        guard message.flags.isResponse, let question = message.questions.first else { return [] }
        answers[question] = message
        var replies: [Reply] = []
        if let index = recursions.firstIndex(where: { $0.query.id == message.id && $0.query.questions.first == question }) {
            replies.append(.recursion(recursions.remove(at: index), message))
        }
        let addresses = Self.addresses(in: message)
        if !addresses.isEmpty {
            realAddresses[question.name, default: []].append(contentsOf: addresses.filter { !realAddresses[question.name, default: []].contains($0) })
            link(question.name)
            let known = realAddresses[question.name] ?? []
            let ready = resolutions.filter { $0.request.domain == question.name }
            resolutions.removeAll { $0.request.domain == question.name }
            replies += ready.map { .resolution($0, known) }
        }
        let waiting = forwards.filter { $0.query.questions.first == question }
        forwards.removeAll { $0.query.questions.first == question }
        replies += waiting.map { .forward($0, Self.answer(message, to: $0.query)) }
        return replies
    }

    /// An answer the stub resolver wrote to the client's TUN device: its proxy IPs.
    mutating func learnStubAnswer(_ message: DnsMessage) {
        guard let question = message.questions.first else { return }
        let proxies = Self.addresses(in: message).filter(ProxyIpAllocator.isProxyIp)
        guard !proxies.isEmpty else { return }
        proxyAddresses[question.name, default: []].append(contentsOf: proxies.filter { !proxyAddresses[question.name, default: []].contains($0) })
        link(question.name)
    }

    /// Requests still waiting when the replay ends: they fail, as with a resolver that never answers.
    mutating func takeUnanswered() -> (recursions: [ClientDns.PendingQuery], resolutions: [GatewayResolveRequest], forwards: [GatewayDnsQuery]) {
        defer { recursions = []; resolutions = []; forwards = [] }
        return (recursions, resolutions, forwards)
    }

    private mutating func link(_ name: DnsName) {
        guard let real = realAddresses[name], let proxies = proxyAddresses[name] else { return }
        for version in [IpVersion.v4, .v6] {
            let realOfVersion = real.filter { $0.version == version }, proxiesOfVersion = proxies.filter { $0.version == version }
            for (address, proxy) in zip(realOfVersion, proxiesOfVersion) where proxyForReal[address] == nil {
                proxyForReal[address] = proxy
                nameForReal[address] = name
                translatedReal.insert(address)
            }
        }
    }

    private static func addresses(in message: DnsMessage) -> [IpAddress] {
        message.answers.compactMap { record in
            switch record.data {
            case .a(let address): .v4(address)
            case .aaaa(let address): .v6(address)
            default: nil
            }
        }
    }

    private static func answer(_ captured: DnsMessage, to query: DnsMessage) -> DnsMessage {
        var answer = captured
        answer.id = query.id
        return answer
    }
}
