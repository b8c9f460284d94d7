import Dns
import Foundation
import IpPacket
import Noise
import PortalMessages
import SansIO
import SimulatedNetwork
import Tunnel

/// A ``GatewayState`` on the simulated network. Packets it writes to its TUN device go to `kernel`, which
/// plays the resources behind the gateway and may answer; answers go back through ``GatewayState/handleTunPacket``.
final class SimulatedGateway: SimulatedHost {
    let state: GatewayState
    let socket: SocketAddress
    /// Every packet the gateway wrote to its TUN device.
    private(set) var toTun: [IpPacket] = []
    private(set) var errors: [TunnelError] = []
    /// The resources behind the gateway: given a packet from the TUN device, the reply (if any).
    var kernel: (IpPacket) -> IpPacket? = { _ in nil }
    var onPortalMessage: (GatewayEgress) -> Void = { _ in }
    /// Answers the gateway's resolve requests (as the system resolver would), 10 ms later; `nil` is a failure.
    var resolver: ((DnsName) -> [IpAddress]?)?
    /// The nameserver behind the TUN DNS server (port 53535), answering 10 ms later; `nil` answers nothing.
    var nameserver: ((DnsMessage) -> DnsMessage?)?
    private(set) var events: [GatewayEvent] = []
    /// Flow records (flow tracking is on, as with `flow_logs=trace`) that break the tracker's own rules.
    private(set) var flowProblems: [String] = []
    private(set) var flowRecords = 0
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)

    init(socket: SocketAddress, in simulation: Simulation) {
        self.socket = socket
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &simulation.random) }
        state = GatewayState(privateKey: SecretKey(bytes: seed)!, now: simulation.now,
                             unixTimeNanoseconds: simulation.unixAnchor, random: SplitMix64(seed: simulation.random.next()))
        state.tracksFlows = true
        simulation.attach(self, at: socket.ip)
    }

    deinit {
        output.deallocate()
    }

    var description: String { "gateway \(socket)" }

    /// Delivers a portal message in its wire form, as the channel would.
    func deliver(_ message: GatewayIngress, in simulation: Simulation) throws {
        state.handle(try GatewayIngress(event: message.event, payload: message.payload), now: simulation.now)
        flush(in: simulation)
    }

    func receive(_ datagram: Datagram, in simulation: Simulation) {
        let buffer = PacketBufferPool.shared.take()
        guard datagram.payload.withUnsafeBytes({ buffer.copy(from: $0) }) else { return }
        do {
            if let packet = try state.handleDatagram(local: socket, from: datagram.source, buffer: buffer,
                                                     count: datagram.payload.count, now: simulation.now) {
                toTun.append(packet)
                if var reply = kernel(packet) { fromTun(&reply, in: simulation) }
            }
        } catch {
            errors.append(error)
        }
        flush(in: simulation)
    }

    /// A packet the kernel routes into the TUN device towards a client.
    func fromTun(_ packet: inout IpPacket, in simulation: Simulation) {
        do {
            if let datagram = try state.handleTunPacket(&packet, into: output, now: simulation.now) {
                simulation.send(Datagram(source: datagram.source ?? socket, destination: datagram.destination,
                                         payload: Array(output[0..<datagram.count])))
            }
        } catch {
            errors.append(error)
        }
        flush(in: simulation)
    }

    func nextDeadline() -> Instant? { state.pollTimeout() }

    func advance(in simulation: Simulation) {
        state.handleTimeout(now: simulation.now)
        flush(in: simulation)
    }

    func flush(in simulation: Simulation) {
        while let transmit = state.pollTransmit() {
            simulation.send(Datagram(source: transmit.source ?? socket, destination: transmit.destination, payload: transmit.payload))
        }
        while let message = state.pollPortalMessage() { onPortalMessage(message) }
        while let flow = state.pollFlowRecord() {
            flowRecords += 1
            if flow.txPackets < 1 || !(flow.start <= flow.lastPacket && flow.lastPacket <= flow.end) || flow.txBytes < 20 * flow.txPackets {
                flowProblems.append("gateway flow record out of order: \(flow)")
            }
        }
        while let event = state.pollEvent() {
            events.append(event)
            if case .forwardDns(let query) = event, let nameserver, let response = nameserver(query.query) {
                simulation.schedule(after: .milliseconds(10)) { [weak self] _ in
                    self?.state.dnsAnswered(query, response: response, now: simulation.now)
                    self?.flush(in: simulation)
                }
            }
            guard case .resolve(let request) = event, let resolver else { continue }
            simulation.schedule(after: .milliseconds(10)) { [weak self] _ in
                guard let self else { return }
                let result: Result<[IpAddress], any Error> = resolver(request.request.domain).map { .success($0) }
                    ?? .failure(ResolutionFailed())
                self.state.resolved(request, result: result, now: simulation.now)
                self.flush(in: simulation)
            }
        }
    }
}

struct ResolutionFailed: Error {}
