#if canImport(Glibc)
import Glibc
#endif
import IpPacket
import PcapFile
import SansIO
import Turn

/// The pcaps of what crossed each boundary, raw IP link type, nanosecond timestamps.
final class ReplayOutputs {
    enum Boundary: String, CaseIterable {
        /// UDP between client, gateway and relay: STUN, ChannelData, WireGuard.
        case wire
        /// What the gateway wrote to its TUN device, after NAT.
        case gatewayEgress = "gateway-egress"
        /// What the client's TUN device received.
        case clientTun = "client-tun"
    }

    private(set) var paths: [String: String] = [:]
    private var writers: [Boundary: PcapWriter] = [:]
    private(set) var writeErrors = 0

    init(directory: String) throws(ReplayInputError) {
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            throw ReplayInputError("cannot create the output directory \(directory): \(String(cString: strerror(errno)))")
        }
        for boundary in Boundary.allCases {
            let path = directory + "/" + boundary.rawValue + ".pcap"
            do {
                writers[boundary] = try PcapWriter(path: path, linkType: .raw)
            } catch {
                throw ReplayInputError("cannot write \(path): \(error.message)")
            }
            paths[boundary.rawValue] = path
        }
    }

    func write(_ packet: IpPacket, to boundary: Boundary, at unixNanoseconds: Int64) {
        do {
            try packet.withUnsafeBytes { bytes throws(PcapError) in
                try writers[boundary]?.write(bytes, timestampNanoseconds: unixNanoseconds)
            }
        } catch {
            writeErrors += 1
        }
    }

    /// A datagram as an IP/UDP packet with valid checksums.
    func write(_ datagram: Datagram, at unixNanoseconds: Int64) {
        guard let packet = try? IpPacket.udp(source: datagram.source.ip, destination: datagram.destination.ip,
                                             sourcePort: datagram.source.port, destinationPort: datagram.destination.port,
                                             payload: datagram.payload)
        else {
            writeErrors += 1
            return
        }
        write(packet, to: .wire, at: unixNanoseconds)
        PacketBufferPool.shared.recycle(packet)
    }

    func close() {
        for writer in writers.values { writer.close() }
    }
}
