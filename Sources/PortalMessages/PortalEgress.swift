import PhoenixChannel

/// One message for the portal: its event's name and its payload as JSON text.
public struct PortalFrame: Hashable, Sendable {
    public var event: String
    public var payload: String

    public init(event: String, payload: String) {
        self.event = event
        self.payload = payload
    }
}

/// A message a client or gateway sends the portal, written for the API generation of its socket: a name may
/// differ, a v1 broadcast becomes one v2 message per peer, and a v2-only message is nothing on v1.
public protocol PortalEgress: Sendable {
    func frames(for api: PortalApi) -> [PortalFrame]
}
