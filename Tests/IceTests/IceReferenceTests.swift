@testable import Ice
import SansIO
import TestSupport
import Testing

/// The reference values of spec `snownet.md` §2.3 and §2.6.
@Suite(.offPool) struct IceReferenceTests {
    let credentials = IceCredentials(ufrag: "abcd", password: "passwordpasswordpassw")

    @Test func candidatePrioritiesMatchTheSpec() {
        let agent = IceAgent(controlling: true, local: credentials, remote: credentials, timings: .clientDefault)
        #expect(agent.addLocalCandidate(kind: .host, address: SocketAddress("[2001:db8::1]:52625")!)?.priority == 2_130_706_431)
        #expect(agent.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!)?.priority == 2_130_706_175)
        // The spec lists 2130705407 (local preference 65531) for a second IPv4 host; its own rule and str0m's
        // code and tests give 65532: 2130705663.
        #expect(agent.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.2:52625")!)?.priority == 2_130_705_663)
        #expect(agent.addLocalCandidate(kind: .relayed, address: SocketAddress("[2001:db8::9]:50000")!,
                                        relayBase: SocketAddress("[2001:db8::1]:52625")!)?.priority == 37_748_735)
        #expect(agent.addLocalCandidate(kind: .relayed, address: SocketAddress("192.0.2.9:50000")!,
                                        relayBase: SocketAddress("10.0.0.1:52625")!)?.priority == 37_748_479)

        let penalised = IceAgent(controlling: true, local: credentials, remote: credentials, timings: .clientDefault)
        #expect(penalised.addLocalCandidate(kind: .relayed, address: SocketAddress("[2001:db8::9]:50000")!,
                                            relayBase: SocketAddress("10.0.0.1:52625")!)?.priority == 37_492_735)
        #expect(penalised.addLocalCandidate(kind: .relayed, address: SocketAddress("192.0.2.9:50000")!,
                                            relayBase: SocketAddress("[2001:db8::1]:52625")!)?.priority == 37_492_479)

        // srflx candidates are not added to the agent: default local preference.
        for (address, expected) in [("[2001:db8::7]:1", UInt32(1_694_498_815)), ("203.0.113.7:1", 1_694_498_559)] {
            let ip = SocketAddress(address)!
            #expect(IceCandidate.priority(kind: .serverReflexive, localPreference: IceCandidate.defaultLocalPreference(for: ip)) == expected)
        }
        // A check's PRIORITY uses the prflx type preference: host IPv4 first → 1862270719.
        let host = IceCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!, priority: 2_130_706_175)
        #expect(host.checkPriority == 1_862_270_719)
    }

    /// 2^32·min(G,D) + 2·max(G,D) + (G > D ? 1 : 0), G the controlling side's candidate priority.
    @Test func pairPriorityFollowsRfc8445() {
        let host = IceCandidate(kind: .host, address: SocketAddress("10.0.0.1:1")!, priority: 2_130_706_175)
        let srflx = IceCandidate(kind: .serverReflexive, address: SocketAddress("203.0.113.1:1")!, priority: 1_694_498_559)
        let controlling = IceAgent(controlling: true, local: credentials, remote: credentials, timings: .clientDefault)
        let controlled = IceAgent(controlling: false, local: credentials, remote: credentials, timings: .clientDefault)
        // Values computed independently (python): 2^32·1694498559 + 2·2130706175 (+ 1 when G > D).
        #expect(controlling.pairPriority(local: host, remote: srflx) == 7_277_815_898_285_538_815)
        #expect(controlled.pairPriority(local: host, remote: srflx) == 7_277_815_898_285_538_814)
    }

    /// A pair with the same local base and remote address as an existing one replaces it only when its
    /// priority is higher: a peer-reflexive candidate on the host's base adds no second pair.
    @Test func equivalentPairsAreReplacedOnlyByHigherPriority() {
        let agent = IceAgent(controlling: true, local: credentials, remote: credentials, timings: .clientDefault)
        let host = agent.addLocalCandidate(kind: .host, address: SocketAddress("10.0.0.1:1")!)!
        agent.addRemoteCandidate(IceCandidate(kind: .host, address: SocketAddress("10.0.0.2:1")!, priority: 2_130_706_175))
        agent.addLocalCandidate(kind: .peerReflexive, address: SocketAddress("198.51.100.1:1")!, base: host.base)
        #expect(agent.pairs.count == 1)
        #expect(agent.pairs.first?.local.kind == .host, "the higher-priority host pair stays")
    }

    @Test func candidateStringsFormatAndParse() throws {
        let relay = IceCandidate(kind: .relayed, address: SocketAddress("192.0.2.9:50000")!, priority: 37_748_479, foundation: "ff00", ufrag: "abcd")
        #expect(IceCandidateString.format(relay) == "candidate:ff00 1 udp 37748479 192.0.2.9 50000 typ relay raddr 0.0.0.0 rport 0 ufrag abcd")
        let srflx6 = IceCandidate(kind: .serverReflexive, address: SocketAddress("[2001:db8::7]:4000")!, priority: 1_694_498_815, foundation: "1")
        #expect(IceCandidateString.format(srflx6) == "candidate:1 1 udp 1694498815 2001:db8::7 4000 typ srflx raddr :: rport 0")
        let host = IceCandidate(kind: .host, address: SocketAddress("10.0.0.1:52625")!, priority: 2_130_706_175, foundation: "x", ufrag: "abcd")
        #expect(IceCandidateString.format(host) == "candidate:x 1 udp 2130706175 10.0.0.1 52625 typ host ufrag abcd")

        let parsed = try IceCandidateString.parse(
            "candidate:3 1 UDP 2130706431 2001:db8::1 52625 typ host generation 0 network-id 1 network-cost 10 ufrag abcd",
            expectedUfrag: "abcd")
        #expect(parsed.kind == .host && parsed.address == SocketAddress("[2001:db8::1]:52625")! && parsed.priority == 2_130_706_431)
        #expect(try IceCandidateString.parse("a=" + IceCandidateString.format(relay)).address == relay.address)
        #expect(try IceCandidateString.parse(IceCandidateString.format(relay)) == relay)

        #expect(throws: IceCandidateError.wrongUfrag(expected: "zzzz", received: "abcd")) {
            try IceCandidateString.parse(IceCandidateString.format(host), expectedUfrag: "zzzz")
        }
        for bad in ["", "candidate:1 1 udp", "candidate:1 2 udp 1 10.0.0.1 1 typ host", "candidate:1 1 tcp 1 10.0.0.1 1 typ host",
                    "candidate:1 1 udp x 10.0.0.1 1 typ host", "candidate:1 1 udp 1 10.0.0.256 1 typ host",
                    "candidate:1 1 udp 1 10.0.0.1 70000 typ host", "candidate:1 1 udp 1 10.0.0.1 1 typ bogus",
                    "candidate:1 1 udp 1 10.0.0.1 1 typ host ufrag"] {
            #expect(throws: IceCandidateError.self, "\(bad)") { try IceCandidateString.parse(bad) }
        }
    }

    @Test func timingProfilesGiveTheSpecsIceTimeouts() {
        #expect(IceTimings.clientDefault.iceTimeout == .milliseconds(15_250))
        #expect(IceTimings.clientIdle.iceTimeout == .seconds(100))
        #expect(IceTimings.gatewayDefault.iceTimeout == .milliseconds(600_750))
        #expect(IceTimings.gatewayIdle.iceTimeout == .seconds(1000))
    }

    @Test func optimisticCandidatesAreIpv4AndAtMostTwoPerCall() {
        let remote = [
            IceCandidate(kind: .host, address: SocketAddress("192.168.1.2:52625")!, priority: 1),
            IceCandidate(kind: .host, address: SocketAddress("192.168.1.3:40000")!, priority: 1),
            IceCandidate(kind: .host, address: SocketAddress("[fd00::2]:52625")!, priority: 1),
            IceCandidate(kind: .serverReflexive, address: SocketAddress("203.0.113.5:61234")!, priority: 1),
            IceCandidate(kind: .serverReflexive, address: SocketAddress("203.0.113.6:61235")!, priority: 1),
            IceCandidate(kind: .serverReflexive, address: SocketAddress("[2001:db8::5]:61236")!, priority: 1),
        ]
        let derived = OptimisticCandidates.derive(from: remote)
        #expect(derived.map(\.address) == [SocketAddress("203.0.113.5:52625")!, SocketAddress("203.0.113.5:40000")!])
        #expect(derived.allSatisfy { $0.kind == .serverReflexive && $0.address.ip.version == .v4 })
        let next = OptimisticCandidates.derive(from: remote + derived)
        #expect(next.map(\.address) == [SocketAddress("203.0.113.6:52625")!, SocketAddress("203.0.113.6:40000")!])
    }
}
