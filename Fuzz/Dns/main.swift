// libFuzzer harness for the DNS codec, over UDP payloads and the TCP length framing: decoding never crashes
// or hangs; whatever decodes re-encodes into bytes that decode to an equal message, and truncation to the
// 1212-byte UDP limit always yields a decodable message of at most 1212 bytes (or the message itself). Every
// decoded message is also put to the stub resolver as a query (patterns, reverse names, proxy-IP answers).
// Build and run with `scripts/fuzz Dns [seconds]`.
import Dns
import DnsNat
import SansIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDns(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    check(bytes)
    // The same bytes as a TCP stream: every complete frame is a message to decode.
    var stream = ArraySlice(bytes)
    while let (message, consumed) = DnsTcpFraming.nextMessage(in: Array(stream)) {
        check(Array(message))
        stream = stream.dropFirst(consumed)
    }
    return 0
}

let resources = [
    DnsResource(id: ResourceId("00000000-0000-0000-0000-000000000001")!, pattern: DomainPattern("*.a?c.**.example")),
    DnsResource(id: ResourceId("00000000-0000-0000-0000-000000000002")!, pattern: DomainPattern("**")),
]

func check(_ bytes: [UInt8]) {
    guard let message = try? DnsMessage(decoding: bytes) else { return }
    // A fresh resolver per input, so allocated proxy IPs do not pile up over a long run.
    var stub = StubResolver()
    resources.forEach { stub.upsert($0) }
    if case .localResponse(let answer) = stub.handle(message) {
        precondition(answer.id == message.id && answer.flags.isResponse, "local answers echo the query")
        precondition(answer.answers.allSatisfy { $0.ttl == 1 }, "local answers have TTL 1")
    }
    let encoded = message.encode()
    guard let again = try? DnsMessage(decoding: encoded) else { fatalError("our encoding of a decoded message does not decode") }
    precondition(again == message, "re-encoded message decodes equal")
    let truncated = message.encode(maxSize: DnsMessage.maxUdpResponseSize)
    if encoded.count > DnsMessage.maxUdpResponseSize {
        guard let cut = try? DnsMessage(decoding: truncated) else { fatalError("truncated message does not decode") }
        precondition(cut.flags.isTruncated && cut.answers.isEmpty && cut.questions == message.questions, "truncation keeps the question")
    } else {
        precondition(truncated == encoded, "a message within the limit is not truncated")
    }
}
