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
