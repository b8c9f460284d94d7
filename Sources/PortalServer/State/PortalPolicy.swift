import FlowBroker
import PortalMessages
import SansIO

/// The development portal's configuration as the flow broker asks for it: a client reaches the resources its
/// actor's policies grant; a pair's secrets are derived as Firezone's portal derives them (spec §6).
struct PortalPolicy: FlowPolicy {
    var config: PortalConfig
    var clients: [ClientId: ClientSession]
    var gateways: [GatewayId: GatewaySession]

    func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
        guard let resource = config.resources(for: client.actor).first(where: { $0.id == id }) else { return nil }
        return BrokeredResource(sites: resource.sites, gatewayView: resource.gatewayView)
    }

    func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway) -> FlowSecrets {
        let ice = Credentials.ice(clientId: client.id, clientKey: client.publicKey, gatewayId: gateway.id, gatewayKey: gateway.publicKey)
        let psk = Credentials.presharedKey(clientId: client.id, clientKey: client.publicKey,
                                           clientPskBase: clients[client.id]?.device.pskBase ?? [],
                                           gatewayId: gateway.id, gatewayKey: gateway.publicKey,
                                           gatewayPskBase: gateways[gateway.id]?.device.pskBase ?? [])
        return FlowSecrets(presharedKey: psk, client: ice.client, gateway: ice.gateway)
    }

    var accessLifetime: Duration? { config.accessLifetime }
}
