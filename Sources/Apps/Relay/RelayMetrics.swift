import AppMetrics

/// The relay's metrics in Prometheus' text format at `GET /metrics`: allocations and channels, answers by class and
/// error code, relayed datagrams and bytes by direction, authentication failures, clients on TCP.
enum RelayMetrics {
    static let errorCodes = [400, 401, 420, 437, 438, 440, 443, 508]

    static func make() -> PrometheusTotals<RelayLoop.Snapshot> {
        var metrics: [PrometheusTotals<RelayLoop.Snapshot>.Metric] = [
            .gauge("allocations") { $0.allocations },
            .gauge("channels") { $0.channels },
            .total("responses", dimensions: [("class", "success")]) { $0.relay.successResponses },
            .total("authentication_failures") { $0.relay.authenticationFailures },
            .total("relayed_datagrams", dimensions: [("direction", "to_peer")]) { $0.relay.relayedToPeers },
            .total("relayed_datagrams", dimensions: [("direction", "to_client")]) { $0.relay.relayedToClients },
            .total("relayed_bytes", dimensions: [("direction", "to_peer")]) { $0.relay.relayedToPeersBytes },
            .total("relayed_bytes", dimensions: [("direction", "to_client")]) { $0.relay.relayedToClientsBytes },
            .total("dropped_datagrams") { $0.relay.dropped },
            .total("datagrams_from_port_zero") { $0.relay.fromPortZero },
            .total("allocations_freed_by_username") { $0.relay.allocationsFreedByUsername },
            .total("datagrams_received") { $0.datagramsReceived },
            .total("datagrams_sent") { $0.datagramsSent },
            .total("send_failures") { $0.sendFailures },
            .gauge("stream_clients") { $0.streamClients },
            .total("streams_accepted") { $0.streamsAccepted },
            .total("streams_refused") { $0.streamsRefused },
            .total("stream_framing_errors") { $0.streamFramingErrors },
            .total("stream_backpressure_drops") { $0.streamBackpressureDrops },
            .total("tls_failures") { $0.tlsFailures },
        ]
        for code in errorCodes {
            metrics.append(.total("responses", dimensions: [("class", "error"), ("code", "\(code)")]) { $0.relay.errorResponses[code] ?? 0 })
        }
        return PrometheusTotals(prefix: "firezone_relay_", metrics)
    }
}
