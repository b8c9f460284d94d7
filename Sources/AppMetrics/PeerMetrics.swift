import Foundation

/// Per-peer series in Prometheus' text format, labelled by peer id (and path), appended to the totals of
/// ``PrometheusTotals``. Beyond ``maximumPeers`` peers none are written: the series would cost the metrics
/// store more than they tell.
public enum PeerMetrics {
    public static let maximumPeers = 256

    /// The exposition text of each peer's traffic, RTT and handshake age, each metric named `prefix` + `peer_…`.
    public static func render(prefix: String, _ peers: [PeerStatus]) -> String {
        guard !peers.isEmpty, peers.count <= maximumPeers else { return "" }
        let series: [(name: String, type: String, help: String, value: (PeerStatus) -> Double?)] = [
            ("peer_received_bytes_total", "counter", "WireGuard data bytes received from the peer", { Double($0.bytesReceived) }),
            ("peer_sent_bytes_total", "counter", "WireGuard data bytes sent to the peer", { Double($0.bytesSent) }),
            ("peer_received_packets_total", "counter", "WireGuard data messages received from the peer", { Double($0.packetsReceived) }),
            ("peer_sent_packets_total", "counter", "WireGuard data messages sent to the peer", { Double($0.packetsSent) }),
            ("peer_rtt_seconds", "gauge", "The path's round-trip time from ICE's latest answered check", { $0.rttMilliseconds.map { $0 / 1000 } }),
            ("peer_last_handshake_age_seconds", "gauge", "Seconds since the latest WireGuard handshake", { $0.lastHandshakeSecondsAgo }),
        ]
        var lines: [String] = []
        for metric in series {
            lines.append("# HELP \(prefix)\(metric.name) \(metric.help)")
            lines.append("# TYPE \(prefix)\(metric.name) \(metric.type)")
            for peer in peers {
                guard let value = metric.value(peer) else { continue }
                lines.append("\(prefix)\(metric.name){peer=\"\(escaped(peer.id))\",path=\"\(peer.path)\"} \(value)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
