import SansIO

/// The optimistic remote candidates of spec `snownet.md` §2.4: each remote srflx IP × each remote host port,
/// IPv4 only, as synthetic srflx candidates, at most 2 new per call. They rescue a port-forwarded listen
/// port behind a symmetric NAT; they are never signalled.
public enum OptimisticCandidates {
    public static let maxPerCall = 2

    public static func derive(from remote: [IceCandidate]) -> [IceCandidate] {
        let reflexiveIps = remote.filter { $0.kind == .serverReflexive && $0.address.ip.version == .v4 }.map(\.address.ip)
        let hostPorts = remote.filter { $0.kind == .host && $0.address.ip.version == .v4 }
        var derived: [IceCandidate] = []
        for ip in reflexiveIps {
            for host in hostPorts {
                let address = SocketAddress(ip: ip, port: host.address.port)
                guard !remote.contains(where: { $0.address == address }), !derived.contains(where: { $0.address == address })
                else { continue }
                derived.append(IceCandidate(kind: .serverReflexive, address: address, base: host.address,
                                            priority: IceCandidate.priority(kind: .serverReflexive, localPreference: 65534)))
                if derived.count == maxPerCall { return derived }
            }
        }
        return derived
    }
}
