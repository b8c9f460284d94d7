import Crypto

/// The keys of STUN's credential mechanisms.
public enum StunKey {
    /// Short-term credentials (ICE): the password's bytes. (SASLprep is the identity for ASCII passwords,
    /// which is all ICE and TURN produce here.)
    public static func shortTerm(password: String) -> [UInt8] {
        Array(password.utf8)
    }

    /// Long-term credentials (TURN): MD5(username ":" realm ":" password).
    public static func longTerm(username: String, realm: String, password: String) -> [UInt8] {
        Array(Insecure.MD5.hash(data: Array("\(username):\(realm):\(password)".utf8)))
    }
}

/// Which integrity attribute to add when encoding.
public enum StunIntegrity: Hashable, Sendable {
    /// MESSAGE-INTEGRITY: HMAC-SHA1.
    case sha1(key: [UInt8])
    /// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256.
    case sha256(key: [UInt8])
}
