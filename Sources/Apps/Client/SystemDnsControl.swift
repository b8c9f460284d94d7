import AppOptions
import AppRuntime
import Dispatch
import Foundation
import Logging
import SansIO
import Tunnel

/// Points the system's DNS at the tunnel's sentinels the way `--dns-control` says (spec `tunnel-dns.md` §4.11),
/// off the event loop's thread: `etc-resolv-conf` rewrites `/etc/resolv.conf` (``ResolvConfControl``),
/// `systemd-resolved` configures the TUN link with `resolvectl`, `disabled` touches nothing.
final class SystemDnsControl: Sendable {
    private let method: DnsControl
    private let resolvConf: ResolvConfControl
    private let interface: String
    private let logger: Logger
    private let queue = DispatchQueue(label: "firezone.dns-control")

    init(method: DnsControl, resolvConf: ResolvConfControl = ResolvConfControl(), interface: String = TunDevice.firezoneName,
         logger: Logger) {
        self.method = method
        self.resolvConf = resolvConf
        self.interface = interface
        self.logger = logger
    }

    /// Undoes what a crashed run left behind (startup step 4 of §7.2) and, at exit, what this run did.
    func deactivate() {
        queue.sync {
            guard method == .etcResolvConf else { return }
            do {
                if try resolvConf.revert() { logger.info("Reverted `\(resolvConf.path)`") }
            } catch {
                logger.warning("Failed to deactivate DNS control: \(error)")
            }
        }
    }

    /// The resolvers the system used before the tunnel, for queries outside the resources.
    func systemResolvers() -> [IpAddress] {
        do {
            switch method {
            case .disabled, .etcResolvConf: return try resolvConf.systemNameservers()
            case .systemdResolved: return try Self.resolvectl(["dns"]).split(whereSeparator: \.isWhitespace).compactMap { IpAddress($0) }
            }
        } catch {
            logger.error("Failed to read the system's DNS resolvers: \(error)")
            return []
        }
    }

    /// Sets the sentinels and the search domain of a new TUN configuration, before "Tunnel ready" is said.
    func apply(_ config: TunConfig) {
        queue.sync {
            do {
                switch method {
                case .disabled:
                    return
                case .etcResolvConf:
                    guard try resolvConf.configure(nameservers: config.dnsServers, searchDomain: config.searchDomain) else {
                        logger.warning("`dns_config` is empty, leaving `\(resolvConf.path)` unchanged")
                        return
                    }
                case .systemdResolved:
                    _ = try Self.resolvectl(["dns", interface] + config.dnsServers.map(\.description))
                    _ = try Self.resolvectl(["domain", interface, config.searchDomain ?? "~."])
                    _ = try Self.resolvectl(["llmnr", interface, "true"])
                }
                logger.info("Configured DNS sentinels", metadata: ["method": "\(method.rawValue)",
                                                                   "servers": "\(config.dnsServers.map(\.description).joined(separator: ","))"])
            } catch {
                logger.error("Failed to control DNS: \(error)")
            }
        }
    }

    /// Flushes the system's DNS cache after the resources changed (only systemd-resolved keeps one).
    func flush() {
        guard method == .systemdResolved else { return }
        queue.async { [self] in
            do {
                _ = try Self.resolvectl(["flush-caches"])
            } catch {
                logger.warning("Failed to flush the DNS cache: \(error)")
            }
        }
    }

    private static func resolvectl(_ arguments: [String]) throws(DnsControlError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["resolvectl"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw .resolvectl("cannot run `resolvectl \(arguments.joined(separator: " "))`: \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .resolvectl("`resolvectl \(arguments.joined(separator: " "))` exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}
