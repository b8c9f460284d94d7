import PortalMessages
import SansIO
import Yams

/// A configuration file that cannot be used: where and why.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var message: String

    public var description: String {
        line.map { "line \($0): \(message)" } ?? message
    }
}

extension PortalConfig {
    /// Parses the YAML text strictly: unknown keys, duplicate names, dangling references and malformed
    /// addresses are errors naming their line.
    public init(yaml text: String) throws(ConfigError) {
        try Self.checkFlowNesting(text)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigError(line: nil, message: "the file is empty") }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let YamlError.scanner(_, problem, mark, _), let YamlError.parser(_, problem, mark, _),
                let YamlError.composer(_, problem, mark, _) {
            throw ConfigError(line: mark.line, message: "not valid YAML: \(problem)")
        } catch {
            throw ConfigError(line: nil, message: "not valid YAML: \(error)")
        }
        let top = try Fields(root, "the configuration",
                             allowed: ["account_slug", "upstream_dns", "access_lifetime_seconds", "sites", "actors",
                                       "resources", "policies", "relays", "relay_tokens"])
        self.init()
        accountSlug = try top.string("account_slug") ?? "dev"
        upstreamDns = try top.list("upstream_dns").map { node throws(ConfigError) in
            try parse(node, "an IP address", IpAddress.init)
        }
        if let seconds = try top.integer("access_lifetime_seconds") {
            guard seconds > 0 else { throw ConfigError(line: top.line("access_lifetime_seconds"), message: "access_lifetime_seconds must be positive") }
            accessLifetime = .seconds(seconds)
        }
        sites = try top.list("sites").map(Self.site)
        try unique(sites.map(\.name), top.list("sites"), what: "site name")
        try unique(sites.flatMap(\.gatewayTokens), top.list("sites"), what: "gateway token")
        actors = try top.list("actors").map(Self.actor)
        try unique(actors.map(\.name), top.list("actors"), what: "actor name")
        try unique(actors.flatMap(\.tokens), top.list("actors"), what: "client token")
        let sitesByName = Dictionary(uniqueKeysWithValues: sites.map { ($0.name, $0.id) })
        resources = try top.list("resources").map { node throws(ConfigError) in try Self.resource(node, sites: sitesByName) }
        try unique(resources.map(\.name), top.list("resources"), what: "resource name")
        let resourcesByName = Dictionary(uniqueKeysWithValues: resources.map { ($0.name, $0.id) })
        let actorNames = Set(actors.map(\.name))
        policies = try top.list("policies").map { node throws(ConfigError) in
            try Self.policy(node, actors: actorNames, resources: resourcesByName)
        }
        relays = try top.list("relays").map(Self.relay)
        try unique(relays.map(\.name), top.list("relays"), what: "relay name")
        relayTokens = try top.list("relay_tokens").map { node throws(ConfigError) in try scalarString(node) }
        try unique(relayTokens, top.list("relay_tokens"), what: "relay token")
    }

    /// The deepest `[`/`{` nesting a configuration may use. Yams composes nodes recursively, so a file of a few
    /// kilobytes of brackets would otherwise exhaust the stack; no real configuration nests beyond a few levels.
    static let maxFlowNesting = 32

    private static func checkFlowNesting(_ text: String) throws(ConfigError) {
        var depth = 0
        var line = 1
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            switch scalar {
            case "[", "{":
                depth += 1
                guard depth <= maxFlowNesting else {
                    throw ConfigError(line: line, message: "nested more than \(maxFlowNesting) levels deep")
                }
            case "]", "}":
                depth = max(0, depth - 1)
            case "\n" where previous == "\r":
                break  // CR LF is one line break
            case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1  // YAML's line breaks, so the line agrees with the parser's
            default:
                break
            }
        }
    }

    private static func site(_ node: Node) throws(ConfigError) -> SiteConfig {
        let fields = try Fields(node, "a site", allowed: ["name", "id", "gateway_tokens"])
        let name = try fields.requiredString("name")
        return SiteConfig(id: try fields.id("id") ?? stableId("site", name), name: name,
                          gatewayTokens: try fields.list("gateway_tokens").map { node throws(ConfigError) in try scalarString(node) })
    }

    private static func actor(_ node: Node) throws(ConfigError) -> ActorConfig {
        let fields = try Fields(node, "an actor", allowed: ["name", "email", "tokens"])
        return ActorConfig(name: try fields.requiredString("name"), email: try fields.string("email"),
                           tokens: try fields.list("tokens").map { node throws(ConfigError) in try scalarString(node) })
    }

    private static func resource(_ node: Node, sites: [String: SiteId]) throws(ConfigError) -> ResourceConfig {
        let fields = try Fields(node, "a resource",
                                allowed: ["name", "id", "type", "address", "address_description", "ip_stack", "sites", "filters"])
        let name = try fields.requiredString("name")
        let type = try fields.requiredString("type")
        let kind: ResourceConfig.Kind
        switch type {
        case "cidr":
            let address = try fields.required("address")
            kind = .cidr(try parse(address, "a canonical CIDR network (prefix length required, host bits zero)", IpNetwork.init))
        case "dns":
            let stackText = try fields.string("ip_stack") ?? "dual"
            guard let stack = IpStack(rawValue: stackText) else {
                throw ConfigError(line: fields.line("ip_stack"), message: "ip_stack must be dual, ipv4_only or ipv6_only, not '\(stackText)'")
            }
            let pattern = try fields.requiredString("address")
            guard !pattern.isEmpty, !pattern.contains(" ") else {
                throw ConfigError(line: fields.line("address"), message: "'\(pattern)' is not a domain pattern")
            }
            kind = .dns(pattern, stack)
        case "internet":
            kind = .internet
        default:
            throw ConfigError(line: fields.line("type"), message: "resource type must be cidr, dns or internet, not '\(type)'")
        }
        let siteIds = try fields.list("sites").map { node throws(ConfigError) -> SiteId in
            let siteName = try scalarString(node)
            guard let id = sites[siteName] else { throw ConfigError(line: lineOf(node), message: "no site named '\(siteName)'") }
            return id
        }
        guard !siteIds.isEmpty else { throw ConfigError(line: lineOf(node), message: "resource '\(name)' has no sites") }
        return ResourceConfig(id: try fields.id("id") ?? stableId("resource", name), name: name, kind: kind,
                              addressDescription: try fields.string("address_description"), sites: siteIds,
                              filters: try fields.list("filters").map(filter))
    }

    /// `tcp`, `udp/53`, `tcp/1000-2000`, `icmp`: the admin UI's port entries.
    private static func filter(_ node: Node) throws(ConfigError) -> TrafficFilter {
        let text = try scalarString(node)
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        let invalid = ConfigError(line: lineOf(node), message: "'\(text)' is not a filter (tcp, udp/53, tcp/1000-2000, icmp)")
        if parts == ["icmp"] { return .icmp }
        guard let proto = parts.first, proto == "tcp" || proto == "udp" else { throw invalid }
        var range: ClosedRange<UInt16> = 0...UInt16.max
        if parts.count == 2 {
            let bounds = parts[1].split(separator: "-", omittingEmptySubsequences: false).map { UInt16($0) }
            guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil, low <= high else {
                throw invalid
            }
            range = low...high
        }
        return proto == "tcp" ? .tcp(range) : .udp(range)
    }

    private static func policy(_ node: Node, actors: Set<String>, resources: [String: ResourceId]) throws(ConfigError) -> PolicyConfig {
        let fields = try Fields(node, "a policy", allowed: ["actor", "resource"])
        let actor = try fields.requiredString("actor")
        guard actor == PolicyConfig.everyone || actors.contains(actor) else {
            throw ConfigError(line: fields.line("actor"), message: "no actor named '\(actor)'")
        }
        let resource = try fields.requiredString("resource")
        guard let id = resources[resource] else { throw ConfigError(line: fields.line("resource"), message: "no resource named '\(resource)'") }
        return PolicyConfig(actor: actor, resource: id)
    }

    private static func relay(_ node: Node) throws(ConfigError) -> RelayConfig {
        let fields = try Fields(node, "a relay", allowed: ["name", "id", "addresses", "stamp_secret", "coturn_secret"])
        let name = try fields.requiredString("name")
        let addresses = try fields.list("addresses").map { node throws(ConfigError) in
            try parse(node, "an IP:port address", SocketAddress.init)
        }
        guard !addresses.isEmpty else { throw ConfigError(line: lineOf(node), message: "relay '\(name)' has no addresses") }
        let secret: RelayConfig.Secret
        switch (try fields.string("stamp_secret"), try fields.string("coturn_secret")) {
        case (let stamp?, nil): secret = .stamp(stamp)
        case (nil, let coturn?): secret = .coturn(coturn)
        default: throw ConfigError(line: lineOf(node), message: "relay '\(name)' needs exactly one of stamp_secret and coturn_secret")
        }
        return RelayConfig(id: try fields.id("id") ?? stableId("relay", name), name: name, addresses: addresses, secret: secret)
    }
}

/// A YAML mapping whose keys are checked against the allowed ones.
private struct Fields {
    let node: Node
    let values: [String: Node]
    let what: String

    init(_ node: Node, _ what: String, allowed: Set<String>) throws(ConfigError) {
        guard let mapping = node.mapping else { throw ConfigError(line: lineOf(node), message: "\(what) must be a mapping of keys to values") }
        var values: [String: Node] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            guard allowed.contains(name) else {
                throw ConfigError(line: lineOf(key), message: "unknown key '\(name)' in \(what) (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            values[name] = value
        }
        self.node = node
        self.values = values
        self.what = what
    }

    func line(_ key: String) -> Int? { values[key].flatMap { lineOf($0) } ?? lineOf(node) }

    func required(_ key: String) throws(ConfigError) -> Node {
        guard let value = values[key] else { throw ConfigError(line: lineOf(node), message: "\(what) needs '\(key)'") }
        return value
    }

    func requiredString(_ key: String) throws(ConfigError) -> String { try scalarString(required(key)) }

    func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = values[key] else { return nil }
        return try scalarString(value)
    }

    func integer(_ key: String) throws(ConfigError) -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text) else { throw ConfigError(line: line(key), message: "'\(key)' must be an integer, not '\(text)'") }
        return value
    }

    func list(_ key: String) throws(ConfigError) -> [Node] {
        guard let value = values[key], !value.isNull else { return [] }
        guard let sequence = value.sequence else { throw ConfigError(line: lineOf(value), message: "'\(key)' must be a list") }
        return Array(sequence)
    }

    func id<Tag>(_ key: String) throws(ConfigError) -> PortalId<Tag>? {
        guard let text = try string(key) else { return nil }
        guard let id = PortalId<Tag>(text) else { throw ConfigError(line: line(key), message: "'\(text)' is not a UUID") }
        return id
    }
}

private func lineOf(_ node: Node) -> Int? { node.mark?.line }

extension Node {
    /// An empty value (`key:` with nothing after it), `~` or `null`.
    fileprivate var isNull: Bool {
        guard let scalar = scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}

private func scalarString(_ node: Node) throws(ConfigError) -> String {
    guard let scalar = node.scalar else { throw ConfigError(line: lineOf(node), message: "expected a single value, not a list or mapping") }
    return scalar.string
}

private func parse<T>(_ node: Node, _ what: String, _ parser: (String) -> T?) throws(ConfigError) -> T {
    let text = try scalarString(node)
    guard let value = parser(text) else { throw ConfigError(line: lineOf(node), message: "'\(text)' is not \(what)") }
    return value
}

private func unique(_ names: [String], _ nodes: [Node], what: String) throws(ConfigError) {
    var seen = Set<String>()
    for name in names where !seen.insert(name).inserted {
        throw ConfigError(line: nodes.first.flatMap(lineOf), message: "duplicate \(what) '\(name)'")
    }
}
