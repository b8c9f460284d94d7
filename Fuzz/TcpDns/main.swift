// libFuzzer harness for the in-memory TCP DNS server and the in-tunnel TCP DNS client: the input is a script
// of segments (from four peers to the server, or from the upstream to the client) and clock steps.
// Properties: nothing crashes or hangs; every segment either side emits passes the strict IP parser; never
// more server connections than peers; after handleTimeout(now) the next deadline lies after `now` (an event
// loop never spins); the client never answers more queries than it was given.
// Build and run with `scripts/fuzz TcpDns [seconds]`.
import DnsNat
import IpPacket
import SansIO

struct ScriptedPeer {
    var port: UInt16
    var sequence: UInt32 = 1_000
    var acknowledgment: UInt32 = 0
}

let sentinel = IpAddress("100.100.111.1")!
let clientAddress = IpAddress("100.64.0.2")!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTcpDns(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var script = UnsafeBufferPointer(start: data, count: size)[...]
    var server = TcpDnsServer(random: SplitMix64(seed: 1))
    var peers = (0..<4).map { ScriptedPeer(port: 40_000 + UInt16($0)) }
    var now = Instant(nanoseconds: 1_000_000_000)
    var client = TcpDnsClient(random: SplitMix64(seed: 2))
    let upstream = SocketAddress(ip: IpAddress("100.64.0.1")!, port: 53_535)
    let question = DnsMessage(id: 1, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("_a._tcp.example.com")!, type: .srv)])
    let pending = ClientDns.PendingQuery(query: question, asker: SocketAddress(ip: clientAddress, port: 5353), sentinel: sentinel)
    client.send(pending, from: clientAddress, to: upstream, now: now)
    var sent = 1, answered = 0
    var clientPort: UInt16 = 0
    var upstreamPeer = ScriptedPeer(port: 53_535)
    // The upstream follows what it hears from the client, so its segments can be in order.
    func drainClient() {
        while let packet = client.pollPacket() {
            guard let parsed = try? IpPacket(copying: packet.bytes), let tcp = parsed.tcp else {
                fatalError("the client emitted a segment the strict parser refuses")
            }
            clientPort = tcp.sourcePort
            upstreamPeer.acknowledgment = tcp.sequenceNumber &+ UInt32(tcp.payloadRange.count)
                &+ (tcp.flags.contains(.syn) || tcp.flags.contains(.fin) ? 1 : 0)
        }
    }
    drainClient()
    while let op = script.popFirst() {
        if op & 3 == 3 {
            now = now + .milliseconds(10 * Int64(script.popFirst() ?? 0))
            server.handleTimeout(now: now)
            client.handleTimeout(now: now)
            if let next = server.pollTimeout() { precondition(next > now, "a server deadline at or before now after handleTimeout") }
            if let next = client.pollTimeout() { precondition(next > now, "a client deadline at or before now after handleTimeout") }
        } else if op & 3 == 2 {
            guard script.count >= 3 else { break }
            let flags = TcpFlags(rawValue: script.removeFirst() & 0x1F)
            let shift = UInt32(script.removeFirst())
            let length = min(Int(script.removeFirst()), script.count)
            let payload = Array(script.prefix(length))
            script = script.dropFirst(length)
            if op & 0x80 != 0 {
                client.send(pending, from: clientAddress, to: upstream, now: now)
                sent += 1
            }
            guard let packet = try? IpPacket.tcp(
                source: upstream.ip, destination: clientAddress, sourcePort: upstream.port, destinationPort: clientPort,
                sequenceNumber: upstreamPeer.sequence &+ shift &- 128, acknowledgmentNumber: upstreamPeer.acknowledgment,
                flags: flags, window: 65_535, payload: payload)
            else { continue }
            _ = client.handle(packet, now: now)
            if shift == 128 { upstreamPeer.sequence &+= UInt32(length) + (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0) }
        } else {
            let index = Int(op >> 2) % peers.count
            guard script.count >= 3 else { break }
            let flags = TcpFlags(rawValue: script.removeFirst() & 0x1F)
            let shift = UInt32(script.removeFirst())
            let length = min(Int(script.removeFirst()), script.count)
            let payload = Array(script.prefix(length))
            script = script.dropFirst(length)
            let peer = peers[index]
            guard let packet = try? IpPacket.tcp(
                source: clientAddress, destination: sentinel, sourcePort: peer.port, destinationPort: 53,
                sequenceNumber: peer.sequence &+ shift &- 128, acknowledgmentNumber: peer.acknowledgment, flags: flags,
                window: 65_535, payload: payload)
            else { continue }
            server.handle(packet, now: now)
            if shift == 128 { peers[index].sequence &+= UInt32(length) + (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0) }
        }
        while let query = server.pollQuery() {
            var answer = DnsMessage.response(to: query.message, rcode: .noError)
            answer.id = query.message.id
            server.respond(answer, to: query.connection, now: now)
        }
        precondition(server.connectionCount <= 4, "more connections than peers")
        while client.pollAnswer() != nil { answered += 1 }
        precondition(answered <= sent, "the client answered more queries than it was given")
        drainClient()
        while let packet = server.pollPacket() {
            guard let parsed = try? IpPacket(copying: packet.bytes), let tcp = parsed.tcp else {
                fatalError("the server emitted a segment the strict parser refuses")
            }
            guard let index = peers.firstIndex(where: { $0.port == tcp.destinationPort }) else { continue }
            // The peer follows what it hears, so later segments can be in order.
            peers[index].acknowledgment = tcp.sequenceNumber &+ UInt32(tcp.payloadRange.count)
                &+ (tcp.flags.contains(.syn) || tcp.flags.contains(.fin) ? 1 : 0)
        }
    }
    return 0
}
