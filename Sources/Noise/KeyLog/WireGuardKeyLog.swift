/// The secrets one side used in one handshake, in the key log format Wireshark's WireGuard dissector reads
/// (`wg.keylog_file`; the lines wireguard-tools' `extract-handshakes.sh` prints). With them, a capture of the
/// handshake and of the data after it can be decrypted: by Wireshark, and by ``WireGuardDecryptor``.
///
/// ```
/// LOCAL_STATIC_PRIVATE_KEY = <base64>
/// REMOTE_STATIC_PUBLIC_KEY = <base64>
/// LOCAL_EPHEMERAL_PRIVATE_KEY = <base64>
/// PRESHARED_KEY = <base64>
/// ```
public struct WireGuardSessionSecrets: Sendable {
    public var localStaticPrivateKey: SecretKey
    public var remoteStaticPublicKey: PublicKey
    public var localEphemeralPrivateKey: SecretKey
    public var presharedKey: SecretKey

    public init(localStaticPrivateKey: SecretKey, remoteStaticPublicKey: PublicKey, localEphemeralPrivateKey: SecretKey,
                presharedKey: SecretKey) {
        self.localStaticPrivateKey = localStaticPrivateKey
        self.remoteStaticPublicKey = remoteStaticPublicKey
        self.localEphemeralPrivateKey = localEphemeralPrivateKey
        self.presharedKey = presharedKey
    }

    /// The four key log lines, each ending in a newline.
    public var keyLogLines: String {
        "LOCAL_STATIC_PRIVATE_KEY = \(localStaticPrivateKey.base64)\n"
            + "REMOTE_STATIC_PUBLIC_KEY = \(remoteStaticPublicKey.base64)\n"
            + "LOCAL_EPHEMERAL_PRIVATE_KEY = \(localEphemeralPrivateKey.base64)\n"
            + "PRESHARED_KEY = \(presharedKey.base64)\n"
    }
}

/// A key log file's contents: every complete set of the four secrets, in order. A set is complete at its
/// ephemeral key once the static keys are known; a preshared key that follows belongs to it (Wireshark's
/// reading too). Lines of other kinds are skipped; a line that names a known kind with a value that is not a
/// 32-byte base64 key is an error naming the line.
public enum WireGuardKeyLog {
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> [WireGuardSessionSecrets] {
        var secrets: [WireGuardSessionSecrets] = []
        var localStatic: SecretKey?, remoteStatic: PublicKey?
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            guard !line.isEmpty, !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals].trimmingCharacters(in: " \t"))
            let value = String(line[line.index(after: equals)...].trimmingCharacters(in: " \t"))
            let known = ["LOCAL_STATIC_PRIVATE_KEY", "REMOTE_STATIC_PUBLIC_KEY", "LOCAL_EPHEMERAL_PRIVATE_KEY", "PRESHARED_KEY"]
            guard known.contains(name) else { continue }
            guard let key = SecretKey(base64: value) else {
                throw ParseError(line: index + 1, message: "\(name) is not a 32-byte key in base64")
            }
            switch name {
            case "LOCAL_STATIC_PRIVATE_KEY":
                localStatic = key
            case "REMOTE_STATIC_PUBLIC_KEY":
                remoteStatic = PublicKey(bytes: Array(key.bytes))
            case "LOCAL_EPHEMERAL_PRIVATE_KEY":
                guard let localStatic, let remoteStatic else {
                    throw ParseError(line: index + 1, message: "an ephemeral key before both static keys")
                }
                secrets.append(WireGuardSessionSecrets(localStaticPrivateKey: localStatic, remoteStaticPublicKey: remoteStatic,
                                                       localEphemeralPrivateKey: key, presharedKey: SecretKey()))
            default:
                guard !secrets.isEmpty else { throw ParseError(line: index + 1, message: "a preshared key before any ephemeral key") }
                secrets[secrets.count - 1].presharedKey = key
            }
        }
        return secrets
    }
}

private extension StringProtocol {
    func trimmingCharacters(in set: String) -> Substring {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return text
    }
}
