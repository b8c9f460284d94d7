import Benchmark
import Foundation
import Ice
import Noise
import PortalMessages
import SansIO
import Stun
import Tunnel
import Turn

/// The Node's per-packet path between two connected nodes (direct path): encrypt on one side, de-multiplex and
/// decrypt in place on the other. Must not allocate.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(2),
        maxIterations: 10_000_000
    )

    Benchmark("Node encapsulate + decapsulate, 1280-byte packet, direct path", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let pair = ConnectedPair()
        let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: 1280, alignment: 16)
        let wire = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer {
            packet.deallocate()
            wire.deallocate()
        }
        packet.initializeMemory(as: UInt8.self, repeating: 0x45)
        let now = pair.now
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            guard let datagram = try pair.client.encapsulate(pair.peer, packet: UnsafeRawBufferPointer(packet), into: wire, now: now),
                  let received = try pair.gateway.decapsulate(local: pair.gatewayAddress, from: pair.clientAddress, buffer: wire,
                                                              count: datagram.count, now: now)
            else { fatalError("the connected pair stopped passing packets") }
            blackHole(received)
        }
    }
}

/// Two nodes connected over an in-memory wire: a relay stand-in answers BINDING (so each node learns its
/// host candidate), candidates are exchanged directly, and virtual time runs until both sides established.
final class ConnectedPair {
    /// Both sides use the same id for each other; apps use GatewayId on the client and ClientId on the gateway.
    let peer = GatewayId(UUID(uuidString: "99999999-2222-3333-4444-555555555555")!)
    let client: Node<GatewayId>
    let gateway: Node<GatewayId>
    let clientAddress = SocketAddress("10.0.0.1:41000")!
    let gatewayAddress = SocketAddress("10.0.0.2:51820")!
    let relay = SocketAddress("192.0.2.1:3478")!
    var now = Instant(nanoseconds: 1_000_000_000)
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

    init() {
        var random = SplitMix64(seed: 42)
        func key() -> SecretKey { SecretKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })! }
        client = Node(role: .client, privateKey: key(), now: now, unixTimeNanoseconds: 1_790_000_000_000_000_000,
                      random: SplitMix64(seed: 1))
        gateway = Node(role: .gateway, privateKey: key(), now: now, unixTimeNanoseconds: 1_790_000_000_000_000_000,
                       random: SplitMix64(seed: 2))
        let description = RelayDescription(id: "relay", server: RelayServer(ipv4: relay),
                                           credentials: TurnCredentials(username: "u", password: "p", realm: "firezone"))
        client.updateRelays(removing: [], adding: [description], now: now)
        gateway.updateRelays(removing: [], adding: [description], now: now)
        pump()
        let clientIce = IceCredentials(ufrag: "cccc", password: "client-password-0123456789")
        let gatewayIce = IceCredentials(ufrag: "gggg", password: "gateway-password-012345678")
        let psk = SecretKey(bytes: [UInt8](repeating: 7, count: 32))!
        try! gateway.upsertConnection(peer, remoteKey: client.publicKey, presharedKey: psk, local: gatewayIce, remote: clientIce, now: now)
        try! client.upsertConnection(peer, remoteKey: gateway.publicKey, presharedKey: psk, local: clientIce, remote: gatewayIce, now: now)
        var established = 0
        for _ in 0..<500 where established < 2 {
            established += pump()
            now = now + .milliseconds(10)
            client.handleTimeout(now: now)
            gateway.handleTimeout(now: now)
        }
        var probe = [UInt8](repeating: 0, count: 20)
        probe[0] = 0x45
        _ = try! probe.withUnsafeBytes { try client.encapsulate(peer, packet: $0, into: buffer, now: now) }
        pump()
    }

    deinit {
        buffer.deallocate()
    }

    /// Delivers every pending transmit and candidate until both nodes are quiet; returns how many
    /// connections became established.
    @discardableResult
    func pump() -> Int {
        var established = 0
        var progress = true
        while progress {
            progress = false
            for (node, other, address, otherAddress) in [(client, gateway, clientAddress, gatewayAddress),
                                                         (gateway, client, gatewayAddress, clientAddress)] {
                while let transmit = node.pollTransmit() {
                    progress = true
                    deliver(transmit, from: address, node: node, other: other, otherAddress: otherAddress)
                }
                while let event = node.pollEvent() {
                    progress = true
                    switch event {
                    case .newIceCandidate(_, let candidate): other.addRemoteCandidate(peer, candidate, now: now)
                    case .connectionEstablished: established += 1
                    default: break
                    }
                }
            }
        }
        return established
    }

    private func deliver(_ transmit: NodeTransmit, from address: SocketAddress, node: Node<GatewayId>, other: Node<GatewayId>,
                         otherAddress: SocketAddress) {
        if transmit.destination == relay {
            guard let request = try? StunMessage(decoding: transmit.payload), request.method == .binding else { return }
            let response = StunMessage(class: .successResponse, method: .binding, transactionId: request.transactionId,
                                       attributes: [.xorMappedAddress(address)]).encode()
            buffer.copyBytes(from: response)
            _ = try? node.decapsulate(local: address, from: relay, buffer: buffer, count: response.count, now: now)
            return
        }
        guard transmit.destination == otherAddress else { return }
        buffer.copyBytes(from: transmit.payload)
        _ = try? other.decapsulate(local: otherAddress, from: transmit.source ?? address, buffer: buffer,
                                   count: transmit.payload.count, now: now)
    }
}
