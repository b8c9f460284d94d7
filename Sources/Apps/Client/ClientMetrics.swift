import AppMetrics
import AppRuntime
import SansIO
import Tunnel

/// The client's metrics for `--metrics stdout`: Prometheus text on standard output every 60 s and at shutdown.
/// A sample is read on the event loop's thread.
enum ClientMetrics {
    struct Sample: Sendable {
        var loop: EventLoopStatistics
        var client: ClientStatistics
        var node: NodeStatistics
        var connections: Int
        var peers: [PeerStatus]
    }

    static func make() -> PrometheusTotals<Sample> {
        var metrics = PrometheusTotals<Sample>.Metric.dataPlane(loop: \.loop, node: \.node)
        metrics.append(.total("malformed_packets") { $0.client.malformed })
        metrics.append(.gauge("gateway_connections") { $0.connections })
        for drop in ClientDrop.allCases {
            metrics.append(.total("dropped_packets", dimensions: [("reason", "\(drop)")]) { $0.client.drops[drop] ?? 0 })
        }
        return PrometheusTotals(prefix: "firezone_client_", metrics)
    }

    /// Samples the client's statistics on the loop's thread.
    static func sample(_ loop: EventLoop<ClientState>) async -> Sample {
        await loop.sample { state, now in
            Sample(loop: loop.statistics, client: state.statistics, node: state.nodeStatistics, connections: state.connectionCount,
                   peers: status(of: state, now: now).peers)
        }
    }

    /// The client's connections for `status`, read on the loop's thread.
    static func status(_ loop: EventLoop<ClientState>) async -> NodeStatus {
        await loop.sample { state, now in status(of: state, now: now) }
    }

    /// The exposition text: the totals, then each peer's series.
    static func render(_ metrics: PrometheusTotals<Sample>, _ sample: Sample) -> String {
        metrics.render(sample) + PeerMetrics.render(prefix: "firezone_client_", sample.peers)
    }

    private static func status(of state: ClientState, now: Instant) -> NodeStatus {
        NodeStatus.make(role: "client", publicKey: state.publicKey.base64, peers: state.connections(now: now), relays: state.relays,
                        now: now) { state.resources(on: $0).map(\.description) }
    }
}
