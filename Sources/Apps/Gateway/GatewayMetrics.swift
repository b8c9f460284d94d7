import AppMetrics
import AppRuntime
import Tunnel

/// The gateway's metrics, exported in Prometheus' text format at `GET /metrics` on the health check's address
/// (and with `--metrics stdout` on standard output). A sample is read on the event loop's thread.
enum GatewayMetrics {
    struct Sample: Sendable {
        var loop: EventLoop<GatewayState>.Statistics
        var gateway: GatewayStatistics
        var node: NodeStatistics
        var connections: Int
    }

    static func make() -> PrometheusTotals<Sample> {
        var metrics: [PrometheusTotals<Sample>.Metric] = [
            .total("datagrams_received") { $0.loop.datagramsReceived },
            .total("datagrams_sent") { $0.loop.datagramsSent },
            .total("tun_packets_read") { $0.loop.tunPacketsRead },
            .total("tun_packets_written") { $0.loop.tunPacketsWritten },
            .total("tun_frames_read") { $0.loop.tunFramesRead },
            .total("tun_frames_written") { $0.loop.tunFramesWritten },
            .total("tun_write_failures") { $0.loop.tunWriteFailures },
            .total("refused") { $0.loop.refused },
            .total("malformed_tun_packets") { $0.loop.malformedTunPackets },
            .total("send_failures") { $0.loop.sendFailures },
            .total("batches") { $0.loop.batches },
            .total("datagrams_from_stale_relays") { $0.node.fromStaleRelay },
            .total("unmatched_stun_messages") { $0.node.unmatchedStun },
            .total("unbound_channel_data") { $0.node.unboundChannelData },
            .total("packets_without_path") { $0.node.droppedWithoutPath },
            .total("malformed_packets") { $0.gateway.malformed },
            .gauge("client_connections") { $0.connections },
        ]
        for drop in GatewayDrop.allCases {
            metrics.append(.total("dropped_packets", dimensions: [("reason", "\(drop)")]) { $0.gateway.drops[drop] ?? 0 })
        }
        return PrometheusTotals(prefix: "firezone_gateway_", metrics)
    }

    /// Samples the gateway's statistics on the loop's thread.
    static func sample(_ loop: EventLoop<GatewayState>) async -> Sample {
        await withCheckedContinuation { continuation in
            loop.execute { state, _ in
                continuation.resume(returning: Sample(loop: loop.statistics, gateway: state.statistics, node: state.node.statistics,
                                                      connections: state.node.connectionCount))
            }
        }
    }
}
