import Crypto
import FlowBroker
import PortalMessages
import SansIO

/// The development portal's configuration as the flow broker asks for it: a client reaches the resources its
/// actor's policies grant; a pair's secrets are derived as Firezone's portal derives them (spec §6), and each
/// side gets a flow-log ingest token signed with the portal's key (§8).
struct PortalPolicy: FlowPolicy {
    var config: PortalConfig
    var clients: [ClientId: ClientSession]
    var gateways: [GatewayId: GatewaySession]
    var ingestKey: SymmetricKey

    func resource(_ id: ResourceId, for client: FlowBroker.Client) -> BrokeredResource? {
        guard let resource = config.resources(for: client.actor).first(where: { $0.id == id }) else { return nil }
        return BrokeredResource(sites: resource.sites, gatewayView: resource.gatewayView)
    }

    func secrets(client: FlowBroker.Client, gateway: FlowBroker.Gateway, resource: ResourceId, unixTime: Int64,
                 expiresAt: Int64?) -> FlowSecrets {
        let ice = Credentials.ice(clientId: client.id, clientKey: client.publicKey, gatewayId: gateway.id, gatewayKey: gateway.publicKey)
        let psk = Credentials.presharedKey(clientId: client.id, clientKey: client.publicKey,
                                           clientPskBase: clients[client.id]?.device.pskBase ?? [],
                                           gatewayId: gateway.id, gatewayKey: gateway.publicKey,
                                           gatewayPskBase: gateways[gateway.id]?.device.pskBase ?? [])
        let resourceName = config.resources.first { $0.id == resource }?.name ?? ""
        let claims = Credentials.IngestClaims(
            accountSlug: config.accountSlug, initiator: client.id.description, responder: gateway.id.description,
            resourceId: resource.description, resourceName: resourceName, actorName: client.actor,
            actorEmail: config.actors.first { $0.name == client.actor }?.email, clientVersion: client.version,
            issuedAt: unixTime, expiresAt: expiresAt)
        let tokens = FlowSecrets.IngestTokens(initiator: Credentials.ingestToken(claims, role: "initiator", key: ingestKey),
                                              responder: Credentials.ingestToken(claims, role: "responder", key: ingestKey))
        return FlowSecrets(presharedKey: psk, client: ice.client, gateway: ice.gateway, ingestTokens: tokens)
    }

    var accessLifetime: Duration? { config.accessLifetime }
}
