// libFuzzer harness for the ICE candidate-string parser: arbitrary bytes (as UTF-8, lossily) never crash it;
// whatever parses formats back to a string that parses to an equal candidate.
// Build and run with `scripts/fuzz IceCandidate [seconds]`.
import Ice

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIceCandidate(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let candidate = try? IceCandidateString.parse(text) else { return 0 }
    let formatted = IceCandidateString.format(candidate)
    guard let again = try? IceCandidateString.parse(formatted) else {
        fatalError("formatted candidate does not parse: \(formatted)")
    }
    precondition(again == candidate, "format/parse round trip: \(formatted)")
    if let ufrag = candidate.ufrag {
        precondition((try? IceCandidateString.parse(text, expectedUfrag: ufrag)) != nil, "its own ufrag is accepted")
    }
    return 0
}
