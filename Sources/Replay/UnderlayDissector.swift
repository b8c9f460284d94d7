import IpPacket
import Noise
import PcapFile
import SansIO
import Stun
import Turn

/// Dissect mode: classifies every UDP datagram of an underlay capture with the toolkit's own de-multiplexer
/// (spec `snownet.md` §4.1): STUN (method, class, attributes), TURN ChannelData (channel and what it
/// carries), WireGuard (type, indices, counter), or other; groups them into peers, relays and WireGuard
/// sessions. Malformed messages are reported, never fatal.
public struct UnderlayDissector {
    public private(set) var report = DissectReport()
    /// Whether to keep a line per datagram in the report.
    public var keepDatagrams: Bool
    private var sessions: [UInt32: Int] = [:]
    private var peerIndex: [String: Int] = [:]

    public init(keepDatagrams: Bool = true) {
        self.keepDatagrams = keepDatagrams
    }

    /// Classifies one capture record; returns the datagram's classification, or `nil` when it carries no UDP.
    @discardableResult
    public mutating func add(_ record: PcapRecord, linkType: LinkType) -> DissectedDatagram? {
        report.frames += 1
        guard let ip = LinkLayer.ipPacket(in: record.data, linkType: linkType) else {
            report.framesWithoutIp += 1
            return nil
        }
        if record.isTruncated { report.truncatedFrames += 1 }
        let packet: IpPacket
        do {
            packet = try IpPacket(copying: ip)
        } catch {
            report.rejectedIpPackets += 1
            report.malformed.append(.init(packet: record.number, message: "IP packet rejected: \(error)"))
            return nil
        }
        defer { PacketBufferPool.shared.recycle(packet) }
        guard let udp = packet.udp else {
            report.nonUdpPackets += 1
            return nil
        }
        let source = SocketAddress(ip: packet.source, port: udp.sourcePort)
        let destination = SocketAddress(ip: packet.destination, port: udp.destinationPort)
        var datagram = packet.withUnsafeBytes { bytes in
            Self.classify(UnsafeRawBufferPointer(rebasing: bytes[udp.payloadRange]))
        }
        datagram.packet = record.number
        datagram.source = source.description
        datagram.destination = destination.description
        tally(datagram, from: source, to: destination)
        if keepDatagrams { report.datagrams.append(datagram) }
        return datagram
    }

    /// Classifies one UDP payload.
    public static func classify(_ payload: UnsafeRawBufferPointer) -> DissectedDatagram {
        var datagram = DissectedDatagram()
        switch DatagramKind.classify(payload) {
        case .stun:
            datagram.kind = .stun
            datagram.stunType = UInt16(payload[0]) << 8 | UInt16(payload[1])
            do {
                let message = try StunMessage(decoding: Array(payload))
                datagram.summary = "STUN \(message.method) \(message.messageClass) [" +
                    message.attributes.map { StunAttributeNames.name(of: $0.type) }.joined(separator: ", ") + "]"
            } catch {
                datagram.kind = .malformed
                datagram.summary = "malformed STUN: \(error)"
            }
        case .channelData:
            do {
                let (channel, range) = try ChannelData.decode(payload)
                datagram.kind = .channelData
                datagram.channel = channel
                let inner = classify(UnsafeRawBufferPointer(rebasing: payload[range]))
                datagram.inner = inner.kind == .malformed ? .other : inner.kind
                datagram.summary = "ChannelData 0x\(String(channel, radix: 16)) carrying \(inner.summary)"
            } catch {
                datagram.kind = .malformed
                datagram.summary = "malformed ChannelData: \(error)"
            }
        case .other:
            if let legacy = legacyChannelData(payload) {
                datagram = legacy
            } else {
                classifyWireGuard(payload, into: &datagram)
            }
        }
        return datagram
    }

    /// RFC 5766 allowed channels up to 0x7FFF (coturn still uses them); RFC 8656, and with it the tunnel's
    /// de-multiplexer, only 0x4000–0x4FFF. Dissect mode names them ChannelData, marked as outside the range.
    private static func legacyChannelData(_ payload: UnsafeRawBufferPointer) -> DissectedDatagram? {
        guard payload.count >= 4, (0x50...0x7F).contains(payload[0]) else { return nil }
        let channel = UInt16(payload[0]) << 8 | UInt16(payload[1])
        let length = Int(payload[2]) << 8 | Int(payload[3])
        guard 4 + length <= payload.count else { return nil }
        var datagram = DissectedDatagram()
        datagram.kind = .channelData
        datagram.channel = channel
        let inner = classify(UnsafeRawBufferPointer(rebasing: payload[4..<(4 + length)]))
        datagram.inner = inner.kind == .malformed ? .other : inner.kind
        datagram.summary = "ChannelData 0x\(String(channel, radix: 16)) (RFC 5766 range, outside RFC 8656's) carrying \(inner.summary)"
        return datagram
    }

    private static func classifyWireGuard(_ payload: UnsafeRawBufferPointer, into datagram: inout DissectedDatagram) {
        switch WireGuardMessage.peek(payload) {
        case .initiation(let sender)?:
            datagram.set(.initiation, sender: sender, receiver: nil, counter: nil)
        case .response(let sender, let receiver)?:
            datagram.set(.response, sender: sender, receiver: receiver, counter: nil)
        case .cookieReply(let receiver)?:
            datagram.set(.cookieReply, sender: nil, receiver: receiver, counter: nil)
        case .data(let receiver, let counter)?:
            datagram.set(.data, sender: nil, receiver: receiver, counter: counter)
        case nil:
            if let first = payload.first, (1...4).contains(first), payload.count >= 4, payload[1] == 0, payload[2] == 0, payload[3] == 0 {
                datagram.kind = .malformed
                datagram.summary = "malformed WireGuard: type \(first) with \(payload.count) bytes"
            } else {
                datagram.kind = .other
                datagram.summary = "other (\(payload.count) bytes)"
            }
        }
    }

    private mutating func tally(_ datagram: DissectedDatagram, from source: SocketAddress, to destination: SocketAddress) {
        report.datagramCount += 1
        report.byKind[datagram.kind.rawValue, default: 0] += 1
        if datagram.kind == .malformed { report.malformed.append(.init(packet: datagram.packet, message: datagram.summary)) }
        if datagram.kind == .stun, let type = datagram.stunType {
            report.stunByType[StunAttributeNames.messageName(type), default: 0] += 1
            // A relay answers allocations and refreshes; its socket is the source of those answers.
            if type == 0x0103 || type == 0x0104 || type == 0x0109 { report.relays.insert(source.description) }
        }
        if datagram.kind == .channelData, let channel = datagram.channel {
            report.channels["0x" + String(channel, radix: 16), default: 0] += 1
            if let inner = datagram.inner { report.channelDataCarrying[inner.rawValue, default: 0] += 1 }
            if destination.port == 3478 { report.relays.insert(destination.description) }
        }
        if let type = datagram.wireGuardType { report.wireGuardByType[type.rawValue, default: 0] += 1 }
        trackSession(datagram)
        let pair = [source.description, destination.description].sorted().joined(separator: " ⇄ ")
        if let index = peerIndex[pair] {
            report.peers[index].datagrams += 1
        } else {
            peerIndex[pair] = report.peers.count
            report.peers.append(.init(endpoints: pair, datagrams: 1))
        }
    }

    private mutating func trackSession(_ datagram: DissectedDatagram) {
        switch datagram.wireGuardType {
        case .initiation?:
            guard let sender = datagram.senderIndex else { return }
            sessions[sender] = report.sessions.count
            report.sessions.append(.init(initiatorIndex: sender))
        case .response?:
            guard let sender = datagram.senderIndex, let receiver = datagram.receiverIndex, let index = sessions[receiver] else { return }
            report.sessions[index].responderIndex = sender
            sessions[sender] = index
        case .data?:
            guard let receiver = datagram.receiverIndex, let index = sessions[receiver] else {
                report.dataWithoutHandshake += 1
                return
            }
            if report.sessions[index].initiatorIndex == receiver {
                report.sessions[index].dataToInitiator += 1
            } else {
                report.sessions[index].dataToResponder += 1
            }
        default:
            break
        }
    }
}
