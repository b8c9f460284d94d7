#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials

/// The upgrade request's User-Agent (spec §1.2): `"{os_type}/{os_version} {component}/{version} ({arch}; {kernel})"`.
/// The portal takes the version from the `component/` token and answers 422 when there is none.
public struct UserAgent: Sendable, Hashable, CustomStringConvertible {
    /// Firezone's component names.
    public enum Component: String, Sendable, CaseIterable {
        case appleClient = "apple-client"
        case androidClient = "android-client"
        case guiClient = "gui-client"
        case headlessClient = "headless-client"
        case gateway
        case relay

        /// How long the component keeps reconnecting (spec §1.8, §8); `nil` is unlimited (the headless client
        /// without `--max-partition-time`). Gateways and relays survive portal partitions of 24 h (#11663, #11664).
        public var defaultMaxElapsed: Duration? {
            switch self {
            case .gateway, .relay: .seconds(86_400)
            case .headlessClient: nil
            case .guiClient, .androidClient: .seconds(30 * 86_400)
            case .appleClient: .seconds(86_400)
            }
        }
    }

    public var osType: String
    public var osVersion: String
    public var component: Component
    public var version: String
    public var architecture: String?
    public var kernelRelease: String?

    public init(osType: String, osVersion: String, component: Component, version: String,
                architecture: String? = nil, kernelRelease: String? = nil) {
        self.osType = osType
        self.osVersion = osVersion
        self.component = component
        self.version = version
        self.architecture = architecture
        self.kernelRelease = kernelRelease
    }

    /// This machine's: the OS from `/etc/os-release` (`ID` named as `os_info` names it, `VERSION_ID` as
    /// `major.minor.patch`), the architecture and kernel release from `uname`.
    public static func current(component: Component, version: String) -> UserAgent {
        let release = OsRelease.read()
        var names = utsname()
        uname(&names)
        return UserAgent(osType: release.type, osVersion: release.version, component: component, version: version,
                         architecture: field(&names.machine), kernelRelease: field(&names.release))
    }

    /// The header value; non-ASCII characters are removed, as Firezone does.
    public var description: String {
        let extra: String = switch (architecture, kernelRelease) {
        case (let arch?, let kernel?): " (\(arch); \(kernel))"
        case (let arch?, nil): " (\(arch))"
        case (nil, let kernel?): " (\(kernel))"
        case (nil, nil): ""
        }
        let text = "\(osType)/\(osVersion) \(component.rawValue)/\(version)\(extra)"
        return String(String.UnicodeScalarView(text.unicodeScalars.filter(\.isASCII)))
    }

    private static func field<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// The two facts of `/etc/os-release` the User-Agent needs.
struct OsRelease {
    var type: String
    var version: String

    static func read(path: String = "/etc/os-release") -> OsRelease {
        guard let file = fopen(path, "r") else { return OsRelease(type: "Linux", version: "Unknown") }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return parse(text)
    }

    static func parse(_ text: String) -> OsRelease {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: equals)...]
            if let first = value.first, first == "\"" || first == "'", value.last == first, value.count >= 2 {
                value = value.dropFirst().dropLast()
            }
            fields[String(line[..<equals])] = String(value)
        }
        let known = ["debian": "Debian", "ubuntu": "Ubuntu", "fedora": "Fedora", "arch": "Arch Linux",
                     "centos": "CentOS", "rhel": "Red Hat Enterprise Linux", "alpine": "Alpine Linux",
                     "opensuse-leap": "openSUSE", "amzn": "Amazon Linux AMI", "linuxmint": "Mint", "nixos": "NixOS"]
        let id = fields["ID"] ?? "linux"
        let type = known[id] ?? fields["NAME"] ?? "Linux"
        guard let versionId = fields["VERSION_ID"] else { return OsRelease(type: type, version: "Rolling Release") }
        let numbers = versionId.split(separator: ".").prefix(3).compactMap { Int($0) }
        guard numbers.count == versionId.split(separator: ".").prefix(3).count, !numbers.isEmpty else {
            return OsRelease(type: type, version: versionId)
        }
        let padded = numbers + Array(repeating: 0, count: 3 - numbers.count)
        return OsRelease(type: type, version: padded.map(String.init).joined(separator: "."))
    }
}
