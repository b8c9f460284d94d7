import Crypto
import FoundationEssentials
import Stun

/// Long-term credentials as the relay derives them: the password from the username and the secret, so the relay
/// keeps no table of users.
public enum RelayCredentials {
    /// Firezone's password for `<expiry>:<salt>`: base64(SHA-256("<expiry>:<secret>:<salt>")), no padding, as the
    /// portal mints it.
    public static func firezonePassword(secret: String, expiresAt: Int64, salt: String) -> String {
        let digest = SHA256.hash(data: Array("\(expiresAt):\(secret):\(salt)".utf8))
        return String(Data(digest).base64EncodedString().prefix { $0 != "=" })
    }

    /// coturn's REST API password: base64(HMAC-SHA1(secret, username)).
    public static func restApiPassword(secret: String, username: String) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(username.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// The long-term key of `username` under `authentication`, if the username has the scheme's form and has not
    /// expired at `unixTime`.
    static func key(for username: String, realm: String, authentication: RelayAuthentication, unixTime: Int64) -> [UInt8]? {
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let expiry = Int64(parts[0]), expiry > unixTime else { return nil }
        switch authentication {
        case .firezone(let secret):
            guard parts.count == 2 else { return nil }
            let password = firezonePassword(secret: secret, expiresAt: expiry, salt: String(parts[1]))
            return StunKey.longTerm(username: username, realm: realm, password: password)
        case .coturnRestApi(let secret):
            return StunKey.longTerm(username: username, realm: realm, password: restApiPassword(secret: secret, username: username))
        }
    }
}
