import AppRuntime
import PhoenixChannel
import PortalMessages
import SansIO
import Tunnel

/// A data plane that takes its orders from the portal: ``ClientState`` or ``GatewayState`` behind one face, so
/// the apps' shell feeds and drains either.
public protocol PortalPlane: DataPlane {
    /// What the portal pushes, decoded straight from its frames.
    associatedtype Ingress: PhoenixPayload
    /// What the plane sends the portal.
    associatedtype Egress: PortalEgress

    func handle(_ message: Ingress, now: Instant)
    func pollPortalMessage() -> Egress?
    /// Goodbye to every peer.
    func shutdown(now: Instant)
    /// The next line for the log: connections, paths, relays.
    func pollReport() -> TunnelReport?
}

extension ClientState: PortalPlane {}
extension GatewayState: PortalPlane {}
