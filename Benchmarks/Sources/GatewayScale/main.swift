import CHeapInUse
import Foundation
import Glibc
import Ice
import Noise
import PortalMessages
import SansIO
import Stun
import Tunnel
import Turn

// One gateway `Node<ClientId>` serving N client `Node<GatewayId>`s over an in-memory wire (a BINDING responder
// stands in for the relay, candidates are exchanged directly, virtual time). Reports:
// - connections per second: wall time until every client is established (ICE checks and the WireGuard
//   handshake, both sides' CPU, since all nodes share this process);
// - the gateway's memory per client: heap in use (mallinfo2) with the gateway and its N connections after the
//   clients are gone, minus the heap with an empty gateway;
// - the gateway's packets per second with N peers: decapsulating 1280-byte packets from the clients in turn,
//   then encapsulating replies to them in turn (the clients' own encryption is done beforehand, untimed).
//
// Usage: GatewayScale [clients] [packets per client]   (defaults 1000 and 50)

let clientCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
let packetsPerClient = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 50 : 50

func heapInUse() -> Int { Int(heap_in_use()) }

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// The gateway, its clients and the wire between them.
final class Fleet {
    let gatewayId = GatewayId(UUID(uuidString: "99999999-2222-3333-4444-555555555555")!)
    let gatewayAddress = SocketAddress("10.0.0.1:51820")!
    let relay = SocketAddress("192.0.2.1:3478")!
    let gateway: Node<ClientId>
    var clients: [Node<GatewayId>] = []
    var clientIds: [ClientId] = []
    var clientAddresses: [SocketAddress] = []
    var clientByAddress: [SocketAddress: Int] = [:]
    var now = Instant(nanoseconds: 1_000_000_000)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    private var random = SplitMix64(seed: 42)
    private var relayDescription: RelayDescription {
        RelayDescription(id: "relay", server: RelayServer(ipv4: relay), credentials: TurnCredentials(username: "u", password: "p", realm: "firezone"))
    }

    init() {
        gateway = Node(role: .gateway, privateKey: Self.key(&random), now: now, unixTimeNanoseconds: 1_790_000_000_000_000_000,
                       random: SplitMix64(seed: 1))
        gateway.updateRelays(removing: [], adding: [relayDescription], now: now)
        pump()
    }

    static func key(_ random: inout SplitMix64) -> SecretKey {
        SecretKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })!
    }

    /// Creates the clients and both sides of every connection.
    func connectAll(_ count: Int) {
        let psk = SecretKey(bytes: [UInt8](repeating: 7, count: 32))!
        for index in 0..<count {
            let client = Node<GatewayId>(role: .client, privateKey: Self.key(&random), now: now,
                                         unixTimeNanoseconds: 1_790_000_000_000_000_000, random: SplitMix64(seed: UInt64(index) + 100))
            client.updateRelays(removing: [], adding: [relayDescription], now: now)
            let address = SocketAddress("10.1.\(index / 250).\(index % 250 + 1):41000")!
            let id = ClientId(UUID())
            clients.append(client)
            clientIds.append(id)
            clientAddresses.append(address)
            clientByAddress[address] = index
            let clientIce = IceCredentials(ufrag: "c\(index)", password: "client-password-0123456789-\(index)")
            let gatewayIce = IceCredentials(ufrag: "g\(index)", password: "gateway-password-012345678-\(index)")
            try! gateway.upsertConnection(id, remoteKey: client.publicKey, presharedKey: psk, local: gatewayIce, remote: clientIce, now: now)
            try! client.upsertConnection(gatewayId, remoteKey: gateway.publicKey, presharedKey: psk, local: clientIce, remote: gatewayIce,
                                         now: now)
        }
    }

    /// Runs virtual time in 10 ms steps until every client and the gateway announced every connection.
    func establishAll() -> Bool {
        var establishedOnGateway = 0
        var establishedOnClients = 0
        for _ in 0..<3_000 where establishedOnGateway < clients.count || establishedOnClients < clients.count {
            let counts = pump()
            establishedOnGateway += counts.gateway
            establishedOnClients += counts.clients
            now = now + .milliseconds(10)
            gateway.handleTimeout(now: now)
            for client in clients { client.handleTimeout(now: now) }
        }
        return establishedOnGateway == clients.count && establishedOnClients == clients.count
    }

    /// Delivers every transmit and candidate until all nodes are quiet: the connections established meanwhile.
    @discardableResult
    func pump() -> (gateway: Int, clients: Int) {
        var established = (gateway: 0, clients: 0)
        var progress = true
        while progress {
            progress = false
            while let transmit = gateway.pollTransmit() {
                progress = true
                deliver(transmit, from: gatewayAddress, sender: nil)
            }
            while let event = gateway.pollEvent() {
                progress = true
                switch event {
                case let .newIceCandidate(peer, candidate):
                    guard let index = clientIds.firstIndex(of: peer) else { continue }
                    clients[index].addRemoteCandidate(gatewayId, candidate, now: now)
                case .connectionEstablished: established.gateway += 1
                default: break
                }
            }
            for (index, client) in clients.enumerated() {
                while let transmit = client.pollTransmit() {
                    progress = true
                    deliver(transmit, from: clientAddresses[index], sender: index)
                }
                while let event = client.pollEvent() {
                    progress = true
                    switch event {
                    case .newIceCandidate(_, let candidate): gateway.addRemoteCandidate(clientIds[index], candidate, now: now)
                    case .connectionEstablished: established.clients += 1
                    default: break
                    }
                }
            }
        }
        return established
    }

    private func deliver(_ transmit: NodeTransmit, from address: SocketAddress, sender: Int?) {
        if transmit.destination == relay {
            guard let request = try? StunMessage(decoding: transmit.payload), request.method == .binding else { return }
            let response = StunMessage(class: .successResponse, method: .binding, transactionId: request.transactionId,
                                       attributes: [.xorMappedAddress(address)]).encode()
            buffer.copyBytes(from: response)
            let node: (SocketAddress, SocketAddress, UnsafeMutableRawBufferPointer, Int, Instant) throws -> Void = sender.map { index in
                { _ = try self.clients[index].decapsulate(local: $0, from: $1, buffer: $2, count: $3, now: $4) }
            } ?? { _ = try self.gateway.decapsulate(local: $0, from: $1, buffer: $2, count: $3, now: $4) }
            try? node(address, relay, buffer, response.count, now)
            return
        }
        buffer.copyBytes(from: transmit.payload)
        let source = transmit.source ?? address
        if transmit.destination == gatewayAddress {
            _ = try? gateway.decapsulate(local: gatewayAddress, from: source, buffer: buffer, count: transmit.payload.count, now: now)
        } else if let index = clientByAddress[transmit.destination] {
            _ = try? clients[index].decapsulate(local: transmit.destination, from: source, buffer: buffer, count: transmit.payload.count,
                                                now: now)
        }
    }
}

let heapBefore = heapInUse()
var fleet: Fleet? = Fleet()
let heapEmptyGateway = heapInUse()

print("GatewayScale: \(clientCount) clients, \(packetsPerClient) packets each way per client")
let connectStart = ContinuousClock.now
fleet!.connectAll(clientCount)
guard fleet!.establishAll() else {
    print("GatewayScale: not every connection was established")
    exit(1)
}
let connectSeconds = seconds(since: connectStart)

// The clients' packets, encrypted beforehand: round-major, so the gateway sees its peers in turn.
let slot = 1280 + 64
let stored = UnsafeMutableRawBufferPointer.allocate(byteCount: clientCount * packetsPerClient * slot, alignment: 16)
var storedCounts = [Int](repeating: 0, count: clientCount * packetsPerClient)
let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: 1280, alignment: 16)
packet.initializeMemory(as: UInt8.self, repeating: 0x45)
for round in 0..<packetsPerClient {
    for index in 0..<clientCount {
        let entry = round * clientCount + index
        let into = UnsafeMutableRawBufferPointer(rebasing: stored[(entry * slot)..<((entry + 1) * slot)])
        let datagram = try fleet!.clients[index].encapsulate(fleet!.gatewayId, packet: UnsafeRawBufferPointer(packet), into: into,
                                                              now: fleet!.now)
        storedCounts[entry] = datagram?.count ?? 0
    }
}

let gateway = fleet!.gateway
let decapsulateStart = ContinuousClock.now
var decrypted = 0
for entry in 0..<(clientCount * packetsPerClient) {
    let buffer = UnsafeMutableRawBufferPointer(rebasing: stored[(entry * slot)..<((entry + 1) * slot)])
    let source = fleet!.clientAddresses[entry % clientCount]
    if (try? gateway.decapsulate(local: fleet!.gatewayAddress, from: source, buffer: buffer, count: storedCounts[entry], now: fleet!.now)) != nil {
        decrypted += 1
    }
}
let decapsulateSeconds = seconds(since: decapsulateStart)

let wire = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
let encapsulateStart = ContinuousClock.now
var encrypted = 0
for entry in 0..<(clientCount * packetsPerClient) {
    if (try? gateway.encapsulate(fleet!.clientIds[entry % clientCount], packet: UnsafeRawBufferPointer(packet), into: wire,
                                 now: fleet!.now)) != nil {
        encrypted += 1
    }
}
let encapsulateSeconds = seconds(since: encapsulateStart)
stored.deallocate()

// Only the gateway and its connections stay.
fleet!.clients = []
fleet!.clientByAddress = [:]
let heapGatewayWithClients = heapInUse()
let perClient = Double(heapGatewayWithClients - heapEmptyGateway) / Double(clientCount)

let total = clientCount * packetsPerClient
print(String(format: "connections established: %d in %.2f s wall = %.0f connections/s (ICE + WireGuard handshake, both sides)",
             clientCount, connectSeconds, Double(clientCount) / connectSeconds))
print(String(format: "gateway heap per client: %.1f KiB (%d bytes for %d clients; empty gateway %d bytes)",
             perClient / 1024, heapGatewayWithClients - heapEmptyGateway, clientCount, heapEmptyGateway - heapBefore))
print(String(format: "gateway decapsulate from %d peers in turn: %d/%d packets in %.3f s = %.0f packets/s (%.2f µs each)",
             clientCount, decrypted, total, decapsulateSeconds, Double(total) / decapsulateSeconds, decapsulateSeconds / Double(total) * 1e6))
print(String(format: "gateway encapsulate to %d peers in turn: %d/%d packets in %.3f s = %.0f packets/s (%.2f µs each)",
             clientCount, encrypted, total, encapsulateSeconds, Double(total) / encapsulateSeconds, encapsulateSeconds / Double(total) * 1e6))
if decrypted != total || encrypted != total {
    print("GatewayScale: some packets did not pass")
    exit(1)
}
