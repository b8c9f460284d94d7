import SimulatedNetwork
import Tunnel
import Turn

extension RelayHost {
    /// The relay as the portal announces it to a node.
    public var announcement: RelayDescription {
        let server = ip.version == .v4 ? RelayServer(ipv4: address) : RelayServer(ipv6: address)
        return RelayDescription(id: id, server: server, credentials: credentials)
    }
}
