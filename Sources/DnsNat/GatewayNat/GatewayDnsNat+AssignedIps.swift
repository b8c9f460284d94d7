import Dns
import IpPacket
import P2pControl

/// Resolves a DNS resource's domain on the Gateway. The apps provide the real one (the system resolver, with
/// Firezone's 30 s cache and 10 s timeout); the sans-IO state machine only asks and is told.
public protocol DomainResolver: Sendable {
    func resolve(_ domain: DnsName) async throws -> [IpAddress]
}

extension GatewayDnsNat {
    /// A resolution the event loop must run, and hand back to ``resolved(_:result:)``.
    public struct ResolveRequest: Hashable, Sendable {
        public var domain: DnsName
        public var resource: DnsResource
        public var proxyIps: [IpAddress]
    }

    /// What to do with a Client's AssignedIps.
    public enum AssignedIpsOutcome: Hashable, Sendable {
        /// Answer at once (the Client is not authorised for the resource).
        case reply(DomainStatusUpdate)
        /// Resolve the domain, then call ``resolved(_:result:)``. Every AssignedIps resolves afresh.
        case resolve(ResolveRequest)
    }

    /// Handles AssignedIps (spec §5.6.1). `authorizedResource` is the Client's authorised DNS resource with
    /// that ID, or `nil` when there is none.
    public func assignedIps(_ event: AssignedIps, authorizedResource: DnsResource?) -> AssignedIpsOutcome {
        guard let resource = authorizedResource, resource.id == event.resource else {
            return .reply(DomainStatusUpdate(resource: event.resource, domain: event.domain, status: .inactive))
        }
        return .resolve(ResolveRequest(domain: event.domain, resource: resource, proxyIps: event.proxyIps))
    }

    /// Sets up NAT for a finished resolution and returns the DomainStatus to send (spec §5.6.3): Active on
    /// success, even for an empty answer (every proxy then answers "unreachable"); Inactive when resolution
    /// failed or the domain does not match the resource's pattern.
    public mutating func resolved(_ request: ResolveRequest, result: Result<[IpAddress], any Error>) -> DomainStatusUpdate {
        var status = DomainStatus.inactive
        if case .success(let addresses) = result,
           (try? setupNat(domain: request.domain, resource: request.resource, resolved: addresses, proxyIps: request.proxyIps)) != nil {
            status = .active
        }
        return DomainStatusUpdate(resource: request.resource.id, domain: request.domain, status: status)
    }
}
