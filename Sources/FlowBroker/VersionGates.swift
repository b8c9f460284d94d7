import PortalMessages

/// What Firezone's portal decides from a component's version (spec `portal-phoenix.md` §8; the portal's
/// `version.ex`, `resource.ex` and the client channel's gateway filter): which resources a client or gateway
/// is shown and in which syntax, which gateways may serve a client, and how sites are keyed.
public enum VersionGates {
    /// `major.minor.patch`, compared numerically; anything else is no version.
    public struct Version: Comparable, Hashable, Sendable, CustomStringConvertible {
        public var major: Int
        public var minor: Int
        public var patch: Int

        public init(_ major: Int, _ minor: Int, _ patch: Int) {
            (self.major, self.minor, self.patch) = (major, minor, patch)
        }

        /// Elixir's `Version.parse`: exactly three numbers; a pre-release or build suffix is dropped.
        public init?(_ text: String) {
            let core = text.prefix { $0 != "-" && $0 != "+" }
            let numbers = core.split(separator: ".", omittingEmptySubsequences: false)
            guard numbers.count == 3, numbers.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
                  let major = Int(numbers[0]), let minor = Int(numbers[1]), let patch = Int(numbers[2])
            else { return nil }
            self.init(major, minor, patch)
        }

        public static func < (lhs: Version, rhs: Version) -> Bool {
            (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }

        public var description: String { "\(major).\(minor).\(patch)" }
    }

    /// A client resource as a client or gateway of `version` is shown it: the Internet resource needs 1.3;
    /// below 1.2, DNS wildcards are written in the old syntax (`*.x` as `?.x`, a leading `**` as `*`) and an
    /// address the old syntax cannot say is not shown at all. `nil`: not shown.
    public static func adapt(_ resource: ClientResource, for version: Version) -> ClientResource? {
        switch resource {
        case .internet where version < Version(1, 3, 0): return nil
        case .dns(var dns) where version < Version(1, 2, 0):
            guard let address = preOnePointTwoAddress(dns.address) else { return nil }
            dns.address = address
            return .dns(dns)
        default: return resource
        }
    }

    /// The gateway's view of a resource under the same rules.
    public static func adapt(_ resource: GatewayResource, for version: Version) -> GatewayResource? {
        switch resource {
        case .internet where version < Version(1, 3, 0): return nil
        case let .dns(id, address, name, filters) where version < Version(1, 2, 0):
            return preOnePointTwoAddress(address).map { .dns(id: id, address: $0, name: name, filters: filters) }
        default: return resource
        }
    }

    /// Whether a gateway may serve a client: within one minor version below and two above the client's
    /// (`>= major.(minor-1).0` and `< major.(minor+2).0`), and shown the resource at all.
    public static func gateway(_ gateway: Version, canServe client: Version, resource: GatewayResource) -> Bool {
        gateway >= Version(client.major, client.minor - 1, 0) && gateway < Version(client.major, client.minor + 2, 0)
            && adapt(resource, for: gateway) != nil
    }

    /// Whether a client reads `sites` and `site_id` rather than `gateway_groups` and `gateway_group_id`.
    public static func readsSites(component: String, version: Version) -> Bool {
        let minimum: Version? = switch component {
        case "apple-client": Version(1, 5, 11)
        case "headless-client": Version(1, 5, 6)
        case "android-client": Version(1, 5, 8)
        case "gui-client": Version(1, 5, 10)
        default: nil
        }
        return minimum.map { version >= $0 } ?? false
    }

    /// The portal's `map_resource_address`: `**` only at the start (becomes `*`), `*` only at the start
    /// (becomes `?`), no `?`; otherwise the address cannot be said.
    static func preOnePointTwoAddress(_ address: String) -> String? {
        var rest = Substring(address)
        var converted = ""
        if rest.hasPrefix("**") {
            converted = "*"
            rest = rest.dropFirst(2)
        } else if rest.hasPrefix("*") {
            converted = "?"
            rest = rest.dropFirst()
        }
        guard !rest.contains("*"), !rest.contains("?") else { return nil }
        return converted + rest
    }
}
