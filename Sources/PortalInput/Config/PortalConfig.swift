import Crypto
import FoundationEssentials
import PortalMessages
import SansIO

/// The development portal's configuration: one YAML file (see `Fixtures/portal/example.yaml`), reloaded on
/// SIGHUP. Ids are stable across reloads: given, or derived from the name.
public struct PortalConfig: Sendable, Equatable {
    public var accountSlug: String
    public var sites: [SiteConfig]
    public var actors: [ActorConfig]
    public var resources: [ResourceConfig]
    public var policies: [PolicyConfig]
    public var relays: [RelayConfig]
    /// Tokens relays join with (`relay_tokens`); a joined relay is offered with the configured ones while it stays.
    public var relayTokens: [String]
    /// Plain-DNS upstreams sent to clients (`upstream_do53`); empty means the system's.
    public var upstreamDns: [IpAddress]
    /// How long an authorized flow lasts (`expires_at` of `authorize_flow` and the client's TURN credentials).
    public var accessLifetime: Duration

    public init(accountSlug: String = "dev", sites: [SiteConfig] = [], actors: [ActorConfig] = [],
                resources: [ResourceConfig] = [], policies: [PolicyConfig] = [], relays: [RelayConfig] = [],
                relayTokens: [String] = [], upstreamDns: [IpAddress] = [], accessLifetime: Duration = .seconds(7 * 86_400)) {
        self.accountSlug = accountSlug
        self.sites = sites
        self.actors = actors
        self.resources = resources
        self.policies = policies
        self.relays = relays
        self.relayTokens = relayTokens
        self.upstreamDns = upstreamDns
        self.accessLifetime = accessLifetime
    }

    public func site(forGatewayToken token: String) -> SiteConfig? {
        sites.first { $0.gatewayTokens.contains(token) }
    }

    public func actor(forClientToken token: String) -> ActorConfig? {
        actors.first { $0.tokens.contains(token) }
    }

    /// The resources a policy grants `actor`, in configuration order.
    public func resources(for actor: String) -> [ResourceConfig] {
        let granted = Set(policies.filter { $0.actor == actor || $0.actor == PolicyConfig.everyone }.map(\.resource))
        return resources.filter { granted.contains($0.id) }
    }
}

public struct SiteConfig: Sendable, Equatable {
    public var id: SiteId
    public var name: String
    public var gatewayTokens: [String]
}

public struct ActorConfig: Sendable, Equatable {
    public var name: String
    public var email: String?
    public var tokens: [String]
}

public struct ResourceConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case cidr(IpNetwork)
        /// A domain pattern (`*.corp.example`, `**.example`, `?.httpbin`).
        case dns(String, IpStack)
        case internet
    }

    public var id: ResourceId
    public var name: String
    public var kind: Kind
    public var addressDescription: String?
    public var sites: [SiteId]
    public var filters: [TrafficFilter]

    /// What a client is told (§2.4).
    public func clientView(sites all: [SiteConfig]) -> ClientResource {
        let sites = all.filter { self.sites.contains($0.id) }.map { Site(id: $0.id, name: $0.name) }
        return switch kind {
        case .cidr(let network):
            .cidr(.init(id: id, address: network, name: name, addressDescription: addressDescription, sites: sites))
        case .dns(let pattern, let stack):
            .dns(.init(id: id, address: pattern, name: name, addressDescription: addressDescription, sites: sites, ipStack: stack))
        case .internet:
            .internet(.init(id: id, name: name, sites: sites))
        }
    }

    /// What a gateway is told (§2.5).
    public var gatewayView: GatewayResource {
        switch kind {
        case .cidr(let network): .cidr(id: id, address: network, name: name, filters: filters)
        case .dns(let pattern, _): .dns(id: id, address: pattern, name: name, filters: filters)
        case .internet: .internet(id: id)
        }
    }
}

public struct PolicyConfig: Sendable, Equatable {
    /// The actor name that matches every actor.
    public static let everyone = "everyone"
    public var actor: String
    public var resource: ResourceId
}

public struct RelayConfig: Sendable, Equatable {
    /// How the relay checks TURN credentials (§6).
    public enum Secret: Sendable, Equatable {
        /// A Firezone relay's stamp secret.
        case stamp(String)
        /// coturn's `use-auth-secret` / `static-auth-secret` (RFC draft "TURN REST API" credentials).
        case coturn(String)
    }

    public var id: RelayId
    public var name: String
    public var addresses: [SocketAddress]
    public var secret: Secret
}

/// A UUID derived from a name, so that a configuration without ids keeps them across reloads and restarts.
func stableId<Tag>(_ kind: String, _ name: String) -> PortalId<Tag> {
    var bytes = Array(SHA256.hash(data: Array("firezone-dev-portal:\(kind):\(name)".utf8)).prefix(16))
    bytes[6] = bytes[6] & 0x0F | 0x50  // version 5 layout (name-based)
    bytes[8] = bytes[8] & 0x3F | 0x80  // RFC 4122 variant
    let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                           bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    return PortalId(uuid)
}
