/// The outcome of a tunnel-mode replay: what the capture held, what the parser refused, and what happened
/// to every packet in each direction. Encodes to the `--json` report.
public struct TunnelReport: Codable, Sendable {
    public var capture = CaptureSummary()
    public var parser = ParserSummary()
    /// The client's tunnel addresses (taken from the capture).
    public var clientAddresses: [String] = []
    public var clientToResource: [String: Tally] = Dictionary(uniqueKeysWithValues: ClientVerdict.allCases.map { ($0.rawValue, Tally()) })
    public var resourceToClient: [String: Tally] = Dictionary(uniqueKeysWithValues: ResourceVerdict.allCases.map { ($0.rawValue, Tally()) })
    /// IP packets neither from nor to the client's tunnel addresses (neighbour discovery, other hosts).
    public var otherTraffic = Tally()
    public var clientDrops: [String: Int] = [:]
    public var gatewayDrops: [String: Int] = [:]
    /// What the client's TUN device received: `replies` from resources, `stub-answers` from the stub
    /// resolver, `icmp-errors` the gateway originated.
    public var clientTun: [String: Tally] = ["replies": Tally(), "stub-answers": Tally(), "icmp-errors": Tally()]
    /// Datagrams between client, gateway and relay; `path` is how the client reached the gateway at the end.
    public var wire = WireSummary()
    /// The pcaps written, by boundary: `wire`, `gateway-egress`, `client-tun`.
    public var outputs: [String: String] = [:]
    /// Flows to an address that was both a DNS resource's captured answer and inside a CIDR resource: how many,
    /// and the first 100 with the resource each was replayed to and why.
    public var ambiguousFlowCount = 0
    public var ambiguousFlows: [AmbiguousFlow] = []
    /// Packets the client or gateway refused with an error after decryption, and portal messages refused.
    public var pipelineErrors = 0
    /// The first 20 pipeline errors, each with the side that raised it.
    public var pipelineErrorMessages: [String] = []
    /// Set when the capture could not be read to its end: what went wrong, after how many records.
    public var error: String?

    public struct CaptureSummary: Codable, Sendable {
        public var path = ""
        public var linkType = ""
        public var frames = 0
        public var framesWithoutIp = 0
        public var truncatedFrames = 0
        /// Pauses longer than ``TunnelReplay/Options/longestPause`` that the replay shortened to it.
        public var shortenedPauses = 0
        public var firstTimestampNanoseconds: Int64?
        public var lastTimestampNanoseconds: Int64?
    }

    public struct ParserSummary: Codable, Sendable {
        public var parsed = 0
        public var rejected = 0
        public var byReason: [String: Int] = [:]
        /// The first 100 rejections: packet number, reason and the parser's sentence.
        public var rejections: [Rejection] = []
    }

    public struct Rejection: Codable, Sendable {
        public var packet: Int
        public var reason: String
        public var message: String
    }

    public struct WireSummary: Codable, Sendable {
        public var datagrams = 0
        public var bytes = 0
        public var wireGuard = 0
        public var stun = 0
        public var channelData = 0
        public var path = "none"
    }

    public func verdict(_ verdict: ClientVerdict) -> Tally { clientToResource[verdict.rawValue] ?? Tally() }
    public func verdict(_ verdict: ResourceVerdict) -> Tally { resourceToClient[verdict.rawValue] ?? Tally() }

    mutating func addPipelineError(_ message: String) {
        pipelineErrors += 1
        guard pipelineErrorMessages.count < 20 else { return }
        pipelineErrorMessages.append(message)
    }

    mutating func add(_ verdict: ClientVerdict, bytes: Int) { clientToResource[verdict.rawValue, default: Tally()].add(bytes: bytes) }
    mutating func add(_ verdict: ResourceVerdict, bytes: Int) { resourceToClient[verdict.rawValue, default: Tally()].add(bytes: bytes) }
}

extension TunnelReport {
    /// The human summary.
    public var text: String {
        var lines = ["Capture \(capture.path) (\(capture.linkType)): \(capture.frames) frames, \(parser.parsed) IP packets parsed, " +
                     "\(parser.rejected) rejected by the parser, \(capture.framesWithoutIp) frames without IP"]
        if capture.truncatedFrames > 0 { lines.append("  \(capture.truncatedFrames) frames truncated by the snap length") }
        if capture.shortenedPauses > 0 { lines.append("  \(capture.shortenedPauses) pauses shortened to the longest pause") }
        for (reason, count) in parser.byReason.sorted(by: { $0.key < $1.key }) {
            let first = parser.rejections.first { $0.reason == reason }.map { " (first: #\($0.packet): \($0.message))" } ?? ""
            lines.append("  rejected \(reason): \(count)\(first)")
        }
        lines.append("Client \(clientAddresses.joined(separator: ", ")) → resources:")
        for verdict in ClientVerdict.allCases { lines.append(Self.line(verdict.rawValue, self.verdict(verdict))) }
        lines.append("Resources → client:")
        for verdict in ResourceVerdict.allCases { lines.append(Self.line(verdict.rawValue, self.verdict(verdict))) }
        lines.append(Self.line("other traffic", otherTraffic))
        if !clientDrops.isEmpty { lines.append("  client drops: " + Self.list(clientDrops)) }
        if !gatewayDrops.isEmpty { lines.append("  gateway drops: " + Self.list(gatewayDrops)) }
        lines.append("Client TUN received:")
        for key in ["replies", "stub-answers", "icmp-errors"] { lines.append(Self.line(key, clientTun[key] ?? Tally())) }
        lines.append("Wire: \(wire.datagrams) datagrams, \(wire.bytes) bytes (WireGuard \(wire.wireGuard), STUN \(wire.stun), " +
                     "ChannelData \(wire.channelData)); path \(wire.path)")
        if ambiguousFlowCount > 0 {
            lines.append("Ambiguous flows (\(ambiguousFlowCount)): the destination is a DNS resource's answer and inside a CIDR resource")
            for flow in ambiguousFlows {
                lines.append("  \(flow.flow): \(flow.dnsName) or \(flow.cidrResource); replayed to the \(flow.replayedAs == .dns ? "DNS" : "CIDR") resource: \(flow.reason)")
            }
        }
        if pipelineErrors > 0 { lines.append("Pipeline errors: \(pipelineErrors)") }
        for message in pipelineErrorMessages { lines.append("  " + message) }
        for (name, path) in outputs.sorted(by: { $0.key < $1.key }) { lines.append("Wrote \(name): \(path)") }
        if let error { lines.append("Capture ended early: \(error)") }
        return lines.joined(separator: "\n")
    }

    private static func line(_ name: String, _ tally: Tally) -> String {
        "  " + name + String(repeating: " ", count: max(1, 18 - name.count)) + "\(tally.packets) packets, \(tally.bytes) bytes"
    }

    private static func list(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
