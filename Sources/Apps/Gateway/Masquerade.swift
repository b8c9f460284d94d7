import AppRuntime
import Foundation
import Logging

/// What Firezone's `firezone-gateway-init` sets up around the gateway (spec §7.1): IP forwarding, and masquerading
/// of the tunnel ranges towards the resources, in an nftables table of the gateway's own that goes away on exit.
struct Masquerade {
    static let table = "firezone-gateway"
    let logger: Logger

    func install() {
        for path in ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"] {
            do {
                try HostFile.write("1\n", to: path)
            } catch {
                logger.info("Failed to turn on forwarding: \(error)")
            }
        }
        let rules = """
            table inet \(Self.table) {
                chain postrouting {
                    type nat hook postrouting priority srcnat; policy accept;
                    ip saddr 100.64.0.0/11 oifname != "\(TunDevice.firezoneName)" masquerade
                    ip6 saddr fd00:2021:1111::/107 oifname != "\(TunDevice.firezoneName)" masquerade
                }
            }
            """
        run(["-f", "-"], input: rules, what: "install the masquerade rules")
    }

    func remove() {
        run(["delete", "table", "inet", Self.table], input: nil, what: "remove the masquerade rules")
    }

    private func run(_ arguments: [String], input: String?, what: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nft")
        process.arguments = arguments
        let stdin = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardError = stderr
        do {
            try process.run()
            if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
            try stdin.fileHandleForWriting.close()
            let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus != 0 { logger.info("Failed to \(what): \(message)") }
        } catch {
            logger.info("Failed to \(what): nft: \(error)")
        }
    }
}
