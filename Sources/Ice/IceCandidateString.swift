import SansIO

/// The candidate strings exchanged through the portal (spec `snownet.md` §2.6): str0m's SDP `candidate`
/// attribute without `a=`:
/// `candidate:<foundation> 1 udp <priority> <ip> <port> typ <kind>[ raddr <ip> rport <port>][ ufrag <ufrag>]`.
public enum IceCandidateString {
    /// Formats a local candidate. srflx and relay carry a dummy related address (never the real base).
    public static func format(_ candidate: IceCandidate, ufrag: String? = nil) -> String {
        var text = "candidate:\(candidate.foundation) 1 udp \(candidate.priority) \(candidate.address.ip) "
            + "\(candidate.address.port) typ \(candidate.kind.rawValue)"
        if candidate.kind == .serverReflexive || candidate.kind == .relayed || candidate.kind == .peerReflexive {
            text += candidate.address.ip.version == .v4 ? " raddr 0.0.0.0 rport 0" : " raddr :: rport 0"
        }
        if let ufrag = ufrag ?? candidate.ufrag { text += " ufrag \(ufrag)" }
        return text
    }

    /// Parses a remote candidate. `expectedUfrag`: a candidate carrying another ufrag is rejected. Unknown
    /// extension tokens (`tcptype`, `generation`, `network-id`, `network-cost`, …) come in name/value pairs
    /// and are skipped.
    public static func parse(_ text: String, expectedUfrag: String? = nil) throws(IceCandidateError) -> IceCandidate {
        var body = Substring(text)
        if body.hasPrefix("a=") { body = body.dropFirst(2) }
        guard body.hasPrefix("candidate:") else { throw .notACandidate(text) }
        let tokens = body.dropFirst("candidate:".count).split(separator: " ", omittingEmptySubsequences: true)
        guard tokens.count >= 8 else { throw .tooFewFields(text) }
        let foundation = String(tokens[0])
        guard tokens[1] == "1" else { throw .unsupportedComponent(String(tokens[1])) }
        guard tokens[2].lowercased() == "udp" else { throw .unsupportedTransport(String(tokens[2])) }
        guard let priority = UInt32(tokens[3]) else { throw .badPriority(String(tokens[3])) }
        guard let ip = IpAddress(tokens[4]) else { throw .badAddress(String(tokens[4])) }
        guard let port = UInt16(tokens[5]) else { throw .badPort(String(tokens[5])) }
        guard tokens[6] == "typ", let kind = IceCandidate.Kind(rawValue: String(tokens[7])) else {
            throw .badType(String(tokens[7]))
        }
        var ufrag: String?
        var index = 8
        while index < tokens.count {
            guard index + 1 < tokens.count else { throw .danglingToken(String(tokens[index])) }
            switch tokens[index] {
            case "raddr":
                guard IpAddress(tokens[index + 1]) != nil else { throw .badAddress(String(tokens[index + 1])) }
            case "rport":
                guard UInt16(tokens[index + 1]) != nil else { throw .badPort(String(tokens[index + 1])) }
            case "ufrag":
                ufrag = String(tokens[index + 1])
            default:
                break  // tcptype, generation, network-id, network-cost, and future extensions
            }
            index += 2
        }
        if let expectedUfrag, let ufrag, ufrag != expectedUfrag { throw .wrongUfrag(expected: expectedUfrag, received: ufrag) }
        return IceCandidate(kind: kind, address: SocketAddress(ip: ip, port: port), priority: priority,
                            foundation: foundation, ufrag: ufrag)
    }
}

/// Why a candidate string was rejected.
public enum IceCandidateError: Error, Hashable, Sendable, CustomStringConvertible {
    case notACandidate(String)
    case tooFewFields(String)
    case unsupportedComponent(String)
    case unsupportedTransport(String)
    case badPriority(String)
    case badAddress(String)
    case badPort(String)
    case badType(String)
    case danglingToken(String)
    case wrongUfrag(expected: String, received: String)

    public var description: String {
        switch self {
        case .notACandidate(let text): "not a candidate attribute: \"\(text.prefix(80))\""
        case .tooFewFields(let text): "candidate has too few fields: \"\(text.prefix(80))\""
        case .unsupportedComponent(let component): "component \(component) is not supported (only 1)"
        case .unsupportedTransport(let transport): "transport \(transport) is not supported (only UDP)"
        case .badPriority(let value): "priority \"\(value)\" is not a 32-bit number"
        case .badAddress(let value): "\"\(value)\" is not an IP address"
        case .badPort(let value): "\"\(value)\" is not a port"
        case .badType(let value): "candidate type \"\(value)\" is unknown"
        case .danglingToken(let token): "extension \"\(token)\" has no value"
        case let .wrongUfrag(expected, received): "candidate for ufrag \(received), expected \(expected)"
        }
    }
}
