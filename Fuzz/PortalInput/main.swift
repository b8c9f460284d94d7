// libFuzzer harness for what the development portal reads: byte 0 picks the input, the rest is its text.
//   even: a YAML configuration file. It parses or throws a ConfigError whose line lies within the file.
//   odd:  an upgrade request as "request-target\nUser-Agent". The query decodes and the connect checks (a client's
//         and a relay's) pass or refuse with 401 or 400, never anything else, and the refusal's problem details
//         are JSON; a relay let in has an address.
// Never a crash or a hang. Build and run with `scripts/fuzz PortalInput [seconds]`.
import Foundation
import PortalInput

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPortalInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1, size <= 16_384 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    if data[0] % 2 == 0 {
        do {
            _ = try PortalConfig(yaml: text)
        } catch {
            let lines = yamlLineCount(text)
            if let line = error.line { precondition(line >= 1 && line <= lines + 1, "error line \(line) outside \(lines) lines") }
        }
        return 0
    }
    let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let query = QueryString.parse(String(parts[0]))
    do {
        _ = try ConnectRequest(role: .client, query: query, authorization: nil,
                               userAgent: parts.count > 1 ? String(parts[1]) : nil, tokenIsKnown: { $0 == "known" })
    } catch {
        precondition(error.status == 401 || error.status == 400, "unexpected status \(error.status)")
        precondition((try? JSONSerialization.jsonObject(with: Data(error.problemJson.utf8))) is [String: Any], "problem details are a JSON object")
    }
    do {
        let relay = try RelayConnectRequest(query: query, authorization: nil, userAgent: parts.count > 1 ? String(parts[1]) : nil,
                                            tokenIsKnown: { $0 == "known" })
        precondition(!relay.addresses.isEmpty && relay.addresses.allSatisfy { $0.port == relay.port && $0.port != 0 }, "a relay has an address")
    } catch {
        precondition(error.status == 401 || error.status == 400, "unexpected status \(error.status)")
    }
    return 0
}

/// Lines as YAML counts them: LF, CR, CR LF, NEL, LS and PS each end one.
private func yamlLineCount(_ text: String) -> Int {
    var count = 1
    var previous: Unicode.Scalar?
    for scalar in text.unicodeScalars {
        if ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains(scalar), !(scalar == "\n" && previous == "\r") { count += 1 }
        previous = scalar
    }
    return count
}
