import AppRuntime
import Logging
import Tunnel

/// Flow logs (spec `portal-phoenix.md` §7.3): one TRACE record per finished flow, on the targets
/// `flow_logs::tcp` and `flow_logs::udp`, with Firezone's field names; fields the portal did not send are left out.
enum FlowLog {
    private static let tcp = Logger(label: "flow_logs::tcp")
    private static let udp = Logger(label: "flow_logs::udp")

    /// Whether a `RUST_LOG` filter turns flow tracking on: Firezone looks for the text `flow_logs=trace`.
    static func isEnabled(by filter: String) -> Bool {
        filter.contains("flow_logs=trace")
    }

    static func log(_ flow: FlowRecord) {
        var metadata: Logger.Metadata = [
            "client_id": "\(flow.client)",
            "resource_id": "\(flow.resource.map { "\($0)" } ?? "")",
            "start": "\(timestamp(flow.start))",
            "end": "\(timestamp(flow.end))",
            "last_packet": "\(timestamp(flow.lastPacket))",
            "inner_src_ip": "\(flow.innerSource.ip)", "inner_src_port": "\(flow.innerSource.port)",
            "inner_dst_ip": "\(flow.innerDestination.ip)", "inner_dst_port": "\(flow.innerDestination.port)",
            "outer_src_ip": "\(flow.outerSource.ip)", "outer_src_port": "\(flow.outerSource.port)",
            "outer_dst_ip": "\(flow.outerDestination.ip)", "outer_dst_port": "\(flow.outerDestination.port)",
            "rx_packets": "\(flow.rxPackets)", "tx_packets": "\(flow.txPackets)",
            "rx_bytes": "\(flow.rxBytes)", "tx_bytes": "\(flow.txBytes)",
        ]
        let context = flow.context
        let details: [(String, String?)] = [
            ("client_version", context.clientVersion), ("device_os_name", context.deviceOsName),
            ("device_os_version", context.deviceOsVersion), ("device_serial", context.deviceSerial),
            ("device_uuid", context.deviceUuid), ("device_identifier_for_vendor", context.deviceIdentifierForVendor),
            ("device_firebase_installation_id", context.deviceFirebaseInstallationId),
            ("auth_provider_id", context.authProviderId), ("actor_name", context.actorName), ("actor_id", context.actorId),
            ("actor_email", context.actorEmail), ("resource_name", context.resourceName),
            ("resource_address", context.resourceAddress), ("inner_domain", context.innerDomain),
        ]
        for case let (key, value?) in details { metadata[key] = "\(value)" }
        switch flow.transport {
        case .tcp: tcp.trace("TCP flow completed", metadata: metadata)
        case .udp: udp.trace("UDP flow completed", metadata: metadata)
        }
    }

    /// RFC 3339 in UTC with microseconds, as the JSON format's timestamps.
    private static func timestamp(_ unixNanoseconds: Int64) -> String {
        LogLine.timestamp(secondsSinceEpoch: unixNanoseconds / 1_000_000_000,
                          nanoseconds: Int32(unixNanoseconds % 1_000_000_000), fractionDigits: 6)
    }
}
