import SansIO
import Stun
import Testing
import Turn

@Suite struct TurnAllocationTests {
    let start = Instant(nanoseconds: 1_000_000_000)

    func allocated(_ relay: FakeRelay) -> (TurnAllocation, [AllocationEvent]) {
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        let events = relay.exchange(allocation, now: start)
        return (allocation, events)
    }

    @Test func firezoneRelayAllocatesDualStack() {
        let relay = FakeRelay()
        let (allocation, events) = allocated(relay)
        #expect(events == [.serverReflexiveCandidate(relay.client), .relayCandidate(relay.relayed[0]),
                           .relayCandidate(relay.relayed[1]), .allocated(lifetime: .seconds(600))])
        #expect(allocation.relayAddresses == relay.relayed)
        let methods = relay.received.map(\.method)
        #expect(methods == [.binding, .allocate, .allocate], "BINDING, unsigned ALLOCATE (401), signed ALLOCATE")
        let signed = relay.received[2]
        #expect(signed.attributes.contains(.requestedTransport(17)) && signed.attributes.contains(.additionalAddressFamily(2)))
        #expect(signed.attributes.contains(.realm("firezone")) && signed.attributes.contains(.nonce("nonce-1")))
        #expect(signed.verifyIntegrity(key: relay.key))
        #expect(relay.received[1].transactionId != signed.transactionId, "re-signed under a new transaction id")
    }

    @Test("over a TCP or TLS stream the BINDING's mapped address is the connection's: no host or server-reflexive candidate, only relayed ones")
    func streamAllocationOffersOnlyRelayCandidates() {
        for transport in [RelayTransport.tcp, .tls(serverName: "192.0.2.1")] {
            let relay = FakeRelay()
            let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address, transport: transport), credentials: relay.credentials, now: start)
            let events = relay.exchange(allocation, now: start)
            #expect(events == [.relayCandidate(relay.relayed[0]), .relayCandidate(relay.relayed[1]), .allocated(lifetime: .seconds(600))],
                    "\(transport)")
            #expect(allocation.serverReflexiveAddresses.isEmpty && allocation.hostAddresses.isEmpty)
        }
    }

    /// Never accept an unauthenticated success response to an authenticated request.
    @Test func unsignedSuccessToASignedRequestIsIgnored() {
        let relay = FakeRelay()
        var forged = false
        relay.answer = { request in
            guard request.method == .allocate, request.first({ if case .nonce = $0 { true } else { nil } }) == true else { return nil }
            forged = true
            return StunMessage(class: .successResponse, method: .allocate, transactionId: request.transactionId,
                               attributes: [.xorRelayedAddress(SocketAddress("203.0.113.66:1")!), .lifetime(seconds: 600)])
        }
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        // The relay signs responses to requests with USERNAME; strip the signature to forge an unsigned one.
        while let transmit = allocation.pollTransmit() {
            guard var response = relay.respond(to: transmit.payload) else { continue }
            if forged, let decoded = try? StunMessage(decoding: response) { response = decoded.encode() }
            allocation.handle(response, from: relay.address, now: start)
        }
        #expect(forged)
        #expect(!allocation.isAllocated)
        #expect(allocation.ignoredResponses == 1)
    }

    @Test func responseFromAnotherAddressOrWithBadIntegrityIsNotAccepted() {
        let relay = FakeRelay()
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        let binding = allocation.pollTransmit()!
        let response = relay.respond(to: binding.payload)!
        #expect(!allocation.handle(response, from: SocketAddress("192.0.2.99:3478")!, now: start))
        #expect(allocation.activeSocket == nil)
        #expect(allocation.handle(response, from: relay.address, now: start))
        #expect(allocation.activeSocket == relay.address)
    }

    @Test func staleNonceIsReplacedAndTheRequestResent() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        relay.nonce = "nonce-2"
        allocation.handleTimeout(now: start + .seconds(300))
        relay.exchange(allocation, now: start + .seconds(300))
        let refreshes = relay.received.filter { $0.method == .refresh }
        #expect(refreshes.count == 2, "438, then resent with the new nonce")
        #expect(refreshes.last?.attributes.contains(.nonce("nonce-2")) == true)
        #expect(allocation.isAllocated && allocation.failureReason == nil)
    }

    @Test func unauthorizedDespiteANonceMeansBadCredentials() {
        let relay = FakeRelay()
        relay.answer = { request in
            request.method == .allocate ? relay.error(request, 401, "Unauthorized", extra: [.realm("firezone"), .nonce("n")]) : nil
        }
        let (allocation, events) = allocated(relay)
        #expect(events.last == .failed(.badCredentials))
        #expect(relay.received.filter { $0.method == .allocate }.count == 2, "one retry with the nonce, then stop")
        #expect(allocation.pollTimeout() == nil)
    }

    @Test func allocationMismatchDeletesThenAllocatesAgain() {
        let relay = FakeRelay()
        var mismatched = false
        relay.answer = { request in
            guard request.method == .allocate, !mismatched, request.first({ if case .nonce = $0 { true } else { nil } }) == true
            else { return nil }
            mismatched = true
            return relay.error(request, 437, "Allocation Mismatch")
        }
        let (allocation, _) = allocated(relay)
        let sequence = relay.received.map(\.method)
        #expect(sequence == [.binding, .allocate, .allocate, .refresh, .allocate])
        #expect(relay.received[3].attributes.contains(.lifetime(seconds: 0)), "the REFRESH deletes")
        #expect(allocation.isAllocated)
    }

    @Test func allocationMismatchOnRefreshOrChannelBindAllocatesAgain() {
        for method in [StunMethod.refresh, .channelBind] {
            let relay = FakeRelay()
            let (allocation, _) = allocated(relay)
            var answered = false
            relay.answer = { request in
                guard request.method == method, !answered else { return nil }
                answered = true
                return relay.error(request, 437, "Allocation Mismatch")
            }
            relay.received.removeAll()
            let peer = SocketAddress("203.0.113.5:51820")!
            if method == .channelBind { allocation.bindChannel(to: peer, now: start) } else { allocation.refresh(now: start) }
            relay.exchange(allocation, now: start)
            let sequence = relay.received.map(\.method)
            #expect(sequence.prefix(2) == [method, .allocate], "\(method): \(sequence)")
            #expect(allocation.isAllocated)
            if method == .channelBind {
                #expect(sequence.last == .channelBind, "the peer is bound again on the new allocation")
                #expect(allocation.channel(for: peer, now: start) != nil)
            }
        }
    }

    @Test func otherErrorsFailAnAllocateButOnlyForgetAChannel() {
        let relay = FakeRelay()
        relay.answer = { request in
            guard request.method == .allocate, request.first({ if case .nonce = $0 { true } else { nil } }) == true else { return nil }
            return relay.error(request, 508, "Insufficient Capacity")
        }
        let (failed, events) = allocated(relay)
        #expect(events.last == .failed(.serverError(code: 508, reason: "Insufficient Capacity")))
        #expect(failed.failureReason != nil)

        let healthy = FakeRelay()
        let (allocation, _) = allocated(healthy)
        healthy.answer = { request in request.method == .channelBind ? healthy.error(request, 443, "Peer Address Family Mismatch") : nil }
        let peer = SocketAddress("203.0.113.6:51820")!
        allocation.bindChannel(to: peer, now: start)
        healthy.exchange(allocation, now: start)
        #expect(allocation.channel(for: peer, now: start) == nil, "the channel number is forgotten")
        #expect(allocation.isAllocated && allocation.failureReason == nil, "the allocation lives on")
    }

    /// A CHANNEL-BIND refused with a code that does not say whether the allocation exists (coturn 4.6 answers 400
    /// on one it dropped) is followed by a REFRESH at once: its 437 allocates again and binds the peer there; its
    /// success leaves the peer unbound (the refusal was about the peer).
    @Test func aRefusedChannelBindProbesTheAllocation() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        var allocationGone = true
        relay.answer = { request in
            switch request.method {
            case .channelBind where allocationGone: relay.error(request, 400, "Bad Request")
            case .refresh where allocationGone:
                relay.error(request, 437, "Allocation Mismatch")
            case .allocate where allocationGone:
                { allocationGone = false; return nil }()
            default: nil
            }
        }
        let peer = SocketAddress("203.0.113.6:51820")!
        allocation.bindChannel(to: peer, now: start)
        let events = relay.exchange(allocation, now: start)
        #expect(relay.received.map(\.method).suffix(4) == [.channelBind, .refresh, .allocate, .channelBind],
                "\(relay.received.map(\.method))")
        #expect(events.contains { if case .channelBound(peer, _) = $0 { true } else { false } }, "\(events)")
        #expect(events.contains(.probing(.channelBindRefused(code: 400))) && events.contains(.allocationMissing), "for the log: \(events)")
        #expect(allocation.channel(for: peer, now: start) != nil)

        let healthy = FakeRelay()
        let (alive, _) = allocated(healthy)
        healthy.answer = { request in request.method == .channelBind ? healthy.error(request, 403, "Forbidden") : nil }
        healthy.received.removeAll()
        alive.bindChannel(to: peer, now: start)
        healthy.exchange(alive, now: start)
        #expect(healthy.received.map(\.method) == [.channelBind, .refresh], "one probe, no retry of the refused bind")
        #expect(alive.isAllocated && alive.channel(for: peer, now: start) == nil)
    }

    /// ChannelData sent for three seconds without any coming back makes the allocation probe itself with a
    /// REFRESH (a relay that dropped the allocation drops ChannelData silently); ChannelData received in time
    /// means no probe.
    @Test func threeSilentSecondsAfterChannelDataProbeTheAllocation() throws {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        let peer = SocketAddress("203.0.113.6:51820")!
        allocation.bindChannel(to: peer, now: start)
        relay.exchange(allocation, now: start)
        var buffer = [UInt8](repeating: 0, count: 64)
        func send(at time: Instant) {
            _ = buffer.withUnsafeMutableBytes { allocation.encodeChannelData(to: peer, payloadLength: 10, into: $0, now: time) }
        }
        let answer = try ChannelData.encode(channel: 0x4000, payload: [1, 2, 3])

        // Answered within the window: no probe.
        send(at: start + .seconds(1))
        #expect(allocation.pollTimeout() == start + .seconds(4))
        _ = answer.withUnsafeBytes { allocation.decodeChannelData($0, from: relay.address, now: start + .seconds(2)) }
        relay.received.removeAll()
        allocation.handleTimeout(now: start + .seconds(4))
        relay.exchange(allocation, now: start + .seconds(4))
        #expect(relay.received.isEmpty)

        // Unanswered: the probe goes out at 3 s; a 437 allocates again.
        var allocationGone = true
        relay.answer = { request in
            guard allocationGone, request.method == .refresh else { return nil }
            allocationGone = false
            return relay.error(request, 437, "Allocation Mismatch")
        }
        send(at: start + .seconds(10))
        send(at: start + .seconds(11))
        #expect(allocation.pollTimeout() == start + .seconds(13))
        allocation.handleTimeout(now: start + .seconds(13))
        let events = relay.exchange(allocation, now: start + .seconds(13))
        #expect(relay.received.map(\.method) == [.refresh, .allocate], "\(relay.received.map(\.method))")
        #expect(events.contains(.relayCandidateInvalidated(relay.relayed[0])) && allocation.isAllocated, "\(events)")
        #expect(events.contains(.probing(.channelDataUnanswered)) && events.contains(.allocationMissing), "for the log: \(events)")
    }

    /// `refresh()` on a live allocation is a 1-second liveness probe; when it goes unanswered the allocation
    /// is invalidated, and the next `refresh()` starts over with BINDING requests.
    @Test func refreshProbesLivenessAndRestartsWhenSuspended() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        relay.silent = true
        allocation.refresh(now: start + .seconds(10))
        #expect(allocation.pollTimeout() == start + .seconds(11))
        allocation.handleTimeout(now: start + .seconds(11))
        #expect(!allocation.isAllocated && allocation.activeSocket == nil, "a dead relay is noticed within a second")
        while allocation.pollTransmit() != nil {}
        relay.silent = false
        relay.received.removeAll()
        allocation.refresh(now: start + .seconds(20))
        relay.exchange(allocation, now: start + .seconds(20))
        #expect(relay.received.first?.method == .binding)
        #expect(allocation.isAllocated, "re-allocated: \(relay.received.map(\.method))")
    }

    @Test func unknownAttributeFailsTheAllocation() {
        let relay = FakeRelay()
        relay.answer = { request in
            request.method == .allocate ? relay.error(request, 420, "Unknown Attribute", extra: [.unknownAttributes([0x8000])]) : nil
        }
        let (_, events) = allocated(relay)
        #expect(events.last == .failed(.unknownAttribute([0x8000])))
    }

    /// Sent at 0, 1, 2.5 and 4.75 s, abandoned at 8.125 s: a relay that never answers is given up.
    @Test func silentRelayIsGivenUpAfterTheRetransmissions() {
        let relay = FakeRelay()
        relay.silent = true
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        var sends: [Duration] = []
        var now = start
        while allocation.failureReason == nil, let deadline = allocation.pollTimeout() {
            while allocation.pollTransmit() != nil { sends.append(now - start) }
            now = deadline
            allocation.handleTimeout(now: now)
        }
        while allocation.pollTransmit() != nil { sends.append(now - start) }
        #expect(sends == [.zero, .seconds(1), .milliseconds(2500), .milliseconds(4750)])
        #expect(allocation.failureReason == .noResponse)
        #expect(now - start == .milliseconds(8125))
    }

    @Test func keepaliveEvery25SecondsAndRefreshAtHalfTheLifetime() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        #expect(allocation.pollTimeout() == start + .seconds(25))
        relay.received.removeAll()
        allocation.handleTimeout(now: start + .seconds(25))
        relay.exchange(allocation, now: start + .seconds(25))
        #expect(relay.received.map(\.method) == [.binding])
        relay.received.removeAll()
        allocation.handleTimeout(now: start + .seconds(300))
        relay.exchange(allocation, now: start + .seconds(300))
        #expect(relay.received.map(\.method).contains(.refresh))
        #expect(allocation.isAllocated)
    }

    /// Regression (found by the tunnel's long-idle simulation): with a refresh in flight, or a bound channel
    /// that saw no data, `pollTimeout` named an instant already past at which `handleTimeout` had nothing to
    /// do, so an event loop spun until the answer came.
    @Test func pollTimeoutNeverNamesAnInstantWithNothingToDo() {
        let relay = FakeRelay()
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        allocation.bindChannel(to: SocketAddress("203.0.113.2:51820")!, now: start)
        relay.exchange(allocation, now: start)
        let now = start + .seconds(300)
        allocation.handleTimeout(now: now)  // refresh and keepalive go out and stay unanswered for now
        let next = allocation.pollTimeout()
        #expect(next.map { $0 > now } == true, "next deadline \(String(describing: next)) is not after \(now)")
    }

    @Test func expiryInvalidatesTheRelayCandidates() {
        let relay = FakeRelay()
        relay.silent = false
        let (allocation, _) = allocated(relay)
        relay.silent = true
        allocation.handleTimeout(now: start + .seconds(600))
        var events: [AllocationEvent] = []
        while let event = allocation.pollEvent() { events.append(event) }
        #expect(events.contains(.relayCandidateInvalidated(relay.relayed[0])))
        #expect(!allocation.isAllocated)
    }

    @Test func channelsArePipelinedBufferedAndRefreshedOnlyWhenUsed() throws {
        let relay = FakeRelay()
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        let busy = SocketAddress("203.0.113.1:51820")!
        let idle = SocketAddress("203.0.113.2:51820")!
        allocation.bindChannel(to: busy, now: start)  // before the allocation: buffered
        allocation.bindChannel(to: idle, now: start)
        let events = relay.exchange(allocation, now: start)
        #expect(events.contains(.channelBound(peer: busy, channel: 0x4000)))
        #expect(events.contains(.channelBound(peer: idle, channel: 0x4001)))

        // A payload at buffer + 4 is framed for the bound channel.
        var buffer = [UInt8](repeating: 0, count: 64)
        let framed = buffer.withUnsafeMutableBytes { allocation.encodeChannelData(to: busy, payloadLength: 10, into: $0, now: start) }
        #expect(framed?.destination == relay.address && framed?.count == 14)
        #expect(Array(buffer.prefix(4)) == [0x40, 0x00, 0x00, 0x0A])

        // Data arrives on the busy channel only.
        let incoming = try ChannelData.encode(channel: 0x4000, payload: [1, 2, 3])
        let unwrapped = incoming.withUnsafeBytes { allocation.decodeChannelData($0, from: relay.address, now: start + .seconds(10)) }
        #expect(unwrapped?.peer == busy && unwrapped?.payload == 4..<7)
        let unknown = try ChannelData.encode(channel: 0x4FFF, payload: [1])
        #expect(unknown.withUnsafeBytes { allocation.decodeChannelData($0, from: relay.address, now: start) } == nil)

        relay.received.removeAll()
        allocation.handleTimeout(now: start + .seconds(300))
        relay.exchange(allocation, now: start + .seconds(300))
        let rebinds = relay.received.filter { $0.method == .channelBind }
        #expect(rebinds.count == 1, "only the channel that received data is refreshed")
        #expect(rebinds.first?.attributes.contains(.channelNumber(0x4000)) == true)
    }

    @Test func bindingAnswerOnAKnownLocalSocketYieldsAHostCandidate() {
        let relay = FakeRelay()
        let allocation = TurnAllocation(server: RelayServer(ipv4: relay.address), credentials: relay.credentials, now: start)
        let binding = allocation.pollTransmit()!
        let local = SocketAddress("10.0.0.5:40000")!
        allocation.handle(relay.respond(to: binding.payload)!, from: relay.address, local: local, now: start)
        #expect(allocation.pollEvent() == .hostCandidate(local))
        #expect(allocation.pollEvent() == .serverReflexiveCandidate(relay.client))
    }

    /// 4096 numbers: never-used ones first; then only a channel idle since its bind and bound 15 minutes ago.
    @Test func channelNumbersAreRecycledOnlyWhenIdleForFifteenMinutes() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        for index in 0..<4096 {
            allocation.bindChannel(to: SocketAddress(ip: .v4(IPv4Address(UInt32(0xCB00_7100) + UInt32(index))), port: 1), now: start)
        }
        relay.exchange(allocation, now: start)
        let late = SocketAddress("198.51.100.200:1")!
        allocation.bindChannel(to: late, now: start + .seconds(899))
        #expect(allocation.channel(for: late, now: start + .seconds(899)) == nil, "all 4096 in use, none old enough")
        allocation.bindChannel(to: late, now: start + .seconds(900))
        #expect(allocation.channel(for: late, now: start + .seconds(900)) == 0x4000, "the oldest idle number is reused")
    }

    @Test func peerWithoutAChannelTriggersABindAndDropsThePacket() {
        let relay = FakeRelay()
        let (allocation, _) = allocated(relay)
        let peer = SocketAddress("203.0.113.9:51820")!
        var buffer = [UInt8](repeating: 0, count: 64)
        let framed = buffer.withUnsafeMutableBytes { allocation.encodeChannelData(to: peer, payloadLength: 10, into: $0, now: start) }
        #expect(framed == nil)
        let pipelined = buffer.withUnsafeMutableBytes { allocation.encodeChannelData(to: peer, payloadLength: 10, into: $0, now: start) }
        #expect(pipelined != nil, "the in-flight channel carries data before its bind is confirmed")
        relay.exchange(allocation, now: start)
        #expect(relay.received.filter { $0.method == .channelBind }.count == 1)
    }
}

@Suite struct AllocationsTests {
    @Test func last64RelayIpsAreRemembered() {
        let allocations = Allocations()
        let now = Instant(nanoseconds: 0)
        let credentials = TurnCredentials(username: "u", password: "p", realm: "firezone")
        func server(_ index: Int) -> RelayServer {
            RelayServer(ipv4: SocketAddress(ip: .v4(IPv4Address(10, 1, UInt8(index / 256), UInt8(index % 256))), port: 3478))
        }
        for index in 0..<70 {
            allocations.upsert(id: "relay-\(index)", server: server(index), credentials: credentials, now: now)
        }
        #expect(allocations.upsert(id: "relay-69", server: server(69), credentials: credentials, now: now) == .skipped)
        for index in 0..<69 { allocations.remove(id: "relay-\(index)") }
        func lookup(_ index: Int, port: UInt16 = 3478) -> String {
            switch allocations.lookup(SocketAddress(ip: server(index).ipv4!.ip, port: port)) {
            case .connected: "connected"
            case .disconnected: "disconnected"
            case .unknown: "unknown"
            }
        }
        #expect(lookup(69) == "connected")
        #expect(lookup(68) == "disconnected" && lookup(5) == "disconnected", "the last 64 removed")
        #expect(lookup(4) == "unknown" && lookup(0) == "unknown", "older ones are forgotten")
        #expect(lookup(69, port: 9999) == "unknown", "same IP, other port: a peer, not the relay")
        #expect(allocations.upsert(id: "relay-69", server: server(70), credentials: credentials, now: now) == .replaced)
        #expect(lookup(69) == "disconnected")
    }
}
