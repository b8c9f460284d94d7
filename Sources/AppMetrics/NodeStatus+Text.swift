import Foundation

extension NodeStatus {
    /// The status for a person: one block per peer and a line per relay, in the manner of `wg show`.
    public func text() -> String {
        var lines = ["\(role): \(count(peers.count, "peer")), \(count(relays.count, "relay")); public key \(publicKey)"]
        for peer in peers {
            lines.append("")
            lines.append("peer \(peer.id)")
            lines.append(contentsOf: peer.fields.map { name, value in "  " + (name + ":").padding(toLength: 18, withPad: " ", startingAt: 0) + value })
        }
        if !relays.isEmpty { lines.append("") }
        for relay in relays {
            let allocated = relay.allocated.isEmpty ? "no allocation" : "allocated " + relay.allocated.joined(separator: ", ")
            lines.append("relay \(relay.id): \(relay.addresses.joined(separator: ", ")) over \(relay.transport), \(allocated)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}

extension PeerStatus {
    /// Name and value of each line of the peer's block.
    var fields: [(String, String)] {
        var fields = [("state", path == "none" ? state : "\(state), \(path)")]
        if let relay {
            fields.append(("relay", "\(relay.id) (\(relay.addresses.joined(separator: ", ")) over \(relay.transport))"))
        }
        if let peerRelayAddress { fields.append(("peer's relay", peerRelayAddress)) }
        if let route { fields.append(("route", route)) }
        if let localCandidate, let remoteCandidate { fields.append(("candidate pair", "\(localCandidate) <-> \(remoteCandidate)")) }
        fields.append(("rtt", rttMilliseconds.map { String(format: "%.3f ms", $0) } ?? "not measured yet"))
        fields.append(("latest handshake", lastHandshakeSecondsAgo.map { String(format: "%.1f s ago", $0) } ?? "none yet"))
        fields.append(("transfer", "\(Self.bytes(bytesReceived)) received (\(packetsReceived) packets), "
            + "\(Self.bytes(bytesSent)) sent (\(packetsSent) packets)"))
        fields.append(("resources", resources.isEmpty ? "none" : resources.joined(separator: ", ")))
        return fields
    }

    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.2f ", value) + units[unit]
    }
}
