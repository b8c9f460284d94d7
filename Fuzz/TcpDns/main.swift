// libFuzzer harness for the in-memory TCP DNS server and the in-tunnel TCP DNS client: the input is a script
// of segments (from four peers to the server, or from the upstream to the client) and clock steps.
// Properties: nothing crashes or hangs; every segment either side emits passes the strict IP parser; never
// more server connections than peers; after handleTimeout(now) the next deadline lies after `now` (an event
// loop never spins); the client never answers more queries than it was given.
// Build and run with `scripts/fuzz TcpDns [seconds]`.
import Dns
import DnsNat
import IpPacket
import SansIO

/// A TCP endpoint driven by the script. It follows what it hears, so its segments can be in order.
struct ScriptedPeer {
    var socket: SocketAddress
    var sequence: UInt32 = 1_000
    var acknowledgment: UInt32 = 0

    /// Reads flags, a sequence shift (128 = in order) and a payload of at most 255 bytes from the script: the
    /// segment to `remote`, or `nil` when the script ran out.
    mutating func segment(from script: inout Slice<UnsafeBufferPointer<UInt8>>, to remote: SocketAddress) -> IpPacket? {
        guard script.count >= 3 else { return nil }
        let flags = TcpFlags(rawValue: script.removeFirst() & 0x1F)
        let shift = UInt32(script.removeFirst())
        let length = min(Int(script.removeFirst()), script.count)
        let payload = Array(script.prefix(length))
        script = script.dropFirst(length)
        guard let packet = try? IpPacket.tcp(
            source: socket.ip, destination: remote.ip, sourcePort: socket.port, destinationPort: remote.port,
            sequenceNumber: sequence &+ shift &- 128, acknowledgmentNumber: acknowledgment, flags: flags, window: 65_535,
            payload: payload)
        else { return nil }
        if shift == 128 { sequence &+= Self.sequenceSpace(flags: flags, length: length) }
        return packet
    }

    mutating func heard(_ tcp: TcpHeader) {
        acknowledgment = tcp.sequenceNumber &+ Self.sequenceSpace(flags: tcp.flags, length: tcp.payloadRange.count)
    }

    static func sequenceSpace(flags: TcpFlags, length: Int) -> UInt32 {
        UInt32(length) + (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
    }
}

/// A segment one side emitted, through the strict parser, which must accept it.
func parsed(_ packet: IpPacket, from side: String) -> TcpHeader {
    guard let again = try? IpPacket(copying: packet.bytes), let tcp = again.tcp else {
        fatalError("the \(side) emitted a segment the strict parser refuses")
    }
    return tcp
}

let sentinel = SocketAddress(ip: IpAddress("100.100.111.1")!, port: 53)
let clientAddress = IpAddress("100.64.0.2")!
let upstream = SocketAddress(ip: IpAddress("100.64.0.1")!, port: 53_535)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTcpDns(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var script = UnsafeBufferPointer(start: data, count: size)[...]
    var now = Instant(nanoseconds: 1_000_000_000)
    var server = TcpDnsServer(random: SplitMix64(seed: 1))
    var peers = (0..<4).map { ScriptedPeer(socket: SocketAddress(ip: clientAddress, port: 40_000 + UInt16($0))) }
    var client = TcpDnsClient<DnsMessage>(random: SplitMix64(seed: 2))
    var upstreamPeer = ScriptedPeer(socket: upstream)
    var clientSocket = SocketAddress(ip: clientAddress, port: 0)
    let question = DnsMessage(id: 1, flags: DnsFlags(), questions: [DnsQuestion(name: DnsName("_a._tcp.example.com")!, type: .srv)])
    var sent = 0, answered = 0
    func sendQuery() {
        client.send(question, asker: question, from: clientAddress, to: upstream, now: now)
        sent += 1
    }
    func drainClient() {
        while let packet = client.pollPacket() {
            let tcp = parsed(packet, from: "client")
            clientSocket.port = tcp.sourcePort
            upstreamPeer.heard(tcp)
        }
    }
    sendQuery()
    drainClient()
    while let op = script.popFirst() {
        switch op & 3 {
        case 3:
            now = now + .milliseconds(10 * Int64(script.popFirst() ?? 0))
            server.handleTimeout(now: now)
            client.handleTimeout(now: now)
            if let next = server.pollTimeout() { precondition(next > now, "a server deadline at or before now after handleTimeout") }
            if let next = client.pollTimeout() { precondition(next > now, "a client deadline at or before now after handleTimeout") }
        case 2:
            if op & 0x80 != 0 { sendQuery() }
            guard let segment = upstreamPeer.segment(from: &script, to: clientSocket) else { return 0 }
            _ = client.handle(segment, now: now)
        default:
            let index = Int(op >> 2) % peers.count
            guard let segment = peers[index].segment(from: &script, to: sentinel) else { return 0 }
            server.handle(segment, now: now)
        }
        while let query = server.pollQuery() {
            server.respond(DnsMessage.response(to: query.message, rcode: .noError), to: query.connection, now: now)
        }
        precondition(server.connectionCount <= peers.count, "more connections than peers")
        while client.pollAnswer() != nil { answered += 1 }
        precondition(answered <= sent, "the client answered more queries than it was given")
        drainClient()
        while let packet = server.pollPacket() {
            let tcp = parsed(packet, from: "server")
            guard let index = peers.firstIndex(where: { $0.socket.port == tcp.destinationPort }) else { continue }
            peers[index].heard(tcp)
        }
    }
    return 0
}
