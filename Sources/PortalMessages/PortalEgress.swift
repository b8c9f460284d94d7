/// A message a client or gateway sends the portal: its event's name and its payload as JSON text.
public protocol PortalEgress: Sendable {
    var event: String { get }
    var payload: String { get }
}

extension ClientEgress: PortalEgress {}
extension GatewayEgress: PortalEgress {}
