// libFuzzer harness for the WireGuard engine: arbitrary datagrams into a responder and an initiator with
// fixed keys on a virtual clock. Nothing may crash, and afterwards a legitimate exchange still works
// (no state corruption), and the key log both tunnels write decrypts it: the secrets logged for the last
// handshake, parsed back from their text, give keys that open the packets of both directions. The input is
// also read as key log text, which parses or fails with the line, never crashes.
// Build and run with `scripts/fuzz Noise [seconds]`.
//
// Input: a sequence of records [target (1 byte), time step in ms (1 byte), length (2 bytes), bytes].
// Target bit 0 picks the tunnel (responder or initiator); bit 1 makes the bytes a mutation of a real
// message of the handshake (type byte kept) instead of raw bytes. Initiations are screened by the identity
// first, as a node does (`WireGuardIdentity.screenInitiation`), and only those it lets through reach the tunnel.
import Noise
import SansIO

let start = Instant(nanoseconds: 1_000_000_000)
let aliceKey = SecretKey(bytes: [UInt8](repeating: 0x11, count: 32))!
let bobKey = SecretKey(bytes: [UInt8](repeating: 0x22, count: 32))!
let presharedKey = SecretKey(bytes: [UInt8](repeating: 0x33, count: 32))!

struct Counter: RandomNumberGenerator {
    var state: UInt64 = 0x1234
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}

final class Harness {
    var now = start
    let alice: WireGuardTunnel
    let bob: WireGuardTunnel
    var output = [UInt8](repeating: 0, count: 4096)
    var keyLog = ""

    let aliceIdentity = WireGuardIdentity(privateKey: aliceKey)
    let bobIdentity = WireGuardIdentity(privateKey: bobKey)
    var cookieRandom = Counter(state: 7)

    init() {
        alice = WireGuardTunnel(identity: aliceIdentity, remotePublicKey: bobKey.publicKey,
                                presharedKey: presharedKey, connectionIndex: 1, now: start,
                                unixTimeNanoseconds: 1_700_000_000_000_000_000, random: Counter())
        bob = WireGuardTunnel(identity: bobIdentity, remotePublicKey: aliceKey.publicKey,
                              presharedKey: presharedKey, connectionIndex: 2, now: start,
                              unixTimeNanoseconds: 1_700_000_000_000_000_000, random: Counter(state: 99))
        alice.keyLog = { [unowned self] in keyLog += $0.keyLogLines }
        bob.keyLog = { [unowned self] in keyLog += $0.keyLogLines }
        precondition(alice.lastHandshake == nil, "no handshake before the first")
    }

    @discardableResult
    func deliver(_ datagram: [UInt8], to tunnel: WireGuardTunnel) -> (TunnelOutput, [UInt8]) {
        if datagram.first == 1 {
            let identity = tunnel === alice ? aliceIdentity : bobIdentity
            let screening = datagram.withUnsafeBytes { input in
                output.withUnsafeMutableBytes {
                    identity.screenInitiation(input, source: EndpointKey([1, 2, 3, 4, 5, 6]), now: now, rng: &cookieRandom, into: $0)
                }
            }
            switch screening {
            case .accept:
                break
            case .badMac1:
                return (.error(.invalidMac), [])
            case .cookieReply(let count):
                precondition(count == WireGuardMessage.cookieReplyLength && output[0] == 3, "a cookie reply")
                return (.writeToNetwork(count: count), Array(output.prefix(count)))
            }
        }
        let result = datagram.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { tunnel.decapsulate(input, from: EndpointKey([1, 2, 3, 4, 5, 6]), into: $0, now: now) }
        }
        switch result {
        case .writeToNetwork(let count):
            precondition(count <= output.count, "output length within the buffer")
            return (result, Array(output.prefix(count)))
        case let .writeToTunnel(offset, count):
            precondition(offset + count <= output.count, "packet within the buffer")
            return (result, Array(output[offset..<(offset + count)]))
        default:
            return (result, [])
        }
    }

    func send(_ payload: [UInt8], from tunnel: WireGuardTunnel) -> [UInt8] {
        let result = payload.withUnsafeBytes { packet in
            output.withUnsafeMutableBytes { tunnel.encapsulate(packet, into: $0, now: now) }
        }
        guard case .writeToNetwork(let count) = result else { return [] }
        return Array(output.prefix(count))
    }

    func drain(_ tunnel: WireGuardTunnel) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while let count = output.withUnsafeMutableBytes({ tunnel.pollTransmit(into: $0, now: now) }) {
            messages.append(Array(output.prefix(count)))
        }
        return messages
    }

    /// A full legitimate exchange must still work: a handshake (new, or a pending one retransmitted) and
    /// a packet each way.
    func checkStillWorks() {
        now = now + .seconds(20)
        alice.handleTimeout(now: now)
        bob.handleTimeout(now: now)
        _ = alice.initiateHandshake(now: now)
        var inFlight: [([UInt8], WireGuardTunnel)] = drain(alice).map { ($0, bob) } + drain(bob).map { ($0, alice) }
        var rounds = 0
        var exchanged: [[UInt8]] = []
        while !inFlight.isEmpty, rounds < 50 {
            rounds += 1
            let (datagram, target) = inFlight.removeFirst()
            exchanged.append(datagram)
            let other = target === alice ? bob : alice
            let (result, written) = deliver(datagram, to: target)
            if case .writeToNetwork = result { inFlight.append((written, other)) }
            for message in drain(target) { inFlight.append((message, other)) }
        }
        let payload: [UInt8] = [0x45, 0, 0, 20, 1, 2, 3, 4]
        let toBob = send(payload, from: alice)
        precondition(toBob.count == payload.count + 32, "alice has a session after fuzzing")
        let (received, plaintext) = deliver(toBob, to: bob)
        precondition(received == .writeToTunnel(offset: 16, count: payload.count) && plaintext == payload,
                     "bob decrypts alice's packet after fuzzing: \(received)")
        let toAlice = send(payload, from: bob)
        precondition(toAlice.count == payload.count + 32, "bob can send after fuzzing")
        let (back, _) = deliver(toAlice, to: alice)
        precondition(back == .writeToTunnel(offset: 16, count: payload.count), "alice decrypts bob's packet: \(back)")
        precondition(alice.lastHandshake.map { $0 <= now } == true, "the status view's latest handshake is in the past")
        checkKeyLogDecrypts(exchanged, [toBob, toAlice], payload)
    }

    /// The key log's secrets, parsed back, open both data messages of the session just made.
    func checkKeyLogDecrypts(_ handshake: [[UInt8]], _ data: [[UInt8]], _ payload: [UInt8]) {
        let secrets: [WireGuardSessionSecrets]
        do {
            secrets = try WireGuardKeyLog.parse(keyLog)
        } catch {
            fatalError("the key log the tunnels wrote does not parse: \(error)")
        }
        var decryptor = WireGuardDecryptor(secrets: secrets)
        for message in handshake {
            message.withUnsafeBytes { bytes in
                switch WireGuardMessage.peek(bytes) {
                case .initiation?: decryptor.addInitiation(bytes)
                case .response?: decryptor.addResponse(bytes)
                default: break
                }
            }
        }
        for message in data {
            let opened = message.withUnsafeBytes { decryptor.open($0) }
            guard case .plaintext(let plaintext, _) = opened, plaintext == payload else {
                fatalError("the key log does not open the session's data: \(opened)")
            }
        }
    }
}

/// Real messages of one handshake and session, to mutate.
let templates: [[UInt8]] = {
    let harness = Harness()
    let initiation = harness.send([0x45, 0, 0, 4], from: harness.alice)
    let (_, response) = harness.deliver(initiation, to: harness.bob)
    let (_, keepalive) = harness.deliver(response, to: harness.alice)
    let data = harness.drain(harness.alice).first ?? keepalive
    return [initiation, response, keepalive, data, [3, 0, 0, 0] + [UInt8](repeating: 7, count: 60)]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNoise(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    do {
        _ = try WireGuardKeyLog.parse(String(decoding: bytes, as: UTF8.self))
    } catch {
        precondition(error.line >= 1 && !error.message.isEmpty, "a key log error names its line")
    }
    let harness = Harness()
    var index = 0
    var records = 0
    while index + 4 <= bytes.count, records < 64 {
        let target = bytes[index]
        harness.now = harness.now + .milliseconds(Int64(bytes[index + 1]) * 100)
        let length = min(Int(bytes[index + 2]) << 8 | Int(bytes[index + 3]), bytes.count - index - 4)
        var datagram = Array(bytes[(index + 4)..<(index + 4 + length)])
        index += 4 + length
        records += 1
        if target & 2 != 0 {
            var template = templates[Int(target >> 2) % templates.count]
            for (offset, byte) in datagram.enumerated() where !template.isEmpty {
                template[(offset * 7 + 1) % template.count] ^= byte
            }
            datagram = template
        }
        let tunnel = target & 1 == 0 ? harness.bob : harness.alice
        _ = harness.deliver(datagram, to: tunnel)
        tunnel.handleTimeout(now: harness.now)
        _ = harness.drain(tunnel)
        _ = tunnel.pollEvent()
    }
    harness.checkStillWorks()
    return 0
}
