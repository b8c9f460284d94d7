import Dns
import IpPacket
import Noise
import SansIO

/// What dissect mode decrypted with a key log: per WireGuard session, the inner packets as the tunnel's strict
/// parser sees them (protocols, flows, DNS names asked, rejections with their reason).
public struct DecryptionReport: Codable, Sendable {
    /// Complete sets of secrets in the key log.
    public var keyLogEntries = 0
    public var sessions: [DecryptedSession] = []
    /// Data messages seen, direct and inside ChannelData: each is decrypted, a keepalive, without keys or not opened.
    public var dataMessages = 0
    /// Data messages whose session's handshake was not in the capture or matched no key log entry.
    public var dataWithoutKeys = 0
    /// Data messages the derived keys did not open.
    public var failedToOpen = 0
    public var keepalives = 0
}

/// One WireGuard session decrypted with a key log.
public struct DecryptedSession: Codable, Sendable {
    public var initiatorIndex: UInt32
    public var responderIndex: UInt32
    /// Whose secrets opened it: `initiator` or `responder`.
    public var secretsOf: String
    public var packets = 0
    public var bytes = 0
    /// Parsed inner packets by "version protocol".
    public var byProtocol: [String: Int] = [:]
    /// Distinct flows ("udp 100.64.0.1:5000 → 100.64.0.2:53"), the first 50, and how many there were (counted
    /// up to 10,000).
    public var flows: [String] = []
    public var flowCount = 0
    /// Names asked in DNS queries (UDP to port 53), distinct, the first 50.
    public var dnsNames: [String] = []
    /// Inner packets the strict parser refused, by reason.
    public var rejected: [String: Int] = [:]

    static let listLimit = 50
}

/// One decrypted inner packet, on the datagram that carried it.
public struct DecryptedPacket: Codable, Hashable, Sendable {
    public var source: String
    public var destination: String
    /// "IPv4 UDP", or the strict parser's reason when it refused the packet.
    public var summary: String
    public var accepted: Bool
}

/// Feeds a capture's WireGuard messages to a ``WireGuardDecryptor`` and tallies what comes out.
struct DecryptedTraffic {
    private var decryptor: WireGuardDecryptor
    private(set) var report = DecryptionReport()
    private var flowSets: [Set<String>] = []

    init(secrets: [WireGuardSessionSecrets]) {
        decryptor = WireGuardDecryptor(secrets: secrets)
        report.keyLogEntries = secrets.count
    }

    /// Takes one WireGuard message; returns the inner packet when it is data that opened to one.
    mutating func add(_ message: UnsafeRawBufferPointer) -> DecryptedPacket? {
        switch WireGuardMessage.peek(message) {
        case .initiation?:
            decryptor.addInitiation(message)
        case .response?:
            guard let index = decryptor.addResponse(message) else { return nil }
            let keys = decryptor.sessions[index]
            report.sessions.append(DecryptedSession(initiatorIndex: keys.initiatorIndex, responderIndex: keys.responderIndex,
                                                    secretsOf: keys.fromInitiator ? "initiator" : "responder"))
            flowSets.append([])
        case .data?:
            report.dataMessages += 1
            switch decryptor.open(message) {
            case .noKeys: report.dataWithoutKeys += 1
            case .failed: report.failedToOpen += 1
            case .plaintext(let plaintext, let session):
                guard !plaintext.isEmpty else {
                    report.keepalives += 1
                    return nil
                }
                return tally(plaintext, session: session)
            }
        default:
            break
        }
        return nil
    }

    private mutating func tally(_ plaintext: [UInt8], session: Int) -> DecryptedPacket {
        report.sessions[session].packets += 1
        report.sessions[session].bytes += plaintext.count
        let packet: IpPacket
        do {
            packet = try IpPacket(copying: plaintext)
        } catch {
            report.sessions[session].rejected[error.reason.identifier, default: 0] += 1
            return DecryptedPacket(source: "", destination: "", summary: "\(error)", accepted: false)
        }
        defer { PacketBufferPool.shared.recycle(packet) }
        let transport = IpProtocolName.name(of: packet.nextHeader)
        let summary = "\(packet.version) \(transport)"
        report.sessions[session].byProtocol[summary, default: 0] += 1
        let ports = packet.tcp.map { ($0.sourcePort, $0.destinationPort) } ?? packet.udp.map { ($0.sourcePort, $0.destinationPort) }
        let source = ports.map { SocketAddress(ip: packet.source, port: $0.0).description } ?? "\(packet.source)"
        let destination = ports.map { SocketAddress(ip: packet.destination, port: $0.1).description } ?? "\(packet.destination)"
        let flow = "\(transport.lowercased()) \(source) → \(destination)"
        if flowSets[session].count < 10_000, flowSets[session].insert(flow).inserted {
            report.sessions[session].flowCount += 1
            if report.sessions[session].flows.count < DecryptedSession.listLimit { report.sessions[session].flows.append(flow) }
        }
        if let udp = packet.udp, udp.destinationPort == 53,
           let query = try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange)), let name = query.questions.first?.name {
            let text = "\(name)"
            if !report.sessions[session].dnsNames.contains(text), report.sessions[session].dnsNames.count < DecryptedSession.listLimit {
                report.sessions[session].dnsNames.append(text)
            }
        }
        return DecryptedPacket(source: source, destination: destination, summary: summary, accepted: true)
    }
}
