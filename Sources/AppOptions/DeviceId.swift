import Crypto
import Foundation

/// The persistent device ID behind the login URL's `external_id` (spec `portal-phoenix.md` §1.1, Firezone's
/// `bin-shared/src/device_id.rs`): the `{"id": …}` file if there is one; otherwise, on Linux, the hex HMAC-SHA256
/// of `/etc/machine-id` (as read, newline included) keyed with the app ID, not saved; otherwise a new random ID,
/// the hex SHA-256 of a UUIDv4 string, saved with mode 0640 in a directory of mode 0770.
public enum DeviceId {
    public enum App: Sendable {
        case client, gateway

        /// Firezone's app IDs, so a machine keeps the external ID it had with Firezone's binaries.
        public var appId: String {
            switch self {
            case .client: "e1e465ce763e4759945c650ac334501f"
            case .gateway: "753b38f9f96947ef8083802d5909a372"
            }
        }

        public var defaultPath: String {
            switch self {
            case .client: "/var/lib/dev.firezone.client/config/firezone-id.json"
            case .gateway: "/var/lib/firezone/gateway_id"
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func getOrCreate(_ app: App, path: String? = nil, machineIdPath: String = "/etc/machine-id") throws(Failure) -> String {
        let path = path ?? app.defaultPath
        let directory = (path as NSString).deletingLastPathComponent
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try files.setAttributes([.posixPermissions: 0o770], ofItemAtPath: directory)
        } catch {
            throw Failure(description: "Failed to create dir for firezone-id `\(directory)`: \(error)")
        }
        if let saved = stored(at: path) { return saved }
        if let machineId = files.contents(atPath: machineIdPath) { return derived(machineId: machineId, app: app) }
        let id = hex(SHA256.hash(data: Data(UUID().uuidString.lowercased().utf8)))
        let json = "{\"id\":\"\(id)\"}"
        guard files.createFile(atPath: path, contents: Data(json.utf8), attributes: [.posixPermissions: 0o640]) else {
            throw Failure(description: "Failed to write firezone-id file `\(path)`")
        }
        return id
    }

    /// The ID derived from the machine ID's exact bytes.
    public static func derived(machineId: Data, app: App) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: machineId, using: SymmetricKey(data: Data(app.appId.utf8))))
    }

    private static func stored(at path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let id = object["id"] as? String
        else { return nil }
        return id
    }

    /// Lowercase hex, two digits a byte.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
