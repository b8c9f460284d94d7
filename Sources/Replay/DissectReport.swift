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
    public var frames = 0
    public var framesWithoutIp = 0
    public var truncatedFrames = 0
    public var rejectedIpPackets = 0
    public var nonUdpPackets = 0
    public var datagramCount = 0
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
        if truncatedFrames > 0 { lines.append("\(truncatedFrames) frames truncated by the snap length") }
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
        for entry in malformed { lines.append("Malformed #\(entry.packet): \(entry.message)") }
        if let error { lines.append("Capture ended early: \(error)") }
        return lines.joined(separator: "\n")
    }

    private static func list(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
