import Dns
import IpPacket
import PcapFile
import SansIO
import Stun
import Tunnel
import Turn

/// Tunnel mode: runs a capture of a client's IP traffic through a real client and gateway in one process,
/// with the capture's timestamps as the clock, and reports what happened to every packet.
///
/// Packets from the client (see ``ClientAddressPlan``) enter the client's TUN device; packets to it are the
/// resources' replies and enter the gateway's TUN device once the request they answer has left it.
public final class TunnelReplay {
    public struct Options: Sendable {
        public var scenario: ReplayScenario
        /// Where to write `wire.pcap`, `gateway-egress.pcap` and `client-tun.pcap`; `nil` writes none.
        public var outputDirectory: String?
        /// How long the replay runs on after the last packet, so what is in flight arrives.
        public var drain: Duration = .seconds(5)
        /// A pause in the capture longer than this is shortened to it. The client's and gateway's timers run
        /// through every simulated second, so a clock that jumps by years would take hours to replay; every
        /// idle timeout of the tunnel (WireGuard, ICE, NAT sessions) is far shorter than the default hour.
        public var longestPause: Duration = .seconds(3600)
        public var seed: UInt64 = 1
        /// Where a flow goes when its destination is both a DNS resource's captured answer and inside a CIDR
        /// resource, and nothing in the flow (HTTP Host, TLS server name) says which it meant.
        public var prefer = ResourcePreference.cidr
        /// Collect what ``TunnelReplay/timeline(title:)`` draws.
        public var drawsTimeline = false

        public init(scenario: ReplayScenario, outputDirectory: String? = nil) {
            self.scenario = scenario
            self.outputDirectory = outputDirectory
        }
    }

    public let path: String
    public let options: Options
    public private(set) var report = TunnelReport()

    private let reader: PcapReader
    private(set) var world: ReplayWorld!
    private var outputs: ReplayOutputs?
    private var dns = CapturedDns()
    private var resources = ResourceSide()
    private var addressPlan = ClientAddressPlan()
    private var firstTimestamp: Int64 = 0
    /// The latest capture time seen, and how much of the capture's pauses the replay left out.
    private var latestTimestamp: Int64 = 0
    private var skippedNanoseconds: Int64 = 0
    private var routes: [IpNetwork] = []
    private var ambiguity = AmbiguityResolver(preference: .cidr)
    private var proxiedAmbiguousFlows: Set<ClientFlowKey> = []
    private var recorder: TimelineRecorder?
    private var verdictsSoFar: [String: Int] = [:]
    private lazy var cidrResources: [IpNetwork] = options.scenario.clientResources.compactMap {
        if case .cidr(let cidr) = $0 { cidr.address } else { nil }
    }

    /// Opens the capture and finds the client's tunnel addresses in it.
    public init(path: String, options: Options) throws(ReplayInputError) {
        self.path = path
        self.options = options
        do {
            reader = try PcapReader(path: path)
        } catch {
            throw ReplayInputError("cannot open capture: \(error)")
        }
        report.capture.path = path
        report.capture.linkType = reader.linkType.description
        recorder = options.drawsTimeline ? TimelineRecorder() : nil
    }

    /// The replay drawn (``Timeline``): the wire between client, gateway and relay per endpoint pair, and the
    /// client's packets per second by verdict, each way. `nil` unless ``Options/drawsTimeline``.
    public func timeline(title: String) -> Timeline? {
        recorder?.timeline(title: title, subtitle: "\(report.capture.frames) frames replayed; the wire: \(report.wire.datagrams) datagrams, "
                           + "path \(report.wire.path)")
    }

    /// The capture's size, for progress.
    public var fileSize: Int64 { reader.fileSize }
    public var bytesRead: Int64 { reader.bytesRead }

    /// Replays the whole capture. `progress` is called every 4096 records. A capture that cannot be read
    /// to its end still yields a report of everything before the damage, with ``TunnelReport/error`` set.
    public func run(progress: (TunnelReplay) -> Void = { _ in }) throws(ReplayInputError) -> TunnelReport {
        addressPlan = ClientAddressPlan.find(in: path, resources: cidrResources)
        let hasDnsResources = options.scenario.clientResources.contains { if case .dns = $0 { true } else { false } }
        // Only a scenario with both kinds of resource can make a destination ambiguous; only then the extra pass.
        ambiguity = hasDnsResources && !cidrResources.isEmpty
            ? .scanningNames(in: path, preference: options.prefer) : AmbiguityResolver(preference: options.prefer)
        report.clientAddresses = addressPlan.descriptions
        if let directory = options.outputDirectory {
            outputs = try ReplayOutputs(directory: directory)
            report.outputs = outputs?.paths ?? [:]
        }
        do {
            while let record = try reader.next() {
                if world == nil { try startWorld(at: record.timestampNanoseconds) }
                replay(record)
                if record.number % 4096 == 0 { progress(self) }
            }
        } catch {
            report.error = "\(error)"
        }
        if let world {
            world.advance(to: world.now + options.drain)
            finish()
            recordVerdicts(at: latestTimestamp)
        }
        outputs?.close()
        progress(self)
        return report
    }

    // MARK: Setup

    private func startWorld(at timestamp: Int64) throws(ReplayInputError) {
        firstTimestamp = timestamp
        latestTimestamp = timestamp
        report.capture.firstTimestampNanoseconds = timestamp
        let world = ReplayWorld(scenario: options.scenario, clientIpv4: addressPlan.ipv4, clientIpv6: addressPlan.ipv6,
                                unixTimeNanoseconds: timestamp, seed: options.seed)
        self.world = world
        world.onWire = { [unowned self] datagram in wire(datagram) }
        world.onGatewayEgress = { [unowned self] packet in gatewayEgress(packet) }
        world.onClientTun = { [unowned self] packet in clientTun(packet) }
        world.onClientEvent = { [unowned self] event in clientEvent(event) }
        world.onGatewayEvent = { [unowned self] event in gatewayEvent(event) }
        world.onGatewayDrop = { [unowned self] drop, fromClient in
            gatewayDropped(reason: "\(drop)", filtered: drop == .prohibited, fromClient: fromClient)
        }
        world.onGatewayRefusedPacket = { [unowned self] fromClient in
            gatewayDropped(reason: Self.refusedPacket, filtered: false, fromClient: fromClient)
        }
        world.onPipelineError = { [unowned self] message in report.addPipelineError(message) }
        do {
            try world.start()
        } catch {
            throw ReplayInputError("the replay's portal messages did not decode: \(error)")
        }
    }

    private var startInstant: Instant { ReplayWorld.start }

    /// The replay's clock for a capture time, with every pause so far over `longestPause` shortened to it (and counted
    /// when `timestamp` ends one). Timestamps are 0 ... Int64.max, so their differences cannot overflow.
    private func instantShorteningPauses(_ timestamp: Int64) -> Instant {
        let pause = timestamp - latestTimestamp
        let longest = options.longestPause.totalNanoseconds
        if pause > longest {
            skippedNanoseconds += pause - longest
            report.capture.shortenedPauses += 1
        }
        latestTimestamp = max(latestTimestamp, timestamp)
        return startInstant + .nanoseconds(max(0, timestamp - firstTimestamp - skippedNanoseconds))
    }

    private var unixNow: Int64 {
        let (now, overflowed) = (firstTimestamp + skippedNanoseconds).addingReportingOverflow((world.now - startInstant).totalNanoseconds)
        return overflowed ? .max : now
    }

    // MARK: Each record

    private func replay(_ record: PcapRecord) {
        report.capture.frames += 1
        report.capture.lastTimestampNanoseconds = record.timestampNanoseconds
        noteLinkType(record.linkType)
        guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType) else {
            report.capture.framesWithoutIp += 1
            return
        }
        if record.isTruncated { report.capture.truncatedFrames += 1 }
        var packet: IpPacket
        do {
            packet = try IpPacket(copying: ip)
        } catch {
            report.parser.rejected += 1
            report.parser.byReason[error.reason.identifier, default: 0] += 1
            if report.parser.rejections.count < 100 {
                report.parser.rejections.append(.init(packet: record.number, reason: error.reason.identifier, message: "\(error)"))
            }
            return
        }
        report.parser.parsed += 1
        world.advance(to: instantShorteningPauses(record.timestampNanoseconds))
        addressPlan.translate(&packet)
        if addressPlan.isClient(packet.source) {
            fromClient(&packet)
        } else if addressPlan.isClient(packet.destination) {
            fromResource(&packet, number: record.number)
        } else {
            report.otherTraffic.add(bytes: packet.count)
        }
        recordVerdicts(at: record.timestampNanoseconds)
    }

    /// Each verdict given since the last record, counted on the timeline at this record's time.
    private func recordVerdicts(at timestamp: Int64) {
        guard recorder != nil else { return }
        for (row, tallies) in [("client → resources", report.clientToResource), ("resources → client", report.resourceToClient)] {
            for (verdict, tally) in tallies {
                let key = row + verdict
                let new = tally.packets - verdictsSoFar[key, default: 0]
                guard new > 0 else { continue }
                verdictsSoFar[key] = tally.packets
                recorder?.count(verdict, row: row, at: timestamp, amount: new)
            }
        }
    }

    /// Whether a packet to a DNS resource's real address goes to its proxy IP: yes, unless a CIDR resource
    /// contains the address too and the flow is decided for it (``AmbiguityResolver``).
    private func sendsToDnsResource(_ packet: IpPacket) -> Bool {
        guard let cidr = cidrResources.first(where: { $0.contains(packet.destination) }),
              let name = dns.nameForReal[packet.destination] else { return true }
        let toDns = ambiguity.sendsToDnsResource(packet, dnsName: name, cidr: cidr)
        report.ambiguousFlowCount = ambiguity.flowCount
        report.ambiguousFlows = ambiguity.flows
        if toDns, proxiedAmbiguousFlows.count < AmbiguityResolver.scanLimit { proxiedAmbiguousFlows.insert(ClientFlowKey(packet)) }
        return toDns
    }

    /// Whether the gateway's DNS NAT translated `packet` (it left the gateway to a DNS resource's real address
    /// because the client sent it to the proxy IP), rather than routed it to a CIDR resource.
    private func wasTranslated(_ packet: IpPacket) -> Bool {
        guard dns.translatedReal.contains(packet.destination) else { return false }
        let ambiguous = dns.nameForReal[packet.destination] != nil && cidrResources.contains { $0.contains(packet.destination) }
        return !ambiguous || proxiedAmbiguousFlows.contains(ClientFlowKey(packet))
    }

    /// A pcapng capture can mix link types (one per interface); the report names every one seen.
    private func noteLinkType(_ linkType: LinkType) {
        guard linkType != reader.linkType, !report.capture.linkType.split(separator: "+").contains(Substring(linkType.description)) else { return }
        report.capture.linkType += "+\(linkType)"
    }

    private func fromClient(_ packet: inout IpPacket) {
        let size = packet.count
        if let proxy = dns.proxyForReal[packet.destination], sendsToDnsResource(packet) { try? packet.setDestination(proxy) }
        guard isRouted(packet.destination) else {
            report.add(.notAResource, bytes: size)
            return
        }
        let before = world.client.statistics.drops, refusedBefore = world.clientRefusedPackets
        world.fromClientTun(packet)
        if let drop = Self.newDrop(before, world.client.statistics.drops) {
            report.add(.droppedByClient, bytes: size)
            report.clientDrops["\(drop)", default: 0] += 1
        } else if world.clientRefusedPackets > refusedBefore {
            report.add(.droppedByClient, bytes: size)
            report.clientDrops[Self.refusedPacket, default: 0] += 1
        } else if isDnsServer(packet.destination) {
            report.add(.stubResolver, bytes: size)
        } else {
            sentToGateway += 1
        }
    }

    /// Whether the client's stub resolver listens at `address` (a sentinel mapped to an upstream).
    private func isDnsServer(_ address: IpAddress) -> Bool {
        world.client.tunConfig?.dnsServers.contains(address) ?? false
    }

    private func isRouted(_ destination: IpAddress) -> Bool {
        if routes.isEmpty, let config = world.client.tunConfig { routes = config.routes }
        return routes.contains { $0.contains(destination) }
    }

    private func fromResource(_ packet: inout IpPacket, number: Int) {
        if isDnsServer(packet.source) {
            useCapturedDnsAnswer(packet)
            return
        }
        let admission = resources.admit(packet, number: number)
        for givenUp in admission.givenUp { report.add(.noRequest, bytes: givenUp.count) }
        if admission.ready { inject(&packet) }
    }

    private func inject(_ packet: inout IpPacket) {
        injected += 1
        world.fromResource(&packet)
    }

    private func useCapturedDnsAnswer(_ packet: IpPacket) {
        report.add(.dnsAnswerUsed, bytes: packet.count)
        guard let udp = packet.udp, let message = try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange)) else { return }
        answer(dns.learnCaptured(message))
    }

    private func answer(_ replies: [CapturedDns.Reply]) {
        for reply in replies {
            switch reply {
            case let .recursion(pending, message): world.answerRecursion(pending, with: message)
            case let .resolution(request, addresses): world.answerResolution(request, with: addresses)
            case let .forward(query, message): world.answerForwardedDns(query, with: message)
            }
        }
    }

    // MARK: What comes out

    private var sentToGateway = 0
    private var gatewayOutcomes = 0
    private var injected = 0
    private var resourceOutcomes = 0

    private func gatewayEgress(_ packet: IpPacket) {
        gatewayOutcomes += 1
        outputs?.write(packet, to: .gatewayEgress, at: unixNow)
        report.add(wasTranslated(packet) ? .natTranslated : .routed, bytes: packet.count)
        for var (_, reply) in resources.requestLeftGateway(packet) { inject(&reply) }
    }

    private func clientTun(_ packet: IpPacket) {
        outputs?.write(packet, to: .clientTun, at: unixNow)
        if packet.isUdp, isDnsServer(packet.source) {
            report.clientTun["stub-answers", default: Tally()].add(bytes: packet.count)
            if let udp = packet.udp, let message = try? DnsMessage(decoding: packet.bytes(in: udp.payloadRange)) { dns.learnStubAnswer(message) }
            return
        }
        if packet.isTcp, isDnsServer(packet.source) {
            report.clientTun["stub-answers", default: Tally()].add(bytes: packet.count)
            return
        }
        // The gateway answers a refused packet with ICMP from the resource's address, as a router would.
        if let error = try? packet.icmpError(), error.isProhibited || error.isNetworkUnreachable {
            report.clientTun["icmp-errors", default: Tally()].add(bytes: packet.count)
            if error.isProhibited { report.clientToResource[ClientVerdict.filtered.rawValue, default: Tally()].bytes += quotedLength(packet, error) }
            return
        }
        report.clientTun["replies", default: Tally()].add(bytes: packet.count)
        resourceOutcomes += 1
        report.add(.delivered, bytes: packet.count)
    }

    private func quotedLength(_ packet: IpPacket, _ error: IcmpError) -> Int {
        let header = packet.bytes(in: error.failedPacket.range.lowerBound..<min(packet.count, error.failedPacket.range.lowerBound + 6))
        guard header.count == 6 else { return 0 }
        let field = Int(header[header[0] >> 4 == 4 ? 2 : 4]) << 8 | Int(header[header[0] >> 4 == 4 ? 3 : 5])
        return header[0] >> 4 == 4 ? field : field + 40
    }

    /// The drop reason of a packet a side refused as malformed or unsupported (the parser accepted it, but the
    /// tunnel cannot carry it: an ICMP type the NAT does not translate, …).
    static let refusedPacket = "refused-packet"

    private func gatewayDropped(reason: String, filtered: Bool, fromClient: Bool) {
        report.gatewayDrops[reason, default: 0] += 1
        if fromClient {
            gatewayOutcomes += 1
            if filtered {
                report.clientToResource[ClientVerdict.filtered.rawValue, default: Tally()].packets += 1
            } else {
                report.clientToResource[ClientVerdict.droppedByGateway.rawValue, default: Tally()].packets += 1
            }
        } else {
            resourceOutcomes += 1
            report.resourceToClient[ResourceVerdict.droppedByGateway.rawValue, default: Tally()].packets += 1
        }
    }

    private func wire(_ datagram: Datagram) {
        report.wire.datagrams += 1
        report.wire.bytes += datagram.payload.count
        switch datagram.payload.withUnsafeBytes({ DatagramKind.classify($0) }) {
        case .stun: report.wire.stun += 1
        case .channelData: report.wire.channelData += 1
        default: report.wire.wireGuard += 1
        }
        outputs?.write(datagram, at: unixNow)
        guard recorder != nil else { return }
        var dissected = datagram.payload.withUnsafeBytes { UnderlayDissector.classify($0) }
        dissected.source = datagram.source.description
        dissected.destination = datagram.destination.description
        let pair = [datagram.source.description, datagram.destination.description].sorted().joined(separator: " ⇄ ")
        recorder?.add(dissected, pair: "wire " + pair, at: unixNow)
    }

    private func clientEvent(_ event: ClientEvent) {
        switch event {
        case .tunInterfaceUpdated(let config): routes = config.routes
        case .recurseDns(let pending, _): dns.waitForRecursion(pending)
        case .refused(let message): report.addPipelineError("client refused: " + message)
        default: break
        }
    }

    private func gatewayEvent(_ event: GatewayEvent) {
        switch event {
        case .resolve(let request):
            if let known = dns.resolve(request) { world.later { $0.answerResolution(request, with: known) } }
        case .forwardDns(let query):
            if let answer = dns.forward(query) { world.later { $0.answerForwardedDns(query, with: answer) } }
        case .refused(let message): report.addPipelineError("gateway refused: " + message)
        default: break
        }
    }

    // MARK: The end

    private func finish() {
        let unanswered = dns.takeUnanswered()
        for pending in unanswered.recursions { world.answerRecursion(pending, with: nil) }
        for request in unanswered.resolutions { world.answerResolution(request, with: nil) }
        for query in unanswered.forwards { world.answerForwardedDns(query, with: nil) }
        for packet in resources.takeWaiting() { report.add(.noRequest, bytes: packet.count) }
        report.clientToResource[ClientVerdict.unaccounted.rawValue] = Tally(packets: max(0, sentToGateway - gatewayOutcomes))
        report.resourceToClient[ResourceVerdict.unaccounted.rawValue] = Tally(packets: max(0, injected - resourceOutcomes))
        report.wire.path = world.pathDescription
    }

    private static func newDrop<Reason: Hashable>(_ before: [Reason: Int], _ after: [Reason: Int]) -> Reason? {
        after.first { $0.value > before[$0.key, default: 0] }?.key
    }
}
