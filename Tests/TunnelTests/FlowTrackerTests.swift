import Foundation
import IpPacket
import PortalMessages
import SansIO
import Testing
@testable import Tunnel

/// The gateway's flow tracking for flow logs (spec `tunnel-dns.md` §6 "flow-tracker"): what ends a flow, what
/// splits it, and what each record counts, from the client's view.
@Suite struct FlowTrackerTests {
    let client = ClientId(UUID(uuidString: "11111111-2222-3333-4444-555555555555")!)
    let resource = ResourceId("aaaaaaaa-0000-4000-8000-000000000001")!
    let clientIp = IpAddress("100.64.0.2")!, resourceIp = IpAddress("10.0.0.5")!
    let outer = (source: SocketAddress("192.0.2.7:51000")!, destination: SocketAddress("192.0.2.1:52625")!)
    let start = Instant(nanoseconds: 1_000_000_000)
    let unixStart: Int64 = 1_764_000_000_000_000_000

    private func tcp(_ flags: TcpFlags, fromClient: Bool, payload: Int = 0) throws -> IpPacket {
        try IpPacket.tcp(source: fromClient ? clientIp : resourceIp, destination: fromClient ? resourceIp : clientIp,
                         sourcePort: fromClient ? 40000 : 80, destinationPort: fromClient ? 80 : 40000, flags: flags,
                         payload: [UInt8](repeating: 7, count: payload))
    }

    private func udp(fromClient: Bool) throws -> IpPacket {
        try IpPacket.udp(source: fromClient ? clientIp : resourceIp, destination: fromClient ? resourceIp : clientIp,
                         sourcePort: fromClient ? 40000 : 53, destinationPort: fromClient ? 53 : 40000, payload: [1, 2, 3])
    }

    private func send(_ packet: IpPacket, fromClient: Bool, at seconds: Int, to tracker: inout FlowTracker) {
        let now = start + .seconds(seconds)
        let unix = unixStart + Int64(seconds) * 1_000_000_000
        if fromClient {
            tracker.outbound(packet, client: client, resource: resource, outer: outer, now: now, unixNanoseconds: unix)
        } else {
            tracker.inbound(packet, client: client, now: now, unixNanoseconds: unix)
        }
    }

    @Test func aTcpConnectionEndsWhenBothSidesSentFin() throws {
        var tracker = FlowTracker()
        let exchange: [(TcpFlags, Bool, Int)] = [
            (.syn, true, 0), ([.syn, .ack], false, 0), (.ack, true, 0), ([.psh, .ack], true, 100),
            ([.psh, .ack], false, 300), ([.fin, .ack], true, 0), ([.fin, .ack], false, 0),
        ]
        for (second, (flags, fromClient, payload)) in exchange.enumerated() {
            let early = tracker.pollFinished()
            #expect(early == nil, "nothing ends before both FINs")
            send(try tcp(flags, fromClient: fromClient, payload: payload), fromClient: fromClient, at: second, to: &tracker)
        }
        let finished = tracker.pollFinished()
        let record = try #require(finished)
        #expect(record.transport == .tcp && record.client == client && record.resource == resource)
        #expect(record.innerSource == SocketAddress(ip: clientIp, port: 40000) && record.innerDestination == SocketAddress(ip: resourceIp, port: 80))
        #expect(record.outerSource == outer.source && record.outerDestination == outer.destination)
        #expect(record.txPackets == 4 && record.rxPackets == 3)
        #expect(record.txBytes == 4 * 40 + 100 && record.rxBytes == 3 * 40 + 300)
        #expect(record.start == unixStart && record.end == unixStart + 6_000_000_000 && record.lastPacket == record.end)

        send(try tcp(.ack, fromClient: true), fromClient: true, at: 7, to: &tracker)
        #expect(tracker.isEmpty, "the last ACK of a closed connection starts no flow")
    }

    @Test func resetEndsAndAFreshSynSplitsAFlow() throws {
        var tracker = FlowTracker()
        send(try tcp(.syn, fromClient: true), fromClient: true, at: 0, to: &tracker)
        send(try tcp([.rst, .ack], fromClient: false), fromClient: false, at: 1, to: &tracker)
        let reset = tracker.pollFinished()
        #expect(reset?.rxPackets == 1)

        send(try tcp(.syn, fromClient: true), fromClient: true, at: 2, to: &tracker)
        send(try tcp(.ack, fromClient: true, payload: 10), fromClient: true, at: 3, to: &tracker)
        send(try tcp(.syn, fromClient: true), fromClient: true, at: 4, to: &tracker)
        let split = tracker.pollFinished()
        #expect(split?.txPackets == 2, "a SYN after other traffic ends the flow before it")
        #expect(!tracker.isEmpty)
    }

    @Test func udpFlowsEndAfterTwoMinutesWithoutPackets() throws {
        var tracker = FlowTracker()
        send(try udp(fromClient: true), fromClient: true, at: 0, to: &tracker)
        send(try udp(fromClient: false), fromClient: false, at: 1, to: &tracker)
        tracker.expire(now: start + .seconds(120), unixNanoseconds: unixStart + 120_000_000_000)
        let early = tracker.pollFinished()
        #expect(early == nil, "119 s since the last packet")
        tracker.expire(now: start + .seconds(121), unixNanoseconds: unixStart + 121_000_000_000)
        let finished = tracker.pollFinished()
        let record = try #require(finished)
        #expect(record.transport == .udp && record.txPackets == 1 && record.rxPackets == 1 && record.txBytes == 31)
        #expect(record.lastPacket == unixStart + 1_000_000_000 && record.end == unixStart + 121_000_000_000)
    }

    @Test func theContextIsAskedForOnlyWhenAFlowStarts() throws {
        var tracker = FlowTracker()
        var asked = 0
        var context = FlowContext()
        context.actorName = "alice"
        context.innerDomain = "web.lab.test"
        for second in 0..<3 {
            tracker.outbound(try udp(fromClient: true), client: client, resource: resource, outer: outer, now: start + .seconds(second),
                             unixNanoseconds: unixStart) {
                asked += 1
                return context
            }
        }
        tracker.finishAll(unixNanoseconds: unixStart)
        let record = tracker.pollFinished()
        #expect(asked == 1 && record?.txPackets == 3)
        #expect(record?.context == context)
    }

    @Test func packetsToTheClientAloneAreNoFlow() throws {
        var tracker = FlowTracker()
        send(try udp(fromClient: false), fromClient: false, at: 0, to: &tracker)
        send(try IpPacket.icmpEchoRequest(source: clientIp, destination: resourceIp, identifier: 1, sequence: 1, payload: [UInt8]()),
             fromClient: true, at: 0, to: &tracker)
        #expect(tracker.isEmpty)
        tracker.finishAll(unixNanoseconds: unixStart)
        let none = tracker.pollFinished()
        #expect(none == nil)
    }
}
