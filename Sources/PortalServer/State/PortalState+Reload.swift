import PortalMessages

extension PortalState {
    /// Applies a new configuration (SIGHUP) and pushes what changed to everyone connected: resource diffs to
    /// clients, `resource_updated` and `reject_access` to gateways, `relays_presence` to both, `config_changed`
    /// for new DNS upstreams; to a client whose token was removed `disconnect` `token_expired` (v2) or `phx_close`
    /// (v1), and `phx_close` to a gateway or relay whose token was removed.
    public func reload(_ new: PortalConfig) {
        let old = config
        config = new
        closeSessionsWithRevokedTokens()
        reconcileGatewayResources(old: old)
        deliverBrokerOutputs()
        for client in clients.values { pushResourceDiff(to: client) }
        revokeAuthorizationsNoLongerGranted()
        deliverBrokerOutputs()
        if old.upstreamDns != new.upstreamDns {
            for client in clients.values { push(.configChanged(clientInterface(client.device)), to: client) }
        }
        if old.relays != new.relays { pushRelaysPresence(old: old) }
        logger.info("Configuration reloaded", metadata: ["clients": "\(clients.count)", "gateways": "\(gateways.count)"])
    }

    private func closeSessionsWithRevokedTokens() {
        for client in clients.values where config.actor(forClientToken: client.token) == nil {
            // Today's portal tells a client its token is gone; the baseline's channel just stopped (spec §8).
            if client.view.api == .v2 {
                client.outbox.push(topic: "client", event: "disconnect", payload: #"{"reason":"token_expired"}"#)
            } else {
                client.outbox.push(topic: "client", event: "phx_close", payload: "{}")
            }
            client.outbox.finish()
            forgetClient(client.id)
        }
        for gateway in gateways.values where config.site(forGatewayToken: gateway.token)?.id != gateway.site {
            gateway.outbox.push(topic: "gateway", event: "phx_close", payload: "{}")
            gateway.outbox.finish()
            forgetGateway(gateway.id)
        }
        // A relay whose token is gone loses its connection; its leave is reported as any other.
        for relay in joinedRelays.values where !config.relayTokens.contains(relay.request.token) {
            relay.outbox.push(topic: "relay", event: "phx_close", payload: "{}")
            relay.outbox.finish()
        }
    }

    /// Filters changed: `resource_updated` to gateways holding the resource. Address or type changed:
    /// `reject_access` for every cached pair instead (spec §4.5, §4.8).
    private func reconcileGatewayResources(old: PortalConfig) {
        let newResources = Dictionary(uniqueKeysWithValues: config.resources.map { ($0.id, $0) })
        for before in old.resources {
            guard let after = newResources[before.id] else { continue }
            let holders = broker.authorizations.filter { $0.key.resourceId == before.id }
            if before.kind != after.kind {
                for key in holders.keys { broker.revoke(key) }
            } else if before.filters != after.filters {
                for gatewayId in Set(holders.map(\.value.gateway)) {
                    gateways[gatewayId].map { push(.resourceUpdated(after.gatewayView), to: $0) }
                }
            }
        }
    }

    /// `resource_deleted` for what the client may no longer reach (or what moved site, first),
    /// `resource_created_or_updated` for what is new or changed.
    private func pushResourceDiff(to client: ClientSession) {
        let now = client.resources(in: config)
        let nowById = Dictionary(uniqueKeysWithValues: now.map { ($0.id, $0) })
        for (id, before) in client.sentResources.sorted(by: { $0.key < $1.key }) {
            guard let after = nowById[id] else {
                push(.resourceDeleted(id), to: client)
                continue
            }
            if Set(before.sites.map(\.id)) != Set(after.sites.map(\.id)) { push(.resourceDeleted(id), to: client) }
        }
        for resource in now where client.sentResources[resource.id] != resource {
            push(.resourceCreatedOrUpdated(resource), to: client)
        }
        clients[client.id]?.sentResources = nowById
    }

    /// Authorizations whose policy, resource or site went away: `reject_access` to the gateway.
    private func revokeAuthorizationsNoLongerGranted() {
        for (key, authorization) in broker.authorizations {
            let granted = config.resources(for: authorization.actor).first { $0.id == key.resourceId }
            let site = gateways[authorization.gateway]?.site
            guard let granted, let site, granted.sites.contains(site) else {
                broker.revoke(key)
                continue
            }
        }
    }

    /// Relays removed, or whose secret changed, are reported disconnected; all current ones are sent with
    /// fresh credentials.
    private func pushRelaysPresence(old: PortalConfig) {
        let current = Dictionary(uniqueKeysWithValues: config.relays.map { ($0.id, $0) })
        broadcastRelays(disconnected: old.relays.filter { current[$0.id] != $0 }.map(\.id))
    }
}
