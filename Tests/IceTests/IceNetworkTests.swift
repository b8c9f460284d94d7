import Ice
import SansIO
import Testing

/// Two agents on an in-memory network with a virtual clock.
final class IcePair {
    let client: IceAgent
    let gateway: IceAgent
    var now = Instant(nanoseconds: 1_000_000_000)
    var linkUp = true
    var delivered: [(IceAgent, IceEvent)] = []

    init(clientTimings: IceTimings = .clientDefault, gatewayTimings: IceTimings = .gatewayDefault,
         bothControlling: Bool = false, gatewayPassword: String = "gatewaypasswordgatewayp") {
        let clientCredentials = IceCredentials(ufrag: "cccc", password: "clientpasswordclientpa")
        let gatewayCredentials = IceCredentials(ufrag: "gggg", password: "gatewaypasswordgatewayp")
        client = IceAgent(controlling: true, local: clientCredentials,
                          remote: IceCredentials(ufrag: "gggg", password: gatewayPassword), timings: clientTimings)
        gateway = IceAgent(controlling: bothControlling, local: gatewayCredentials, remote: clientCredentials, timings: gatewayTimings)
        let clientHost = client.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!)!
        let gatewayHost = gateway.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.2:52625")!)!
        client.addRemoteCandidate(gatewayHost)
        gateway.addRemoteCandidate(clientHost)
    }

    /// Runs both agents for `duration` of virtual time, delivering every transmit while the link is up.
    func run(for duration: Duration) {
        let end = now + duration
        while now <= end {
            for agent in [client, gateway] {
                agent.handleTimeout(now: now)
                deliver(from: agent)
                while let event = agent.pollEvent() { delivered.append((agent, event)) }
            }
            let next = [client.pollTimeout(), gateway.pollTimeout()].compactMap { $0 }.min() ?? end
            now = max(now + .milliseconds(1), min(next, end + .milliseconds(1)))
        }
    }

    private func deliver(from agent: IceAgent) {
        var queue: [(IceAgent, IceTransmit)] = []
        while let transmit = agent.pollTransmit() { queue.append((agent, transmit)) }
        while !queue.isEmpty {
            let (sender, transmit) = queue.removeFirst()
            guard linkUp else { continue }
            let receiver = sender === client ? gateway : client
            receiver.handle(transmit.payload, from: transmit.source.base, to: transmit.destination, now: now)
            while let reply = receiver.pollTransmit() { queue.append((receiver, reply)) }
        }
    }

    func events(of agent: IceAgent) -> [IceEvent] { delivered.filter { $0.0 === agent }.map(\.1) }

    func stateChangeTime(of agent: IceAgent, to state: IceState) -> Bool {
        events(of: agent).contains(.stateChanged(state))
    }
}

@Suite struct IceNetworkTests {
    @Test func hostToHostNominatesOnBothSides() {
        let pair = IcePair()
        pair.run(for: .seconds(2))
        let clientNomination = pair.events(of: pair.client).first { if case .nominated = $0 { true } else { false } }
        let gatewayNomination = pair.events(of: pair.gateway).first { if case .nominated = $0 { true } else { false } }
        #expect(clientNomination == .nominated(source: pair.client.localCandidates[0], destination: SocketAddress("10.0.0.2:52625")!))
        #expect(gatewayNomination == .nominated(source: pair.gateway.localCandidates[0], destination: SocketAddress("10.0.0.1:52625")!))
        #expect(pair.client.state == .completed && pair.gateway.state == .completed)
    }

    @Test func wrongPasswordNeverConnectsAndIsCounted() {
        let pair = IcePair(gatewayPassword: "not the right password")
        pair.run(for: .seconds(3))
        #expect(pair.client.nominated == nil && pair.gateway.nominated == nil)
        #expect(pair.gateway.droppedMessages > 0, "checks with a wrong MESSAGE-INTEGRITY are dropped and counted")
    }

    /// A dead path is noticed at the ICE timeout of the profile in use: the sum of the resend ladder counted
    /// from the first unanswered check, which comes at most one probe interval after the cut. After a quiet
    /// probe interval the second unanswered check waits until the first is maxRto/2 old (spec §2.7), which can
    /// add maxRto/2 − initialRto to the ladder. Cut at several phases of the probe interval, since the phase
    /// decides where in those bounds the detection falls.
    @Test(arguments: [("client default", IceTimings.clientDefault, true), ("client idle", .clientIdle, true),
                      ("gateway default", .gatewayDefault, false), ("gateway idle", .gatewayIdle, false)])
    func disconnectionIsDetectedAtTheIceTimeout(profile: String, timings: IceTimings, measureClient: Bool) {
        for phase in 0..<4 {
            let pair = IcePair(clientTimings: measureClient ? timings : .clientDefault,
                               gatewayTimings: measureClient ? .gatewayDefault : timings)
            pair.run(for: .seconds(3) + timings.maxRto * phase / 4)
            let agent = measureClient ? pair.client : pair.gateway
            #expect(agent.nominated != nil, "\(profile): connected first")
            pair.linkUp = false
            let cut = pair.now
            let lossLadderDelay = max(.zero, timings.maxRto / 2 - timings.initialRto)
            let latest = timings.iceTimeout + timings.maxRto + lossLadderDelay + .milliseconds(250)
            var detected: Instant?
            while detected == nil, pair.now - cut < latest + timings.maxRto {
                pair.run(for: .milliseconds(250))
                if agent.state == .disconnected { detected = pair.now }
            }
            let elapsed = (detected ?? pair.now) - cut
            #expect(elapsed >= timings.iceTimeout, "\(profile), phase \(phase): \(elapsed) < \(timings.iceTimeout)")
            #expect(elapsed <= latest, "\(profile), phase \(phase): \(elapsed)")
        }
    }

    /// The gateway's check from its relayed candidate reaches the client before the portal brings that candidate:
    /// the client knows the source only as peer-reflexive and nominates it. Once the candidate is signalled it
    /// takes the relayed kind and the nomination is announced again, so the node names the path a relay's.
    @Test func aPeerReflexiveCandidateSignalledLaterTakesTheSignalledKind() throws {
        let clientCredentials = IceCredentials(ufrag: "cccc", password: "clientpasswordclientpa")
        let gatewayCredentials = IceCredentials(ufrag: "gggg", password: "gatewaypasswordgatewayp")
        let client = IceAgent(controlling: true, local: clientCredentials, remote: gatewayCredentials, timings: .clientDefault)
        let gateway = IceAgent(controlling: false, local: gatewayCredentials, remote: clientCredentials, timings: .gatewayDefault)
        let clientHost = try #require(client.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!))
        let relayed = SocketAddress("192.0.2.1:50000")!
        let gatewayRelay = try #require(gateway.addLocalCandidate(kind: .relayed, address: relayed))
        gateway.addRemoteCandidate(clientHost)
        var now = Instant(nanoseconds: 1_000_000_000)
        // Every datagram between the two arrives; the gateway's come from its relayed address.
        func exchange() {
            for _ in 0..<10 {
                for (sender, receiver) in [(gateway, client), (client, gateway)] {
                    sender.handleTimeout(now: now)
                    while let transmit = sender.pollTransmit() {
                        let source = sender === gateway ? relayed : transmit.source.base
                        receiver.handle(transmit.payload, from: source, to: transmit.destination, now: now)
                    }
                }
                now = now + .milliseconds(300)
            }
        }
        exchange()
        let nominated = try #require(client.nominated)
        #expect(nominated.remote == relayed)
        #expect(client.remoteCandidates.first { $0.address == relayed }?.kind == .peerReflexive)
        while client.pollEvent() != nil {}

        client.addRemoteCandidate(gatewayRelay)
        #expect(client.remoteCandidates.first { $0.address == relayed }?.kind == .relayed)
        #expect(client.pollEvent() == .nominated(source: nominated.local, destination: relayed))
    }

    @Test func roleConflictIsResolvedByTheTieBreaker() {
        let pair = IcePair(bothControlling: true)
        pair.run(for: .seconds(3))
        #expect(pair.client.isControlling != pair.gateway.isControlling, "one side gave up the controlling role")
        #expect(pair.client.nominated != nil && pair.gateway.nominated != nil)
    }

    @Test func invalidatedCandidatesDropTheirPairs() {
        let pair = IcePair()
        pair.run(for: .seconds(2))
        pair.client.invalidateRemoteCandidate(address: SocketAddress("10.0.0.2:52625")!)
        #expect(pair.client.nominated == nil)
        pair.run(for: .milliseconds(10))
        #expect(pair.client.state != .completed)
    }
}
