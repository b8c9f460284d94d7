import SansIO
import Stun
import Turn

/// An in-memory relay that answers like Firezone's: realm "firezone", nonces, and MESSAGE-INTEGRITY on every
/// response to a request that carried USERNAME. Tests override `answer` to script error rows.
final class FakeRelay {
    let address = SocketAddress("192.0.2.1:3478")!
    let client = SocketAddress("198.51.100.7:40000")!
    let relayed = [SocketAddress("192.0.2.1:50000")!, SocketAddress("[2001:db8::1]:50000")!]
    let credentials = TurnCredentials(username: "1700003600:salt", password: "secret", realm: "firezone")
    var nonce = "nonce-1"
    var lifetime: UInt32 = 600
    var silent = false
    var received: [StunMessage] = []
    /// Returns a scripted response, or `nil` for the default behaviour.
    var answer: (StunMessage) -> StunMessage? = { _ in nil }

    var key: [UInt8] { StunKey.longTerm(username: credentials.username, realm: "firezone", password: credentials.password) }

    func respond(to datagram: [UInt8]) -> [UInt8]? {
        guard !silent, let request = try? StunMessage(decoding: datagram) else { return nil }
        received.append(request)
        let signed = request.first { if case .username = $0 { true } else { nil } } ?? false
        let response = answer(request) ?? defaultAnswer(request)
        return response.encode(integrity: signed ? .sha1(key: key) : nil)
    }

    func error(_ request: StunMessage, _ code: Int, _ reason: String, extra: [StunAttribute] = []) -> StunMessage {
        StunMessage(class: .errorResponse, method: request.method, transactionId: request.transactionId,
                    attributes: [.errorCode(code: code, reason: reason)] + extra)
    }

    private func defaultAnswer(_ request: StunMessage) -> StunMessage {
        let id = request.transactionId
        guard request.method != .binding else {
            return StunMessage(class: .successResponse, method: .binding, transactionId: id, attributes: [.xorMappedAddress(client)])
        }
        let requestNonce = request.first { if case .nonce(let n) = $0 { n } else { nil } }
        guard requestNonce == nonce else {
            return error(request, requestNonce == nil ? 401 : 438, requestNonce == nil ? "Unauthorized" : "Stale Nonce",
                         extra: [.realm("firezone"), .nonce(nonce)])
        }
        switch request.method {
        case .allocate:
            return StunMessage(class: .successResponse, method: .allocate, transactionId: id,
                               attributes: relayed.map { .xorRelayedAddress($0) } + [.xorMappedAddress(client), .lifetime(seconds: lifetime)])
        case .refresh:
            let requested = request.first { if case .lifetime(let s) = $0 { s } else { nil } }
            return StunMessage(class: .successResponse, method: .refresh, transactionId: id,
                               attributes: [.lifetime(seconds: requested ?? lifetime)])
        default:
            return StunMessage(class: .successResponse, method: request.method, transactionId: id)
        }
    }

    /// Delivers the allocation's transmits to the relay and the answers back, until quiet.
    @discardableResult
    func exchange(_ allocation: TurnAllocation, now: Instant) -> [AllocationEvent] {
        var rounds = 0
        while let transmit = allocation.pollTransmit(), rounds < 100 {
            rounds += 1
            if let response = respond(to: transmit.payload) {
                allocation.handle(response, from: address, now: now)
            }
        }
        var events: [AllocationEvent] = []
        while let event = allocation.pollEvent() { events.append(event) }
        return events
    }
}
