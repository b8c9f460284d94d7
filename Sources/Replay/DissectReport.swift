/// One datagram as dissect mode classified it.
public struct DissectedDatagram: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case stun
        case channelData = "channel-data"
        case wireGuard = "wireguard"
        case malformed
        case other
    }

    public enum WireGuardType: String, Codable, Sendable {
        case initiation, response, cookieReply = "cookie-reply", data

        /// The message type number on the wire (tshark's `wg.type`).
        public var number: Int {
            switch self {
            case .initiation: 1
            case .response: 2
            case .cookieReply: 3
            case .data: 4
            }
        }
    }

    public var packet = 0
    public var source = ""
    public var destination = ""
    public var kind = Kind.other
    /// The STUN message type word (tshark's `stun.type`).
    public var stunType: UInt16?
    public var channel: UInt16?
    /// What a ChannelData message carries.
    public var inner: Kind?
    public var wireGuardType: WireGuardType?
    public var senderIndex: UInt32?
    public var receiverIndex: UInt32?
    public var counter: UInt64?
    /// `true` when the datagram came in IP fragments and was put back together at this packet.
    public var reassembled: Bool?
    /// "2 of 3" when the sender's UDP GSO coalesced this message with others into one captured datagram.
    public var coalesced: String?
    /// The inner packet of a WireGuard data message, decrypted with a key log.
    public var decrypted: DecryptedPacket?
    public var summary = ""

    mutating func set(_ type: WireGuardType, sender: UInt32?, receiver: UInt32?, counter: UInt64?) {
        kind = .wireGuard
        wireGuardType = type
        senderIndex = sender
        receiverIndex = receiver
        self.counter = counter
        summary = "WireGuard \(type.rawValue)" + (sender.map { " sender \($0)" } ?? "") + (receiver.map { " receiver \($0)" } ?? "")
            + (counter.map { " counter \($0)" } ?? "")
    }
}

/// Dissect mode's report.
public struct DissectReport: Codable, Sendable {
    /// How many entries the per-packet lists (truncated, malformed) keep.
    public static let listLimit = 100

    public var frames = 0
    public var framesWithoutIp = 0
    /// Frames the capture's snap length cut short: counted and named, not classified.
    public var truncatedFrames = 0
    public var truncated: [Truncated] = []
    public var rejectedIpPackets = 0
    public var nonUdpPackets = 0
    /// Frames holding a fragment that did not complete its datagram.
    public var fragmentsHeld = 0
    /// Datagrams put back together from fragments (each counted in `datagramCount` too).
    public var reassembledDatagrams = 0
    /// Fragmented datagrams whose other fragments never came.
    public var incompleteDatagrams = 0
    /// Messages classified: one per UDP datagram, or one per segment of a coalesced one.
    public var datagramCount = 0
    /// UDP datagrams that held several messages coalesced by the sender's GSO (captured before the kernel cut
    /// them), and how many messages they held together.
    public var coalescedDatagrams = 0
    public var coalescedSegments = 0
    public var byKind: [String: Int] = [:]
    public var stunByType: [String: Int] = [:]
    public var channels: [String: Int] = [:]
    /// What ChannelData messages carried (WireGuard when a tunnel is relayed).
    public var channelDataCarrying: [String: Int] = [:]
    public var wireGuardByType: [String: Int] = [:]
    /// UDP endpoint pairs, in order of first appearance.
    public var peers: [Peer] = []
    /// Relay sockets: sources of allocation answers, destinations of ChannelData on port 3478.
    public var relays: Set<String> = []
    /// WireGuard handshakes, paired by index, with the data that used each.
    public var sessions: [Session] = []
    public var dataWithoutHandshake = 0
    public var malformed: [Malformed] = []
    /// Present when a key log was given: what its secrets decrypted.
    public var decryption: DecryptionReport?
    public var datagrams: [DissectedDatagram] = []
    public var error: String?

    public struct Peer: Codable, Sendable {
        public var endpoints: String
        public var datagrams: Int
    }

    public struct Session: Codable, Sendable {
        public var initiatorIndex: UInt32
        public var responderIndex: UInt32?
        public var dataToInitiator = 0
        public var dataToResponder = 0
    }

    public struct Truncated: Codable, Sendable {
        public var packet: Int
        public var captured: Int
        public var original: Int
    }

    public struct Malformed: Codable, Sendable {
        public var packet: Int
        public var message: String
    }
}

extension DissectReport {
    /// The human summary.
    public var text: String {
        var lines = ["\(frames) frames, \(datagramCount) UDP datagrams, \(nonUdpPackets) other IP packets, " +
                     "\(framesWithoutIp) frames without IP, \(rejectedIpPackets) IP packets rejected"]
        if truncatedFrames > 0 {
            lines.append("\(truncatedFrames) frames truncated by the snap length, not classified: " +
                         truncated.map { "#\($0.packet) (\($0.captured) of \($0.original) bytes)" }.joined(separator: ", ") +
                         (truncatedFrames > truncated.count ? ", …" : ""))
        }
        if coalescedDatagrams > 0 {
            lines.append("\(coalescedDatagrams) UDP datagrams held \(coalescedSegments) messages coalesced by the sender's GSO, "
                         + "captured before segmentation: split and classified one by one")
        }
        if reassembledDatagrams + fragmentsHeld + incompleteDatagrams > 0 {
            lines.append("IP fragments: \(reassembledDatagrams) datagrams reassembled, \(fragmentsHeld) frames held as fragments, " +
                         "\(incompleteDatagrams) datagrams incomplete")
        }
        lines.append("By kind: " + Self.list(byKind))
        if !stunByType.isEmpty { lines.append("STUN: " + Self.list(stunByType)) }
        if !channels.isEmpty {
            lines.append("ChannelData by channel: " + Self.list(channels) + "; carrying " + Self.list(channelDataCarrying))
        }
        if !wireGuardByType.isEmpty { lines.append("WireGuard: " + Self.list(wireGuardByType)) }
        lines.append("Relays: " + (relays.isEmpty ? "none" : relays.sorted().joined(separator: ", ")))
        lines.append("Peers (\(peers.count)):")
        for peer in peers { lines.append("  \(peer.endpoints): \(peer.datagrams) datagrams") }
        lines.append("WireGuard sessions (\(sessions.count)):")
        for session in sessions {
            lines.append("  \(session.initiatorIndex) ⇄ \(session.responderIndex.map(String.init) ?? "no response"): " +
                         "\(session.dataToResponder) data to the responder, \(session.dataToInitiator) to the initiator")
        }
        if dataWithoutHandshake > 0 { lines.append("  data without a captured handshake: \(dataWithoutHandshake)") }
        if let decryption { lines += decryption.lines }
        for entry in malformed { lines.append("Malformed #\(entry.packet): \(entry.message)") }
        if let error { lines.append("Capture ended early: \(error)") }
        return lines.joined(separator: "\n")
    }

    private static func list(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

extension DecryptionReport {
    /// The report's lines for a person.
    var lines: [String] {
        var lines = ["Decrypted with the key log (\(keyLogEntries) entries): \(sessions.count) sessions, "
                     + "\(sessions.reduce(0) { $0 + $1.packets }) inner packets, \(keepalives) keepalives; "
                     + "\(dataWithoutKeys) data messages without keys, \(failedToOpen) that did not open"]
        for session in sessions {
            lines.append("  \(session.initiatorIndex) ⇄ \(session.responderIndex) (the \(session.secretsOf)'s secrets): "
                         + "\(session.packets) packets, \(session.bytes) bytes; " + Self.list(session.byProtocol))
            if !session.rejected.isEmpty { lines.append("    refused by the strict parser: " + Self.list(session.rejected)) }
            if !session.dnsNames.isEmpty { lines.append("    DNS names asked: " + session.dnsNames.joined(separator: ", ")) }
            lines.append("    flows (\(session.flowCount)): " + session.flows.joined(separator: ", ")
                         + (session.flowCount > session.flows.count ? ", …" : ""))
        }
        return lines
    }

    private static func list(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
