// libFuzzer harness for the in-memory TCP DNS server: the input is a script of segments from four peers and
// clock steps. Properties: nothing crashes or hangs; every segment the server emits passes the strict IP
// parser; no address holds more than 10 connections; after handleTimeout(now) the next deadline lies after
// `now` (an event loop never spins); every query that comes out is answered without trouble.
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
let client = IpAddress("100.64.0.2")!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTcpDns(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var script = UnsafeBufferPointer(start: data, count: size)[...]
    var server = TcpDnsServer(random: SplitMix64(seed: 1))
    var peers = (0..<4).map { ScriptedPeer(port: 40_000 + UInt16($0)) }
    var now = Instant(nanoseconds: 1_000_000_000)
    while let op = script.popFirst() {
        if op & 3 == 3 {
            now = now + .milliseconds(10 * Int64(script.popFirst() ?? 0))
            server.handleTimeout(now: now)
            if let next = server.pollTimeout() { precondition(next > now, "a deadline at or before now after handleTimeout") }
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
                source: client, destination: sentinel, sourcePort: peer.port, destinationPort: 53,
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
