import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The development portal's network side on Hummingbird: `/client/websocket` and `/gateway/websocket`, with
/// the real portal's upgrade checks answered by their HTTP status, and `/healthz`.
public enum PortalServer {
    /// A Hummingbird application serving the portal at `host:port` (port 0 picks one; `onListening` learns it).
    public static func application(state: PortalState, store: DeviceStore, host: String, port: Int, logger: Logger,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        let endpoints = Dictionary(uniqueKeysWithValues: [ConnectRequest.Role.client, .gateway].map { role in
            ("/\(role.rawValue)/websocket", PortalSession(role: role, state: state, store: store))
        })
        return Application(
            router: Router(),
            server: HTTPServerBuilder { _ in PortalChildChannel(endpoints: endpoints) },
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
