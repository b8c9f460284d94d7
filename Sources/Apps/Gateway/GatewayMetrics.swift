import AppMetrics
import AppRuntime
import Tunnel

/// The gateway's metrics, exported in Prometheus' text format at `GET /metrics` on the health check's address
/// (and with `--metrics stdout` on standard output). A sample is read on the event loop's thread.
enum GatewayMetrics {
    struct Sample: Sendable {
        var loop: EventLoopStatistics
        var gateway: GatewayStatistics
        var node: NodeStatistics
        var connections: Int
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
        await withCheckedContinuation { continuation in
            loop.execute { state, _ in
                continuation.resume(returning: Sample(loop: loop.statistics, gateway: state.statistics, node: state.nodeStatistics,
                                                      connections: state.connectionCount))
            }
        }
    }
}
