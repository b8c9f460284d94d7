import AppRuntime
import Tunnel

extension PrometheusTotals.Metric {
    /// The totals every node's data plane keeps: its event loop's and its node's, read from a sample through
    /// `loop` and `node`.
    public static func dataPlane(loop: @escaping @Sendable (Sample) -> EventLoopStatistics,
                                 node: @escaping @Sendable (Sample) -> NodeStatistics) -> [Self] {
        [
            .total("datagrams_received") { loop($0).datagramsReceived },
            .total("datagrams_sent") { loop($0).datagramsSent },
            .total("tun_packets_read") { loop($0).tunPacketsRead },
            .total("tun_packets_written") { loop($0).tunPacketsWritten },
            .total("tun_frames_read") { loop($0).tunFramesRead },
            .total("tun_frames_written") { loop($0).tunFramesWritten },
            .total("tun_write_failures") { loop($0).tunWriteFailures },
            .total("refused") { loop($0).refused },
            .total("malformed_tun_packets") { loop($0).malformedTunPackets },
            .total("send_failures") { loop($0).sendFailures },
            .total("socket_replacement_failures") { loop($0).socketReplacementFailures },
            .total("udp_segmentation_refusals") { loop($0).segmentationRefusals },
            .total("batches") { loop($0).batches },
            .total("datagrams_from_stale_relays") { node($0).fromStaleRelay },
            .total("unmatched_stun_messages") { node($0).unmatchedStun },
            .total("unbound_channel_data") { node($0).unboundChannelData },
            .total("packets_without_path") { node($0).droppedWithoutPath },
        ]
    }
}
