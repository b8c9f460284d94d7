import IpPacket
import Noise
import PcapFile
import SansIO
import Stun
import Turn

/// Dissect mode: classifies every UDP datagram of an underlay capture with the toolkit's own de-multiplexer
/// (spec `snownet.md` §4.1): STUN (method, class, attributes), TURN ChannelData (channel and what it
/// carries), WireGuard (type, indices, counter), or other; groups them into peers, relays and WireGuard
/// sessions. Underlay packets are parsed with the outer network's limits (``UnderlayPacket``), fragmented
/// datagrams put back together; frames the capture cut short are counted and named. Malformed messages are
/// reported, never fatal.
public struct UnderlayDissector {
    /// Everything so far, the key log's decryption included.
    public var report: DissectReport {
        var report = tallies
        report.decryption = decrypted?.report
        return report
    }
    private var tallies = DissectReport()
    /// Whether to keep a line per datagram in the report.
    public var keepDatagrams: Bool
    private var sessions: [UInt32: Int] = [:]
    private var peerIndex: [String: Int] = [:]
    private var reassembler = FragmentReassembler()
    private var decrypted: DecryptedTraffic?
    private var timestamp: Int64 = 0
    private var recorder: TimelineRecorder?
    /// Where every WireGuard message found goes as a datagram of its own (``WireGuardExport``); `nil` writes none.
    public var export: WireGuardExport?

    /// - Parameter keyLog: secrets from a WireGuard key log (``WireGuardKeyLog``); with them, WireGuard data
    ///   (direct or inside ChannelData) is decrypted and its inner packets reported (``DissectReport/decryption``).
    /// - Parameter drawsTimeline: collects what ``timeline(title:)`` draws.
    public init(keepDatagrams: Bool = true, keyLog: [WireGuardSessionSecrets]? = nil, drawsTimeline: Bool = false) {
        self.keepDatagrams = keepDatagrams
        recorder = drawsTimeline ? TimelineRecorder() : nil
        decrypted = keyLog.map(DecryptedTraffic.init)
    }

    /// Classifies one capture record; returns its datagram's classification (several when the sender's UDP GSO
    /// coalesced them, see ``DissectReport/coalescedDatagrams``), or none when the record holds no whole UDP
    /// datagram (another protocol, a fragment still waiting for the rest, a truncated frame).
    @discardableResult
    public mutating func add(_ record: PcapRecord) -> [DissectedDatagram] {
        tallies.frames += 1
        timestamp = record.timestampNanoseconds
        guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType) else {
            tallies.framesWithoutIp += 1
            return []
        }
        guard !record.isTruncated else {
            tallies.truncatedFrames += 1
            if tallies.truncated.count < DissectReport.listLimit {
                tallies.truncated.append(.init(packet: record.number, captured: record.data.count, original: record.originalLength))
            }
            return []
        }
        do {
            switch try UnderlayPacket.parse(ip) {
            case .udp(let source, let destination, let payload):
                return add(payload, from: source, to: destination, record: record.number, fragments: nil)
            case .otherProtocol:
                tallies.nonUdpPackets += 1
                return []
            case .fragment(let fragment):
                guard let whole = try reassembler.add(fragment, at: record.timestampNanoseconds) else {
                    tallies.fragmentsHeld += 1
                    return []
                }
                return try whole.withUnsafeBytes { bytes throws(UnderlayPacketError) in
                    guard case .udp(let source, let destination, let payload) =
                            try UnderlayPacket.udp(bytes, from: fragment.key.source, to: fragment.key.destination) else { return [] }
                    tallies.reassembledDatagrams += 1
                    return add(payload, from: source, to: destination, record: record.number, fragments: true)
                }
            }
        } catch {
            tallies.rejectedIpPackets += 1
            noteMalformed(record.number, "underlay IP packet rejected: \(error)")
            return []
        }
    }

    /// The timeline of what was added so far, when the dissector draws one.
    public func timeline(title: String) -> Timeline? {
        recorder?.timeline(title: title, subtitle: "\(tallies.frames) frames, \(tallies.datagramCount) messages, "
                           + "\(tallies.peers.count) endpoint pairs, \(tallies.sessions.count) WireGuard sessions")
    }

    /// Ends the capture: fragments still waiting for the rest of their datagram are given up and counted.
    public mutating func finish() {
        _ = reassembler.abandonAll()
        tallies.incompleteDatagrams = reassembler.abandoned
    }

    private mutating func add(_ payload: UnsafeRawBufferPointer, from source: SocketAddress, to destination: SocketAddress,
                              record: Int, fragments: Bool?) -> [DissectedDatagram] {
        guard let segments = CoalescedDatagrams.segments(of: payload) else {
            return [add(payload, from: source, to: destination, record: record, fragments: fragments, segment: nil)]
        }
        tallies.coalescedDatagrams += 1
        tallies.coalescedSegments += segments.count
        return segments.enumerated().map { index, range in
            add(UnsafeRawBufferPointer(rebasing: payload[range]), from: source, to: destination, record: record, fragments: fragments,
                segment: "\(index + 1) of \(segments.count)")
        }
    }

    private mutating func add(_ payload: UnsafeRawBufferPointer, from source: SocketAddress, to destination: SocketAddress,
                              record: Int, fragments: Bool?, segment: String?) -> DissectedDatagram {
        var datagram = Self.classify(payload)
        datagram.coalesced = segment
        datagram.packet = record
        datagram.source = source.description
        datagram.destination = destination.description
        datagram.reassembled = fragments
        let pair = [source.description, destination.description].sorted().joined(separator: " ⇄ ")
        recorder?.add(datagram, pair: pair, at: timestamp)
        // A relayed session's handshake and data travel inside ChannelData: tracked like direct ones.
        if datagram.kind == .channelData, let message = Self.wireGuardMessage(in: payload, datagram) {
            let inner = Self.classify(message)
            trackSession(inner)
            if inner.wireGuardType != .data, inner.kind == .wireGuard {
                recorder?.mark(inner.summary + " in ChannelData", .handshake, row: pair, at: timestamp)
            }
        }
        if decrypted != nil || export != nil, let message = Self.wireGuardMessage(in: payload, datagram) {
            datagram.decrypted = decrypted?.add(message)
                        if let inner = datagram.decrypted {
                recorder?.count(inner.accepted ? "inner packets" : "inner packets refused", row: pair, at: timestamp)
            }
            do {
                try export?.write(message, from: source, to: destination, at: timestamp)
            } catch {
                tallies.error = "writing \(export?.path ?? ""): \(error)"
                export = nil
            }
        }
        tally(datagram, from: source, to: destination)
        if keepDatagrams { tallies.datagrams.append(datagram) }
        return datagram
    }

    /// The WireGuard message a datagram is or carries in ChannelData.
    private static func wireGuardMessage(in payload: UnsafeRawBufferPointer, _ datagram: DissectedDatagram) -> UnsafeRawBufferPointer? {
        if datagram.kind == .wireGuard { return payload }
        guard datagram.kind == .channelData, datagram.inner == .wireGuard, payload.count >= 4 else { return nil }
        let length = Int(payload[2]) << 8 | Int(payload[3])
        guard 4 + length <= payload.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: payload[4..<(4 + length)])
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
        tallies.datagramCount += 1
        tallies.byKind[datagram.kind.rawValue, default: 0] += 1
        if datagram.kind == .malformed { noteMalformed(datagram.packet, datagram.summary) }
        if datagram.kind == .stun, let type = datagram.stunType {
            tallies.stunByType[StunAttributeNames.messageName(type), default: 0] += 1
            // A relay answers allocations and refreshes; its socket is the source of those answers.
            if type == 0x0103 || type == 0x0104 || type == 0x0109 { tallies.relays.insert(source.description) }
        }
        if datagram.kind == .channelData, let channel = datagram.channel {
            tallies.channels["0x" + String(channel, radix: 16), default: 0] += 1
            if let inner = datagram.inner { tallies.channelDataCarrying[inner.rawValue, default: 0] += 1 }
            if destination.port == 3478 { tallies.relays.insert(destination.description) }
        }
        if let type = datagram.wireGuardType { tallies.wireGuardByType[type.rawValue, default: 0] += 1 }
        trackSession(datagram)
        let pair = [source.description, destination.description].sorted().joined(separator: " ⇄ ")
        if let index = peerIndex[pair] {
            tallies.peers[index].datagrams += 1
        } else {
            peerIndex[pair] = tallies.peers.count
            tallies.peers.append(.init(endpoints: pair, datagrams: 1))
        }
    }

    private mutating func noteMalformed(_ packet: Int, _ message: String) {
        guard tallies.malformed.count < DissectReport.listLimit else { return }
        tallies.malformed.append(.init(packet: packet, message: message))
    }

    private mutating func trackSession(_ datagram: DissectedDatagram) {
        switch datagram.wireGuardType {
        case .initiation?:
            guard let sender = datagram.senderIndex else { return }
            sessions[sender] = tallies.sessions.count
            tallies.sessions.append(.init(initiatorIndex: sender))
        case .response?:
            guard let sender = datagram.senderIndex, let receiver = datagram.receiverIndex, let index = sessions[receiver] else { return }
            tallies.sessions[index].responderIndex = sender
            sessions[sender] = index
        case .data?:
            guard let receiver = datagram.receiverIndex, let index = sessions[receiver] else {
                tallies.dataWithoutHandshake += 1
                return
            }
            if tallies.sessions[index].initiatorIndex == receiver {
                tallies.sessions[index].dataToInitiator += 1
            } else {
                tallies.sessions[index].dataToResponder += 1
            }
        default:
            break
        }
    }
}
