import AppRuntime
import Metrics
import Prometheus
import Synchronization
import Tunnel

/// The gateway's metrics on swift-metrics, exported in Prometheus' text format at `GET /metrics` on the health
/// check's address. The data path only counts into its own statistics; a scrape samples them on the event
/// loop's thread and moves the swift-metrics counters by what changed since the last scrape, so no packet
/// pays for a metric.
final class GatewayMetrics: Sendable {
    /// One value the gateway counts, as a Prometheus name and how to read it from a sample.
    private struct Total: Sendable {
        let counter: Metrics.Counter
        let read: @Sendable (Sample) -> Int
    }

    /// What a scrape reads on the loop's thread.
    struct Sample: Sendable {
        var loop: EventLoop<GatewayState>.Statistics
        var gateway: GatewayStatistics
        var node: NodeStatistics
        var connections: Int
    }

    private let registry = PrometheusCollectorRegistry()
    private let totals: [Total]
    private let connections: Metrics.Gauge
    private let previous = Mutex<[Int]>([])

    /// Makes the metrics and points swift-metrics at their registry (once per process).
    init() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        func total(_ name: String, dimensions: [(String, String)] = [], _ read: @escaping @Sendable (Sample) -> Int) -> Total {
            Total(counter: Metrics.Counter(label: "firezone_gateway_\(name)_total", dimensions: dimensions), read: read)
        }
        var totals = [
            total("datagrams_received") { $0.loop.datagramsReceived },
            total("datagrams_sent") { $0.loop.datagramsSent },
            total("tun_packets_read") { $0.loop.tunPacketsRead },
            total("tun_packets_written") { $0.loop.tunPacketsWritten },
            total("tun_frames_read") { $0.loop.tunFramesRead },
            total("tun_frames_written") { $0.loop.tunFramesWritten },
            total("tun_write_failures") { $0.loop.tunWriteFailures },
            total("refused") { $0.loop.refused },
            total("malformed_tun_packets") { $0.loop.malformedTunPackets },
            total("send_failures") { $0.loop.sendFailures },
            total("batches") { $0.loop.batches },
            total("datagrams_from_stale_relays") { $0.node.fromStaleRelay },
            total("unmatched_stun_messages") { $0.node.unmatchedStun },
            total("unbound_channel_data") { $0.node.unboundChannelData },
            total("packets_without_path") { $0.node.droppedWithoutPath },
            total("malformed_packets") { $0.gateway.malformed },
        ]
        for drop in GatewayDrop.allCases {
            totals.append(total("dropped_packets", dimensions: [("reason", "\(drop)")]) { $0.gateway.drops[drop] ?? 0 })
        }
        self.totals = totals
        connections = Metrics.Gauge(label: "firezone_gateway_client_connections")
    }

    /// The exposition text after moving every metric to `sample`.
    func render(_ sample: Sample) -> String {
        previous.withLock { previous in
            let values = totals.map { $0.read(sample) }
            for (index, total) in totals.enumerated() {
                let delta = values[index] - (index < previous.count ? previous[index] : 0)
                if delta > 0 { total.counter.increment(by: delta) }
            }
            previous = values
        }
        connections.record(sample.connections)
        return registry.emitToString()
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
