/// The generation of the portal's socket protocol a client or gateway speaks (spec `portal-phoenix.md` §8).
/// The paths differ (`/client/websocket` and `/client/v2/websocket`), and so do some event names:
/// `create_flow`/`flow_created` became `request_authorization`/`authorization_created`, the gateway's
/// `authorize_flow`/`flow_authorized` became `create_authorization`/`authorization_created`, and a node without
/// relays says `no_relays` instead of reconnecting. The newest portal still serves both.
public enum PortalApi: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case v1, v2

    public var description: String { rawValue }
}
