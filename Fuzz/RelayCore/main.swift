// libFuzzer harness for the relay core (`Sources/TurnRelay`): any datagram from any source at any time. The input is
// a list of records `[kind, source, length, bytes…]`: kind picks a datagram on the listening port (raw bytes), a
// request signed with a valid user's credentials and the nonce it learnt (method, then attributes as the bytes say),
// a datagram from a peer on an allocated port, or time passing. Properties: nothing crashes; every answer decodes
// as STUN, answers the request's transaction, and is signed exactly when the request named a known user (never
// for BINDING); a relayed payload lies inside its datagram and goes from an open port; a ChannelData frame written
// for a peer carries the payload's length; ports open within the range and close only after opening; allocations
// never exceed the ports, nonces never exceed their limit; there is a deadline exactly while an allocation exists,
// and nothing is due right after the timeout ran. Sources with bit 0x20 set are clients on a TCP/TLS stream (the
// same addresses: other clients); a time record with bit 0x80 closes a source's stream instead, which frees its
// allocation. Build and run with `scripts/fuzz RelayCore [seconds]`.
import SansIO
import Stun
import TurnRelay

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRelayCore(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= 65_536 else { return 0 }
    var reader = Reader(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    var configuration = RelayConfiguration(publicIPv4: IPv4Address(192, 0, 2, 1), publicIPv6: IPv6Address("2001:db8::1"),
                                           authentication: .firezone(secret: "fuzz"))
    configuration.ports = 50000...50007
    configuration.maximumNonces = 16
    configuration.nonceUses = 5
    let relay = RelayCore(configuration: configuration, random: SplitMix64(seed: 1))
    var now = Instant(nanoseconds: 1_000_000_000)
    var open: Set<UInt16> = []
    var nonces: [RelayClient: String] = [:]
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    defer { buffer.deallocate() }

    while let kind = reader.byte(), let sourceByte = reader.byte() {
        let client = Sources.client(sourceByte)
        let transport: ClientTransport = sourceByte & 0x20 == 0 ? .udp : .stream
        let identity = RelayClient(address: client, transport: transport)
        let unixTime: Int64 = 1_800_000_000 + now.nanoseconds / 1_000_000_000
        switch kind % 4 {
        case 0:
            let bytes = reader.chunk()
            let outcome = bytes.withUnsafeBytes { relay.handleFromClient($0, from: client, over: transport, now: now, unixTime: unixTime) }
            check(outcome, request: try? StunMessage(decoding: bytes), datagramCount: bytes.count, open: open, user: nil)
        case 1:
            let user = Sources.user(sourceByte)
            let request = signedRequest(&reader, user: user, nonce: nonces[identity])
            let bytes = request.encode(integrity: .sha1(key: user.key))
            let outcome = bytes.withUnsafeBytes { relay.handleFromClient($0, from: client, over: transport, now: now, unixTime: unixTime) }
            if case .answer(let answer) = outcome, let message = try? StunMessage(decoding: answer) {
                if let nonce = message.first({ if case .nonce(let value) = $0 { value } else { nil } }) { nonces[identity] = nonce }
                if message.method == .allocate, message.messageClass == .successResponse {
                    precondition(relay.holdsAllocation(identity), "an allocated client holds its allocation")
                }
            }
            check(outcome, request: request, datagramCount: bytes.count, open: open, user: user)
        case 2:
            let payload = reader.chunk()
            guard payload.count + 4 <= buffer.count else { continue }
            let port = 50000 + UInt16(reader.byte() ?? 0) % 9
            UnsafeMutableRawBufferPointer(rebasing: buffer[4..<(4 + payload.count)]).copyBytes(from: payload)
            if let back = relay.relayFromPeer(buffer, count: payload.count, from: Sources.peer(sourceByte), port: port, now: now) {
                precondition(open.contains(port), "relayed from a port that is not open")
                precondition(back.count == payload.count + 4, "the frame is header and payload")
                precondition(Int(buffer[2]) << 8 | Int(buffer[3]) == payload.count, "the header carries the length")
                precondition((0x40...0x4F).contains(buffer[0]), "a channel of RFC 8656's range")
            }
        default:
            if kind & 0x80 != 0 {
                let before = relay.allocationCount
                relay.streamClosed(client, now: now)
                precondition(!relay.holdsAllocation(RelayClient(address: client, transport: .stream)), "the stream's allocation is gone")
                nonces[RelayClient(address: client, transport: .stream)] = nil
                precondition(relay.allocationCount >= before - 1, "a closed stream frees at most its own allocation")
                break
            }
            now = now + .seconds(Int64(sourceByte) * 8)
            relay.handleTimeout(now: now)
            precondition(relay.pollTimeout().map { $0 > now } ?? true, "nothing is due right after the timeout ran")
        }
        while let event = relay.pollEvent() {
            switch event {
            case let .portOpened(port, families):
                precondition(configuration.ports.contains(port) && !open.contains(port) && !families.isEmpty, "opened \(port) twice")
                open.insert(port)
            case .portClosed(let port):
                precondition(open.remove(port) != nil, "closed \(port), which was not open")
            }
        }
        precondition(relay.allocationCount == open.count && open.count <= configuration.ports.count, "allocations and open ports")
        let deadline = relay.pollTimeout()
        precondition((deadline == nil) == (relay.allocationCount == 0) && relay.pollTimeout() == deadline,
                     "a deadline exactly while something can expire, the same when asked again")
        precondition(relay.channelCount >= 0 && relay.channelCount <= relay.allocationCount * 4096, "the channel count stays in bounds")
    }
    return 0
}

/// The properties of one outcome on the listening port.
func check(_ outcome: RelayCore.ClientOutcome, request: StunMessage?, datagramCount: Int, open: Set<UInt16>, user: Sources.User?) {
    switch outcome {
    case .answer(let answer):
        guard let message = try? StunMessage(decoding: answer) else { fatalError("an answer that does not decode") }
        guard let request else { fatalError("an answer to something that was no request") }
        precondition(message.transactionId == request.transactionId && message.method == request.method, "answers its request")
        precondition(message.messageClass == .successResponse || message.messageClass == .errorResponse)
        if request.method == .binding { precondition(!message.hasIntegrity, "BINDING answers are never signed") }
        if let user, request.method != .binding {
            precondition(message.verifyIntegrity(key: user.key), "every answer to a known user is signed with its key")
        }
    case .relay(let forward):
        precondition(forward.payload.lowerBound == 4 && forward.payload.upperBound <= datagramCount, "the payload lies inside")
        precondition(open.contains(forward.port), "relayed from a port that is not open")
    case .drop:
        break
    }
}

/// A request a valid user signs: method from the input (ALLOCATE, REFRESH, CHANNEL-BIND, CREATE-PERMISSION or any),
/// then attributes the input chooses.
func signedRequest(_ reader: inout Reader, user: Sources.User, nonce: String?) -> StunMessage {
    let methods: [StunMethod] = [.allocate, .refresh, .channelBind, .createPermission, .binding, StunMethod(rawValue: UInt16(reader.byte() ?? 0))]
    let method = methods[Int(reader.byte() ?? 0) % methods.count]
    var attributes: [StunAttribute] = [.username(user.name), .realm("firezone")]
    if let nonce { attributes.append(.nonce(nonce)) }
    let count = Int(reader.byte() ?? 0) % 5
    for _ in 0..<count {
        let value = reader.byte() ?? 0
        switch value % 8 {
        case 0: attributes.append(.requestedTransport(value & 0x80 == 0 ? 17 : 6))
        case 1: attributes.append(.lifetime(seconds: UInt32(reader.byte() ?? 0) * 60))
        case 2: attributes.append(.channelNumber(0x3F00 &+ UInt16(reader.byte() ?? 0) << 4))
        case 3: attributes.append(.xorPeerAddress(Sources.peer(reader.byte() ?? 0)))
        case 4: attributes.append(.requestedAddressFamily(1 + (reader.byte() ?? 0) % 3))
        case 5: attributes.append(.additionalAddressFamily(1 + (reader.byte() ?? 0) % 3))
        case 6: attributes.append(.other(type: 0x0018, value: [0x80, 0, 0, 0]))
        default: attributes.append(.other(type: UInt16(reader.byte() ?? 0), value: reader.chunk()))
        }
    }
    return StunMessage(class: .request, method: method, transactionId: TransactionId(bytes: (UInt32(reader.byte() ?? 0), 7, 9)),
                       attributes: attributes)
}

/// Clients, users and peers the input picks by a byte.
enum Sources {
    struct User {
        var name: String
        var key: [UInt8]
    }

    static let users: [User] = (0..<3).map { index in
        let name = "1900000000:user\(index)"
        let password = RelayCredentials.firezonePassword(secret: "fuzz", expiresAt: 1_900_000_000, salt: "user\(index)")
        return User(name: name, key: StunKey.longTerm(username: name, realm: "firezone", password: password))
    }

    /// Byte 3 is a client on port 0, which the relay must ignore (#14036).
    static func client(_ byte: UInt8) -> SocketAddress {
        let port: UInt16 = byte == 3 ? 0 : 40000 + UInt16(byte % 8)
        return byte & 0x80 == 0 ? SocketAddress(ip: .v4(IPv4Address(203, 0, 113, byte % 4)), port: port)
            : SocketAddress(ip: .v6(IPv6Address("2001:db8::5")!), port: port)
    }

    static func user(_ byte: UInt8) -> User { users[Int(byte) % users.count] }

    static func peer(_ byte: UInt8) -> SocketAddress {
        byte & 0x40 == 0 ? SocketAddress(ip: .v4(IPv4Address(198, 51, 100, byte % 4)), port: 5000 + UInt16(byte % 3))
            : SocketAddress(ip: .v6(IPv6Address("2001:db8::7")!), port: 5000)
    }
}

/// Reads the fuzzer's bytes front to back.
struct Reader {
    let bytes: [UInt8]
    var offset = 0

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A length byte, then that many bytes (or what is left).
    mutating func chunk() -> [UInt8] {
        let length = Int(byte() ?? 0) * 4 + Int(byte() ?? 0) % 4
        let end = min(bytes.count, offset + length)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}
