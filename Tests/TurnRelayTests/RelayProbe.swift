import SansIO
import Stun
@testable import TurnRelay

/// A TURN client made of raw STUN messages, to ask a ``RelayCore`` exactly one thing at a time.
final class RelayProbe {
    let relay: RelayCore
    let client: SocketAddress
    let transport: ClientTransport
    var username: String
    var password: String
    var nonce: String?
    var now = Instant(nanoseconds: 1_000_000_000)
    var unixTime: Int64 = 1_800_000_000

    init(_ relay: RelayCore, client: String, secret: String = RelayCoreTests.secret, expiresAt: Int64 = 1_900_000_000,
         salt: String = "salt", transport: ClientTransport = .udp) {
        self.relay = relay
        self.client = SocketAddress(client)!
        self.transport = transport
        username = "\(expiresAt):\(salt)"
        password = RelayCredentials.firezonePassword(secret: secret, expiresAt: expiresAt, salt: salt)
    }

    var key: [UInt8] { StunKey.longTerm(username: username, realm: "firezone", password: password) }

    /// Sends `method` with `attributes`, signed when `signed` (with the nonce learnt so far); the decoded answer.
    @discardableResult
    func ask(_ method: StunMethod, _ attributes: [StunAttribute] = [], signed: Bool = true) -> StunMessage? {
        var all = attributes
        if signed {
            all += [.username(username), .realm("firezone")]
            if let nonce { all.append(.nonce(nonce)) }
        }
        let request = StunMessage(class: .request, method: method, transactionId: .random(), attributes: all)
        let bytes = request.encode(integrity: signed ? .sha1(key: key) : nil)
        guard case .answer(let answer) = bytes.withUnsafeBytes({ relay.handleFromClient($0, from: client, over: transport, now: now, unixTime: unixTime) }),
              let message = try? StunMessage(decoding: answer)
        else { return nil }
        if let fresh = message.first({ if case .nonce(let value) = $0 { value } else { nil } }) { nonce = fresh }
        return message
    }

    /// Asks, and when the answer is 401 or 438 with a nonce, asks once more with it.
    @discardableResult
    func authenticated(_ method: StunMethod, _ attributes: [StunAttribute] = []) -> StunMessage? {
        let first = ask(method, attributes)
        guard let code = first?.errorCode, code == 401 || code == 438 else { return first }
        return ask(method, attributes)
    }

    func allocate(_ attributes: [StunAttribute] = [.requestedTransport(17)]) -> StunMessage? {
        authenticated(.allocate, attributes)
    }
}

extension StunMessage {
    var errorCode: Int? { first { if case .errorCode(let code, _) = $0 { code } else { nil } } }
    var relayedAddresses: [SocketAddress] { attributes.compactMap { if case .xorRelayedAddress(let a) = $0 { a } else { nil } } }
    var lifetime: UInt32? { first { if case .lifetime(let seconds) = $0 { seconds } else { nil } } }
    var isSuccess: Bool { messageClass == .successResponse }
}
