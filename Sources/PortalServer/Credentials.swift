import Crypto
import FoundationEssentials
import PortalMessages

/// The secrets the portal derives for a flow and a relay (spec §6), exactly as Firezone's portal does.
public enum Credentials {
    /// ICE credentials of a client–gateway pair, stable until either public key changes: lowercase base32 of
    /// SHA-256 over `"<client_id>:<client_pk>:<gateway_id>:<gateway_pk>"`, cut into 4 + 22 + 4 + 22 characters.
    public static func ice(clientId: ClientId, clientKey: PublicKey, gatewayId: GatewayId, gatewayKey: PublicKey)
        -> (client: IceCredentials, gateway: IceCredentials)
    {
        let seed = "\(clientId):\(clientKey.base64):\(gatewayId):\(gatewayKey.base64)"
        let text = Array(base32(Array(SHA256.hash(data: Array(seed.utf8)))))
        func slice(_ range: Range<Int>) -> String { String(text[range]) }
        return (IceCredentials(ufrag: slice(0..<4), password: slice(4..<26)),
                IceCredentials(ufrag: slice(26..<30), password: slice(30..<52)))
    }

    /// The WireGuard preshared key of a pair: PBKDF2-HMAC-SHA256, one iteration, 32 bytes, with the two devices'
    /// random `psk_base` secrets as password and `WG_PSK|C_ID:…|G_ID:…|C_PK:…|G_PK:…` as salt.
    public static func presharedKey(clientId: ClientId, clientKey: PublicKey, clientPskBase: [UInt8],
                                    gatewayId: GatewayId, gatewayKey: PublicKey, gatewayPskBase: [UInt8]) -> PresharedKey {
        let salt = "WG_PSK|C_ID:\(clientId)|G_ID:\(gatewayId)|C_PK:\(clientKey.base64)|G_PK:\(gatewayKey.base64)"
        // One PBKDF2 iteration with a 32-byte output is U1 = HMAC(password, salt ‖ INT_32_BE(1)).
        let key = SymmetricKey(data: clientPskBase + gatewayPskBase)
        let block = HMAC<SHA256>.authenticationCode(for: Array(salt.utf8) + [0, 0, 0, 1], using: key)
        return PresharedKey(WireGuardKey(bytes: Array(block))!)
    }

    /// TURN credentials for a component's public key, in the form the relay checks.
    public static func turn(secret: RelayConfig.Secret, publicKey: PublicKey, expiresAt: Int64) -> (username: String, password: String) {
        let salt = base64NoPad(Array(SHA256.hash(data: Array(publicKey.base64.utf8))))
        let username = "\(expiresAt):\(salt)"
        switch secret {
        case .stamp(let stamp):
            return (username, base64NoPad(Array(SHA256.hash(data: Array("\(expiresAt):\(stamp):\(salt)".utf8)))))
        case .coturn(let shared):
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: SymmetricKey(data: Array(shared.utf8)))
            return (username, Data(mac).base64EncodedString())
        }
    }

    /// A joined relay's id: a version-4-shaped UUID from SHA-256 of its stamp secret (`Portal.Relay.generate_id`),
    /// so a relay that comes back with the same secret keeps its id, and one with a new secret is a new relay.
    public static func relayId(stampSecret: String) -> RelayId {
        let digest = Array(SHA256.hash(data: Array(stampSecret.utf8)))
        func word(_ range: Range<Int>) -> UInt64 { digest[range].reduce(0) { $0 << 8 | UInt64($1) } }
        let high = word(0..<8) & ~0xF000 | 0x4000
        let low = word(8..<16) & ~(0xC000 << 48) | 0x8000 << 48
        return RelayId(high: high, low: low)
    }

    /// What a flow's ingest tokens say (the claims Firezone's clients and gateways parse).
    public struct IngestClaims: Sendable {
        public var accountSlug: String
        public var initiator: String
        public var responder: String
        public var resourceId: String
        public var resourceName: String
        public var actorName: String
        public var actorEmail: String?
        public var clientVersion: String?
        public var issuedAt: Int64
        public var expiresAt: Int64?
    }

    /// An HS256 JWT (RFC 7519) over the claims of Firezone's `IngestTokenClaims`, uploads disabled.
    public static func ingestToken(_ claims: IngestClaims, role: String, key: SymmetricKey) -> IngestToken {
        let expiresAt = claims.expiresAt ?? relayCredentialsFarFuture
        let authorization = "\(claims.initiator):\(claims.resourceId):\(claims.issuedAt)"
        var fields: [(String, String)] = [
            ("account_id", JsonText.string("\(stableUuid("account", claims.accountSlug))")),
            ("iat", "\(claims.issuedAt)"), ("exp", "\(expiresAt)"), ("uploads_enabled", "false"), ("role", JsonText.string(role)),
            ("initiator_device_id", JsonText.string(claims.initiator)), ("responder_device_id", JsonText.string(claims.responder)),
            ("policy_authorization_id", JsonText.string("\(stableUuid("authorization", authorization))")),
            ("policy_id", JsonText.string("\(stableUuid("policy", "\(claims.actorName):\(claims.resourceId)"))")),
            ("resource_id", JsonText.string(claims.resourceId)), ("resource_name", JsonText.string(claims.resourceName)),
            ("initiator_actor_id", JsonText.string("\(stableUuid("actor", claims.actorName))")),
            ("initiator_actor_name", JsonText.string(claims.actorName)),
            ("authorized_at", JsonText.string(isoTime(claims.issuedAt))),
            ("authorization_expires_at", JsonText.string(isoTime(expiresAt))),
        ]
        if let email = claims.actorEmail { fields.append(("initiator_actor_email", JsonText.string(email))) }
        if let version = claims.clientVersion { fields.append(("initiator_client_version", JsonText.string(version))) }
        let payload = "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        let signingInput = Base64Url.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64Url.encode(Array(payload.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        do {
            return try IngestToken(signingInput + "." + Base64Url.encode(Array(signature)))
        } catch {
            preconditionFailure("a token this portal signs has the shape it checks: \(error)")
        }
    }

    /// 2038-01-01, the portal's far future.
    static let relayCredentialsFarFuture: Int64 = 2_145_916_800

    /// A name-based UUID, stable for the same kind and name.
    static func stableUuid(_ kind: String, _ name: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Array("firezone-dev-portal:\(kind):\(name)".utf8)).prefix(16))
        bytes[6] = bytes[6] & 0x0F | 0x50
        bytes[8] = bytes[8] & 0x3F | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                           bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    /// `2026-07-06T12:00:00.000000Z`, as the portal writes times in claims.
    static func isoTime(_ unixSeconds: Int64) -> String {
        let days = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds - 86_399) / 86_400
        let secondOfDay = unixSeconds - days * 86_400
        // Howard Hinnant's civil-from-days.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)).000000Z"
    }

    static func base64NoPad(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().prefix { $0 != "=" })
    }

    /// RFC 4648 base32, lowercase, no padding.
    static func base32(_ bytes: [UInt8]) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var output = ""
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int(buffer >> UInt32(bits - 5) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int(buffer << UInt32(5 - bits) & 31)]) }
        return output
    }
}
