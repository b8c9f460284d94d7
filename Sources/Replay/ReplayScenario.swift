import FoundationEssentials
import PortalInput
import PortalMessages
import SansIO

/// What the replayed client may reach: the resources one actor's policies grant in a development portal
/// configuration (the same YAML `firezone-portal` reads), or, without a file, the Internet resource.
public struct ReplayScenario: Sendable {
    /// The client's view of each resource (what `init` carries).
    public var clientResources: [ClientResource]
    /// The gateway's view (what `authorize_flow` carries), by resource id.
    public var gatewayResources: [ResourceId: GatewayResource]
    /// The portal's upstream resolvers (the client's DNS sentinels map to them).
    public var upstreamDns: [IpAddress]
    public var site: Site
    /// Whether the Internet resource is switched on (the client's `--activate-internet-resource`).
    public var internetResourceEnabled: Bool

    /// The scenario of a portal configuration: every resource granted to `actor` (the first actor when `nil`).
    public init(yaml: String, actor name: String? = nil) throws(ReplayInputError) {
        let config: PortalConfig
        do {
            config = try PortalConfig(yaml: yaml)
        } catch {
            throw ReplayInputError("resources file: \(error)")
        }
        guard let actor = name.map({ name in config.actors.first { $0.name == name } }) ?? config.actors.first else {
            throw ReplayInputError(name.map { "resources file: no actor named \($0)" } ?? "resources file: no actors")
        }
        let granted = config.resources(for: actor.name)
        guard !granted.isEmpty else { throw ReplayInputError("resources file: no policy grants \(actor.name) a resource") }
        clientResources = granted.map { $0.clientView(sites: config.sites) }
        gatewayResources = Dictionary(uniqueKeysWithValues: granted.map { ($0.id, $0.gatewayView) })
        upstreamDns = config.upstreamDns
        let firstSite = config.sites.first { granted[0].sites.contains($0.id) } ?? config.sites[0]
        site = Site(id: firstSite.id, name: firstSite.name)
        internetResourceEnabled = granted.contains { if case .internet = $0.kind { true } else { false } }
    }

    /// Everything through the tunnel: the Internet resource, switched on.
    public static var internet: ReplayScenario {
        let site = Site(id: SiteId(UUID(uuidString: "00000000-0000-4000-8000-00000000a001")!), name: "replay")
        let id = ResourceId(UUID(uuidString: "00000000-0000-4000-8000-00000000b001")!)
        return ReplayScenario(clientResources: [.internet(.init(id: id, sites: [site]))], gatewayResources: [id: .internet(id: id)],
                              upstreamDns: [], site: site, internetResourceEnabled: true)
    }

    init(clientResources: [ClientResource], gatewayResources: [ResourceId: GatewayResource], upstreamDns: [IpAddress],
         site: Site, internetResourceEnabled: Bool) {
        self.clientResources = clientResources
        self.gatewayResources = gatewayResources
        self.upstreamDns = upstreamDns
        self.site = site
        self.internetResourceEnabled = internetResourceEnabled
    }
}

/// Input the replay cannot use: an unreadable capture, a bad resources file. The message says what and where.
public struct ReplayInputError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
