import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import PhoenixChannel

/// The development portal's network side on Hummingbird: `/client/websocket` and `/gateway/websocket` (v1),
/// `/client/v2/websocket` and `/gateway/v2/websocket` (v2), `/relay/websocket` for relays, with the real portal's upgrade checks answered by
/// their HTTP status and problem details, and `/healthz`.
public enum PortalServer {
    /// A Hummingbird application serving the portal at `host:port` (port 0 picks one; `onListening` learns it).
    public static func application(state: PortalState, store: DeviceStore, host: String, port: Int, logger: Logger,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        var endpoints: [String: any PortalEndpoint] = ["/relay/websocket": RelayEndpoint(state: state)]
        for role in [ConnectRequest.Role.client, .gateway] {
            for api in PortalApi.allCases {
                endpoints["/\(role.rawValue)\(api == .v2 ? "/v2" : "")/websocket"] = PortalSession(role: role, api: api, state: state, store: store)
            }
        }
        return Application(
            router: Router(),
            server: HTTPServerBuilder { [endpoints] _ in PortalChildChannel(endpoints: endpoints) },
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
