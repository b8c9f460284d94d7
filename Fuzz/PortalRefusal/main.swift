// libFuzzer harness for what a refused portal upgrade says (spec `portal-phoenix.md` §8) and for the flow-log
// ingest tokens of v2 messages. The input is `<Retry-After>\n<Content-Type>\n<body>`, the first byte also picking
// the status. Parsing never crashes; a Retry-After is never negative; problem details only come from a
// problem+json body; the channel stops only on 401 and otherwise waits what Retry-After said; an ingest token
// that parses keeps its text and survives a JSON round trip. Build and run with `scripts/fuzz PortalRefusal [seconds]`.
import FoundationEssentials
import PhoenixChannel
import PortalMessages
import SansIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPortalRefusal(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= 65_536 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let lines = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 2, omittingEmptySubsequences: false)
    let retryAfter = String(decoding: lines[0], as: UTF8.self)
    let contentType = lines.count > 1 ? String(decoding: lines[1], as: UTF8.self) : ""
    let body = lines.count > 2 ? Array(lines[2]) : []
    let unixTime: Int64 = 1_800_000_000

    if let delay = RetryAfter.parse(retryAfter, unixTime: unixTime) { precondition(delay >= .zero, "a negative Retry-After") }
    let status = [401, 403, 408, 429, 503][Int(bytes.first ?? 0) % 5]
    let refusal = UpgradeRefusal(status: status, headers: [("Retry-After", retryAfter), ("content-type", contentType)], body: body,
                                 unixTime: unixTime)
    if refusal.problem != nil {
        precondition(contentType.lowercased().contains("application/problem+json"), "problem details from another media type")
    }

    var channel = PhoenixChannelCore<PhoenixRawPayload>(topic: "client", maxElapsed: nil)
    channel.connect()
    _ = channel.pollOutput(now: Instant(nanoseconds: 0))
    channel.connectionFailed(.refused(refusal), now: Instant(nanoseconds: 0), unit: 0.5)
    switch channel.pollOutput(now: Instant(nanoseconds: 0)) {
    case .fatal(let error)?:
        precondition(status == 401, "only 401 is fatal")
        precondition(error.requiresSignIn == ["invalid_token", "missing_token"].contains(refusal.problem?.code ?? ""))
    case .hiccup(let delay, _)?:
        precondition(status != 401, "401 is fatal")
        precondition(delay == (refusal.retryAfter ?? .seconds(1)), "Retry-After, else the initial-connect second")
    default:
        preconditionFailure("a refusal stops or waits")
    }

    let text = String(decoding: body, as: UTF8.self)
    if let token = try? IngestToken(text) {
        precondition(token.raw == text && !token.description.contains(token.raw), "kept whole, never printed")
        let encoded = try! JSONEncoder().encode([token])
        precondition((try? JSONDecoder().decode([IngestToken].self, from: encoded)) == [token], "token round trip")
    }
    return 0
}
