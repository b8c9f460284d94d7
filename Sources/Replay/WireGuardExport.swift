import IpPacket
import Noise
import PcapFile
import SansIO

/// Writes every WireGuard message dissect mode finds as a UDP datagram of its own, in capture order, to a raw-IP
/// pcap: unwrapped from TURN ChannelData and split out of GSO-coalesced datagrams, which tools such as tshark
/// 4.0 cannot do. Wireshark ties a session to the address pair its handshake used, so messages that took
/// another path (a relay, both legs of one) would not decrypt: every message of a session whose handshake was
/// seen is written between the same two addresses, the initiator 198.18.0.1 (a port per session) and the
/// responder 198.18.0.2:51820 (RFC 2544's benchmarking range). Messages of sessions without a captured
/// handshake keep the addresses of the datagram that carried them.
public final class WireGuardExport {
    public let path: String
    private let writer: PcapWriter
    /// Messages written; the n-th is frame n of the file.
    public private(set) var written = 0

    public init(path: String) throws(PcapError) {
        self.path = path
        writer = try PcapWriter(path: path, linkType: .raw)
    }

    public func close() { writer.close() }

    func write(_ message: UnsafeRawBufferPointer, from source: SocketAddress, to destination: SocketAddress, at timestamp: Int64) throws(PcapError) {
        let (from, to) = sessionAddresses(of: message) ?? (source, destination)
        try writer.write(Self.datagram(message, from: from, to: to), timestampNanoseconds: timestamp)
        written += 1
    }

    /// A session's index → (session number, whether the index is the initiator's).
    private var sessionOfIndex: [UInt32: (session: Int, initiator: Bool)] = [:]
    private var sessions = 0
    static let initiatorAddress = IpAddress.v4(IPv4Address(198, 18, 0, 1))
    static let responderAddress = IpAddress.v4(IPv4Address(198, 18, 0, 2))

    /// The canonical pair for `message`, in its direction, or `nil` for a session whose handshake was not seen.
    private func sessionAddresses(of message: UnsafeRawBufferPointer) -> (SocketAddress, SocketAddress)? {
        let toResponder: Bool, session: Int
        switch WireGuardMessage.peek(message) {
        case .initiation(let sender)?:
            if sessionOfIndex.count >= 65_536 { sessionOfIndex.removeAll() }
            sessions += 1
            sessionOfIndex[sender] = (sessions, true)
            (session, toResponder) = (sessions, true)
        case .response(let sender, let receiver)?:
            guard let initiation = sessionOfIndex[receiver] else { return nil }
            sessionOfIndex[sender] = (initiation.session, false)
            (session, toResponder) = (initiation.session, false)
        case .data(let receiver, _)?, .cookieReply(let receiver)?:
            guard let known = sessionOfIndex[receiver] else { return nil }
            (session, toResponder) = (known.session, !known.initiator)
        case nil:
            return nil
        }
        let initiator = SocketAddress(ip: Self.initiatorAddress, port: UInt16(20_000 + session % 40_000))
        let responder = SocketAddress(ip: Self.responderAddress, port: 51_820)
        return toResponder ? (initiator, responder) : (responder, initiator)
    }

    /// An IPv4 or IPv6 packet with a UDP header around `payload`, checksums filled in.
    static func datagram(_ payload: UnsafeRawBufferPointer, from source: SocketAddress, to destination: SocketAddress) -> [UInt8] {
        let udpLength = 8 + payload.count
        var udp = be16(source.port) + be16(destination.port) + be16(UInt16(truncatingIfNeeded: udpLength)) + [0, 0] + Array(payload)
        switch (source.ip, destination.ip) {
        case let (.v4(from), .v4(to)):
            var header: [UInt8] = [0x45, 0] + be16(UInt16(truncatingIfNeeded: 20 + udpLength)) + [0, 0, 0x40, 0, 64, 17, 0, 0]
                + be32(from.value) + be32(to.value)
            let checksum = internetChecksum(header)
            header[10] = UInt8(checksum >> 8)
            header[11] = UInt8(checksum & 0xFF)
            return header + udp  // UDP over IPv4 may leave its checksum 0
        case let (.v6(from), .v6(to)):
            let addresses = be64(from.high) + be64(from.low) + be64(to.high) + be64(to.low)
            let pseudo = addresses + be32(UInt32(udpLength)) + [0, 0, 0, 17]
            var checksum = internetChecksum(pseudo + udp)
            if checksum == 0 { checksum = 0xFFFF }
            udp[6] = UInt8(checksum >> 8)
            udp[7] = UInt8(checksum & 0xFF)
            return [0x60, 0, 0, 0] + be16(UInt16(truncatingIfNeeded: udpLength)) + [17, 64] + addresses + udp
        default:
            return []
        }
    }

    private static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        bytes.withUnsafeBytes { InternetChecksum.finalize(InternetChecksum.sum($0)) }
    }

    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    private static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }
    private static func be64(_ value: UInt64) -> [UInt8] { be32(UInt32(value >> 32)) + be32(UInt32(value & 0xFFFF_FFFF)) }
}
