import AppMetrics
import AppRuntime
import SansIO
import Tunnel

/// The gateway's metrics, exported in Prometheus' text format at `GET /metrics` on the health check's address
/// (and with `--metrics stdout` on standard output). A sample is read on the event loop's thread.
enum GatewayMetrics {
    struct Sample: Sendable {
        var loop: EventLoopStatistics
        var gateway: GatewayStatistics
        var node: NodeStatistics
        var connections: Int
        var peers: [PeerStatus]
    }

    static func make() -> PrometheusTotals<Sample> {
        var metrics = PrometheusTotals<Sample>.Metric.dataPlane(loop: \.loop, node: \.node)
        metrics.append(.total("malformed_packets") { $0.gateway.malformed })
        metrics.append(.gauge("client_connections") { $0.connections })
        for drop in GatewayDrop.allCases {
            metrics.append(.total("dropped_packets", dimensions: [("reason", "\(drop)")]) { $0.gateway.drops[drop] ?? 0 })
        }
        return PrometheusTotals(prefix: "firezone_gateway_", metrics)
    }

    /// Samples the gateway's statistics on the loop's thread.
    static func sample(_ loop: EventLoop<GatewayState>) async -> Sample {
        await loop.sample { state, now in
            Sample(loop: loop.statistics, gateway: state.statistics, node: state.nodeStatistics, connections: state.connectionCount,
                   peers: status(of: state, now: now).peers)
        }
    }

    /// The gateway's connections for `status`, read on the loop's thread.
    static func status(_ loop: EventLoop<GatewayState>) async -> NodeStatus {
        await loop.sample { state, now in status(of: state, now: now) }
    }

    /// The exposition text: the totals, then each peer's series.
    static func render(_ metrics: PrometheusTotals<Sample>, _ sample: Sample) -> String {
        metrics.render(sample) + PeerMetrics.render(prefix: "firezone_gateway_", sample.peers)
    }

    private static func status(of state: GatewayState, now: Instant) -> NodeStatus {
        NodeStatus.make(role: "gateway", publicKey: state.publicKey.base64, peers: state.connections(now: now), relays: state.relays,
                        now: now) { state.resources(of: $0).map(\.description).sorted() }
    }
}
