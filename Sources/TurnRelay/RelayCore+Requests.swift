import SansIO
import Stun

extension RelayCore {
    /// The answer to a STUN request on the listening port, encoded: BINDING unauthenticated, everything else
    /// after the nonce and credential checks, signed whenever the request named a known user.
    func answer(_ request: StunMessage, from client: RelayClient, now: Instant, unixTime: Int64) -> [UInt8] {
        if request.method == .binding {
            return encode(StunMessage(class: .successResponse, method: .binding, transactionId: request.transactionId,
                                      attributes: [.xorMappedAddress(client.address)]), key: nil)
        }
        let username = request.first { if case .username(let name) = $0 { name } else { nil } }
        let key = username.flatMap {
            RelayCredentials.key(for: $0, realm: configuration.realm, authentication: configuration.authentication, unixTime: unixTime)
        }
        let requestNonce = request.first { if case .nonce(let value) = $0 { value } else { nil } }
        guard let username, let requestNonce, request.hasIntegrity else {
            return encode(error(request, 401, extra: [.realm(configuration.realm), .nonce(nonce(for: client))]), key: key)
        }
        guard var issued = nonces[client], issued.value == requestNonce, issued.uses < configuration.nonceUses else {
            return encode(error(request, 438, extra: [.realm(configuration.realm), .nonce(nonce(for: client, fresh: true))]), key: key)
        }
        guard let key, request.verifyIntegrity(key: key) else {
            statistics.authenticationFailures += 1
            return encode(error(request, 401, extra: [.realm(configuration.realm), .nonce(issued.value)]), key: key)
        }
        issued.uses += 1
        nonces[client] = issued
        // EVEN-PORT is understood (the relayed port is made even; a reservation of the next one is not offered).
        let unknown = request.unknownComprehensionRequired.filter { $0 != Self.evenPort }
        guard unknown.isEmpty else {
            return encode(error(request, 420, extra: [.unknownAttributes(unknown)]), key: key)
        }
        let response: StunMessage
        switch request.method {
        case .allocate: response = allocate(request, from: client, username: username, now: now)
        case .refresh: response = refresh(request, from: client, now: now)
        case .channelBind: response = channelBind(request, from: client, now: now)
        case .createPermission:
            // Accepted without effect: data flows over channels only (§3.11).
            response = allocations[client] == nil ? error(request, 437)
                : StunMessage(class: .successResponse, method: .createPermission, transactionId: request.transactionId)
        default: response = error(request, 400)
        }
        return encode(response, key: key)
    }

    private func allocate(_ request: StunMessage, from client: RelayClient, username: String, now: Instant) -> StunMessage {
        guard allocations[client].map({ $0.expires <= now }) ?? true else { return error(request, 437) }
        let transport: UInt8? = request.first { if case .requestedTransport(let protocolNumber) = $0 { protocolNumber } else { nil } }
        guard transport == 17 else {
            return error(request, 400)
        }
        let families: [IpVersion]
        switch addressFamilies(request) {
        case .success(let wanted): families = wanted
        case .failure(let failure): return error(request, failure.code)
        }
        if allocations[client] != nil { free(client, now: now) }
        if case .firezone = configuration.authentication, let older = clientByUsername[username], older != client {
            free(older, now: now)
            statistics.allocationsFreedByUsername += 1
        }
        guard let port = freePort(even: request.unknownComprehensionRequired.contains(Self.evenPort)) else { return error(request, 508) }
        let requested = request.first { if case .lifetime(let seconds) = $0 { seconds } else { nil } }
        let lifetime = Self.lifetime(requested)
        allocations[client] = Allocation(username: username, port: port, families: families, expires: now + lifetime)
        clientByPort[port] = client
        clientByUsername[username] = client
        events.append(.portOpened(port: port, families: families))
        let relayed = families.compactMap { configuration.publicAddress($0, port: port) }.map(StunAttribute.xorRelayedAddress)
        return StunMessage(class: .successResponse, method: .allocate, transactionId: request.transactionId,
                           attributes: relayed + [.xorMappedAddress(client.address), .lifetime(seconds: UInt32(lifetime.components.seconds))])
    }

    private func refresh(_ request: StunMessage, from client: RelayClient, now: Instant) -> StunMessage {
        guard let allocation = allocations[client], allocation.expires > now else { return error(request, 437) }
        let requested = request.first { if case .lifetime(let seconds) = $0 { seconds } else { nil } }
        guard requested != 0 else {
            free(client, now: now)
            return StunMessage(class: .successResponse, method: .refresh, transactionId: request.transactionId,
                               attributes: [.lifetime(seconds: 0)])
        }
        let lifetime = Self.lifetime(requested)
        allocations[client]?.expires = now + lifetime
        return StunMessage(class: .successResponse, method: .refresh, transactionId: request.transactionId,
                           attributes: [.lifetime(seconds: UInt32(lifetime.components.seconds))])
    }

    private func channelBind(_ request: StunMessage, from client: RelayClient, now: Instant) -> StunMessage {
        guard let allocation = allocations[client], allocation.expires > now else { return error(request, 437) }
        guard let number = request.first({ if case .channelNumber(let number) = $0 { number } else { nil } }),
              configuration.channelNumbers.contains(number),
              let peer = request.first({ if case .xorPeerAddress(let address) = $0 { address } else { nil } })
        else { return error(request, 400) }
        guard allocation.families.contains(peer.ip.version) else { return error(request, 443) }
        // A number or a peer stays with its partner through the cool-down (RFC 8656 §12, §3.11).
        if let bound = allocation.channelByPeer[peer], bound != number { return error(request, 400) }
        if let channel = allocation.channels[number], channel.peer != peer { return error(request, 400) }
        if allocation.channels[number] == nil { channelCount += 1 }
        allocations[client]?.channels[number] = Channel(peer: peer, expires: now + Self.channelLifetime)
        allocations[client]?.channelByPeer[peer] = number
        return StunMessage(class: .successResponse, method: .channelBind, transactionId: request.transactionId)
    }

    private struct FamilyFailure: Error {
        var code: Int
    }

    /// REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY as Firezone's relay reads them: both → 400, an
    /// additional family other than IPv6 → 400, a requested family the relay lacks → 440, an additional IPv6 on
    /// an IPv4-only relay → IPv4 alone.
    private func addressFamilies(_ request: StunMessage) -> Result<[IpVersion], FamilyFailure> {
        let requested = request.first { if case .requestedAddressFamily(let family) = $0 { family } else { nil } }
        let additional = request.first { if case .additionalAddressFamily(let family) = $0 { family } else { nil } }
        if requested != nil, additional != nil { return .failure(FamilyFailure(code: 400)) }
        if let additional, additional != 0x02 { return .failure(FamilyFailure(code: 400)) }
        let primary: IpVersion
        switch requested {
        case nil, 0x01?: primary = .v4
        case 0x02?: primary = .v6
        default: return .failure(FamilyFailure(code: 440))
        }
        guard configuration.serves(primary) else { return .failure(FamilyFailure(code: 440)) }
        return .success(additional != nil && configuration.serves(.v6) ? [.v4, .v6] : [primary])
    }

    static var evenPort: UInt16 { 0x0018 }

    /// A random free port of the range (an even one if asked), else the first free one; `nil` when every port is
    /// taken (508).
    private func freePort(even: Bool) -> UInt16? {
        let range = configuration.ports
        func usable(_ port: UInt16) -> Bool { clientByPort[port] == nil && (!even || port % 2 == 0) }
        for _ in 0..<16 {
            let candidate = UInt16.random(in: range, using: &random)
            if usable(candidate) { return candidate }
        }
        return range.first(where: usable)
    }

    /// The requested lifetime up to an hour; 600 s when none was asked for (Firezone: no lower bound).
    static func lifetime(_ requested: UInt32?) -> Duration {
        guard let requested else { return defaultLifetime }
        return min(.seconds(Int64(requested)), maximumLifetime)
    }

    /// The socket's nonce, or a new one when it has none, it is used up, or `fresh`. Bounded: past the limit
    /// the table starts over (a flood from many sources costs bounded memory).
    func nonce(for client: RelayClient, fresh: Bool = false) -> String {
        if !fresh, let current = nonces[client], current.uses < configuration.nonceUses { return current.value }
        if nonces[client] == nil, nonces.count >= configuration.maximumNonces { nonces.removeAll(keepingCapacity: true) }
        let value = String(random.next(), radix: 16) + String(random.next(), radix: 16)
        nonces[client] = Nonce(value: value, uses: 0)
        return value
    }

    func error(_ request: StunMessage, _ code: Int, extra: [StunAttribute] = []) -> StunMessage {
        StunMessage(class: .errorResponse, method: request.method, transactionId: request.transactionId,
                    attributes: [.errorCode(code: code, reason: Self.reason(code))] + extra)
    }

    func encode(_ response: StunMessage, key: [UInt8]?) -> [UInt8] {
        var response = response
        response.attributes.append(.software(configuration.software))
        if response.messageClass == .successResponse {
            statistics.successResponses += 1
        } else {
            let code = response.first { if case .errorCode(let code, _) = $0 { code } else { nil } } ?? 0
            statistics.errorResponses[code, default: 0] += 1
        }
        return response.encode(integrity: key.map { .sha1(key: $0) })
    }

    static func reason(_ code: Int) -> String {
        switch code {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 420: "Unknown Attribute"
        case 437: "Allocation Mismatch"
        case 438: "Stale Nonce"
        case 440: "Address Family not Supported"
        case 443: "Peer Address Family Mismatch"
        case 508: "Insufficient Capacity"
        default: "Error"
        }
    }
}
