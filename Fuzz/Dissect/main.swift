// libFuzzer harness for dissect mode and the pcap replay's reading of a flow's first bytes: the same bytes are
// taken four ways.
//
// 1. As one UDP payload for the classifier: whatever it names agrees with the bytes: STUN only when the
//    de-multiplexer says STUN and with the message type of the first word; ChannelData with the channel of the
//    first word inside RFC 5766's range and a length that fits; WireGuard only for what
//    `WireGuardMessage.peek` accepts, with its type number.
// 2. As a sequence of captured frames for `UnderlayDissector.add` (link layers, the underlay's IPv4 and IPv6
//    with fragments reassembled, truncation): each frame is a selector byte (link type, and whether the frame
//    was cut by the snap length), a byte of seconds since the previous frame, a big-endian length and that many
//    bytes. Every frame is counted exactly once (without IP, truncated, rejected, another protocol, held as a
//    fragment, or a datagram; a datagram the sender's GSO coalesced counts once, its messages one each),
//    datagrams name the frame that completed them, in order, every WireGuard data message (direct or in
//    ChannelData) is accounted for by the key log's decryption, and the report is written.
// 3. As a TCP connection's first payload for `FlowName.find`: an HTTP Host only after a request method, never
//    empty and without a line break; a TLS server name only in a handshake record, and only bytes the input holds.
// 4. As a key log for `dissect --keylog` (`WireGuardKeyLog.parse`): secrets, or an error naming a line the text has.
//
// Build and run with `scripts/fuzz Dissect [seconds]`.
import Noise
import PcapFile
import Replay
import Stun

let linkTypes: [LinkType] = [.ethernet, .raw, .linuxSll, .linuxSll2, .null, .ipv4, .ipv6, .loop]
/// A key log entry of fixed keys: WireGuard messages in the frames go through the decryption's bookkeeping
/// (opening with keys that match is the Noise harness's property).
let keyLog = [WireGuardSessionSecrets(
    localStaticPrivateKey: SecretKey(bytes: [UInt8](repeating: 0x11, count: 32))!,
    remoteStaticPublicKey: SecretKey(bytes: [UInt8](repeating: 0x22, count: 32))!.publicKey,
    localEphemeralPrivateKey: SecretKey(bytes: [UInt8](repeating: 0x44, count: 32))!,
    presharedKey: SecretKey(bytes: [UInt8](repeating: 0x33, count: 32))!)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDissect(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    checkClassification(bytes)
    checkFrames(bytes)
    checkFlowName(bytes)
    checkKeyLog(bytes)
    return 0
}

func checkKeyLog(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let secrets = try WireGuardKeyLog.parse(text)
        precondition(secrets.count <= text.split(separator: "\n").count, "at most one entry per line")
    } catch {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        precondition((1...lines).contains(error.line) && !error.message.isEmpty, "the error names a line of the text: \(error)")
    }
}

func checkFlowName(_ payload: UnsafeRawBufferPointer) {
    switch FlowName.find(in: payload) {
    case .httpHost(let value)?:
        precondition(payload.first.map { (0x41...0x5A).contains($0) } == true, "a Host header only in a request")
        precondition(!value.isEmpty && !value.contains("\r") && !value.contains("\n"), "one line's non-empty value: \(value)")
        precondition(contains(payload, Array(value.utf8)), "the value is bytes of the input")
        _ = FlowName.httpHost(value).host
    case .tlsServerName(let name)?:
        precondition(payload.first == 0x16, "a server name only in a TLS handshake record")
        precondition(contains(payload, Array(name.utf8)), "the name is bytes of the input")
        _ = FlowName.tlsServerName(name).host
    case nil:
        break
    }
}

func checkClassification(_ payload: UnsafeRawBufferPointer) {
    let datagram = UnderlayDissector.classify(payload)
    let size = payload.count
    precondition(!datagram.summary.isEmpty, "every datagram is described")
    let firstWord = size >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    switch datagram.kind {
    case .stun:
        precondition(DatagramKind.classify(payload) == .stun, "STUN only when the de-multiplexer says so")
        precondition(datagram.stunType == firstWord, "the message type is the first word")
    case .channelData:
        let channel = datagram.channel
        precondition(channel == firstWord && (0x4000...0x7FFF).contains(channel ?? 0), "a channel from the first word")
        precondition(4 + (Int(payload[2]) << 8 | Int(payload[3])) <= size, "the length fits the datagram")
        precondition(datagram.inner != nil && datagram.inner != .malformed, "what it carries is named")
    case .wireGuard:
        precondition(WireGuardMessage.peek(payload) != nil, "WireGuard only for what peek accepts")
        precondition(datagram.wireGuardType?.number == Int(payload[0]), "the type number is the first byte")
    case .malformed, .other:
        precondition(datagram.wireGuardType == nil && datagram.channel == nil, "nothing claimed for the unrecognised")
    }
}

func checkFrames(_ input: UnsafeRawBufferPointer) {
    var dissector = UnderlayDissector(keyLog: keyLog)
    var offset = 0, number = 0, time: Int64 = 1_700_000_000_000_000_000
    var lastDatagramFrame = 0
    while offset + 4 <= input.count {
        let selector = input[offset]
        time += Int64(input[offset + 1]) * 1_000_000_000
        let length = min(Int(input[offset + 2]) << 8 | Int(input[offset + 3]), input.count - offset - 4)
        let frame = UnsafeRawBufferPointer(rebasing: input[(offset + 4)..<(offset + 4 + length)])
        offset += 4 + length
        number += 1
        let isTruncated = selector & 0x80 != 0
        let record = PcapRecord(number: number, timestampNanoseconds: time, originalLength: length + (isTruncated ? 10 : 0),
                                linkType: linkTypes[Int(selector & 0x7F) % linkTypes.count], data: frame)
        let report = dissector.report
        let datagrams = dissector.add(record)
        if !datagrams.isEmpty {
            precondition(datagrams.allSatisfy { $0.packet == number } && number > lastDatagramFrame, "a datagram names the frame that completed it")
            precondition(!isTruncated, "a truncated frame is not classified")
            precondition(datagrams.count == 1 || datagrams.allSatisfy { $0.coalesced != nil }, "several only as segments")
            lastDatagramFrame = number
        }
        let after = dissector.report
        let udpDatagrams = (after.datagramCount - after.coalescedSegments + after.coalescedDatagrams)
            - (report.datagramCount - report.coalescedSegments + report.coalescedDatagrams)
        precondition(after.datagramCount - report.datagramCount == datagrams.count, "every message returned is counted")
        let counted = [after.framesWithoutIp - report.framesWithoutIp, after.truncatedFrames - report.truncatedFrames,
                       after.rejectedIpPackets - report.rejectedIpPackets, after.nonUdpPackets - report.nonUdpPackets,
                       after.fragmentsHeld - report.fragmentsHeld, udpDatagrams]
        precondition(counted.reduce(0, +) == 1 && counted.allSatisfy { $0 >= 0 }, "frame \(number) counted once: \(counted)")
        precondition(after.malformed.count <= DissectReport.listLimit && after.truncated.count <= DissectReport.listLimit,
                     "the per-packet lists are bounded")
    }
    dissector.finish()
    let report = dissector.report
    precondition(report.frames == number, "\(report.frames) frames for \(number)")
    precondition(report.reassembledDatagrams <= report.datagramCount, "a reassembled datagram is a datagram")
    precondition(report.incompleteDatagrams >= 0 && !report.text.isEmpty, "the report is written")
    let decryption = report.decryption
    let accounted = decryption.map { $0.sessions.reduce(0) { $0 + $1.packets } + $0.keepalives + $0.dataWithoutKeys + $0.failedToOpen }
    precondition(accounted != nil && accounted == decryption?.dataMessages, "every data message is opened, refused or without keys")
    precondition((decryption?.dataMessages ?? 0) >= report.wireGuardByType["data", default: 0], "direct data messages are all seen")
}

func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return (0...(haystack.count - needle.count)).contains { start in
        needle.indices.allSatisfy { haystack[start + $0] == needle[$0] }
    }
}
