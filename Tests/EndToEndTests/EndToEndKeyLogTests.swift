import Foundation
import Testing
import TestSupport

/// `WGKEYLOGFILE` on our client and gateway: each writes its WireGuard secrets (0600, with a warning at start);
/// a capture of the underlay (`tcpdump -i any` in the gateway's namespace: the client's link and the gateway's
/// loopback to coturn), direct and relayed through coturn (ChannelData), is decrypted by
/// `firezone-pcap-replay dissect --keylog` and by tshark with either side's key log, to the same inner packets.
///
/// tshark 4.0 neither looks for WireGuard inside ChannelData nor splits datagrams the sender's GSO coalesced
/// (captured before segmentation), so `dissect --write-wireguard` writes every WireGuard message as a datagram of
/// its own, and tshark decrypts that file: message for message, the same inner packets as ours. Directly, the
/// veths' UDP segmentation offload is also turned off, and tshark decrypts the capture itself, frame for frame
/// as we do.
@Suite("End to end: the WireGuard key log decrypts captures of our tunnels, for us and for tshark (root)", .serialized)
struct EndToEndKeyLogTests {
    @Test(arguments: [false, true])
    func eitherSidesKeyLogDecryptsTheCapture(relayed: Bool) async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            let clientKeys = lab.directory + "/client.keys", gatewayKeys = lab.directory + "/gateway.keys"
            lab.clientEnvironment = ["WGKEYLOGFILE": clientKeys]
            lab.gatewayEnvironment = ["WGKEYLOGFILE": gatewayKeys]
            let capture = lab.directory + "/underlay.pcap"
            // A large buffer and short slots: under the lab's load the kernel otherwise drops what tcpdump cannot read in time.
            try lab.startInGateway("tcpdump", ["tcpdump", "-i", "any", "--immediate-mode", "-U", "-s", "2048", "-B", "16384", "-w", capture, "udp"])
            try lab.waitFor("listening on", in: "tcpdump")
            if !relayed {
                for (namespace, link) in [(lab.client, "eth0"), (lab.gateway, "eth0"), (lab.gateway, "lo")] {
                    try Shell.run("ip", "netns", "exec", namespace.name, "ethtool", "-K", link, "tx-udp-segmentation", "off")
                }
            }
            try lab.startResourceHost()
            try lab.startCoturn()
            try lab.startPortal()
            try lab.startGateway()
            if relayed { try lab.dropDirectUdp() }
            try lab.startClient(["--dns-control", "disabled"])
            let ping = try lab.pingResource()
            #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
            let fetch = try lab.inClient("curl", "-sS", "--max-time", "10", "http://10.77.0.5/")
            #expect(fetch.output == EndToEndLab.page, "\(lab.logs)")
            #expect(lab.stop("client") == 0 && lab.stop("gateway") == 0, "\(lab.logs)")
            lab.stop("tcpdump")
            let dropped = lab.log("tcpdump").split(separator: "\n").first { $0.hasSuffix("packets dropped by kernel") }
            #expect(dropped?.hasPrefix("0 ") == true, "the capture is whole: \(lab.log("tcpdump"))")
            if let keep = ProcessInfo.processInfo.environment["FZ_E2E_KEEP_LOGS"] {
                _ = try? Shell.run("sh", "-c", "mkdir -p \(keep)/\(relayed) && cp \(capture) \(clientKeys) \(gatewayKeys) \(keep)/\(relayed)/", allowFailure: true)
            }

            for (side, path) in [("client", clientKeys), ("gateway", gatewayKeys)] {
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(side)'s key log is its owner's only")
                #expect(lab.log(side).contains("WARN") && lab.log(side).contains("key log \(path)"), "\(side) warns: \(lab.log(side))")
            }
            #expect(lab.unexpectedWarnings(expected: ["WireGuard session secrets are written to the key log"]).isEmpty,
                    "\(lab.unexpectedWarnings(expected: ["WireGuard session secrets are written to the key log"]))")

            for (side, keyLog) in [("client", clientKeys), ("gateway", gatewayKeys)] {
                let export = lab.directory + "/\(side)-wireguard.pcap"
                let tool = try Shell.run([try Binaries.path("firezone-pcap-replay"), "dissect", "--json", "--keylog", keyLog,
                                          "--write-wireguard", export, capture])
                let report = try JSONSerialization.jsonObject(with: Data(tool.output.utf8)) as? [String: Any] ?? [:]
                let datagrams = report["datagrams"] as? [[String: Any]] ?? []
                let decryption = report["decryption"] as? [String: Any] ?? [:]
                #expect((decryption["sessions"] as? [Any])?.isEmpty == false, "\(side): \(decryption)")
                #expect(decryption["dataWithoutKeys"] as? Int == 0 && decryption["failedToOpen"] as? Int == 0, "\(side): \(decryption)")
                let inner = { (datagram: [String: Any]) -> String? in
                    (datagram["decrypted"] as? [String: Any]).map { "\($0["source"] ?? "") → \($0["destination"] ?? "")" }
                }
                let messages = datagrams.filter { ($0["kind"] as? String) == "wireguard" || ($0["inner"] as? String) == "wireguard" }
                #expect(messages.compactMap(inner).count >= 6, "\(side): the pings and the HTTP exchange both ways")
                if relayed {
                    #expect(messages.contains { ($0["kind"] as? String) == "channel-data" && $0["decrypted"] != nil },
                            "\(side): data inside ChannelData was decrypted")
                }

                let exported = try Self.tsharkInner(export, keyLog: keyLog)
                #expect(exported.count == messages.count, "\(side): one exported datagram per WireGuard message")
                #expect(exported.map(\.1) == messages.map(inner), "\(side): tshark decrypts the exported messages to ours")
                if !relayed {
                    #expect(report["coalescedDatagrams"] as? Int == 0, "\(side): no offload, no coalesced datagram")
                    let theirs = try Self.tsharkInner(capture, keyLog: keyLog).filter { $0.1 != nil }
                    let ours = datagrams.compactMap { datagram in inner(datagram).map { (datagram["packet"] as? Int ?? 0, $0) } }
                    #expect(ours.map(\.0) == theirs.map(\.0), "\(side): the same frames decrypted")
                    #expect(ours.map(\.1) == theirs.map(\.1), "\(side): the same inner packets")
                }
            }
        }
    }

    /// Per frame of `capture`, what tshark decrypts with `keyLog`: "source → destination" of the inner packet, with
    /// ports, as dissect mode writes it; `nil` for frames without one.
    static func tsharkInner(_ capture: String, keyLog: String) throws -> [(Int, String?)] {
        let frames = try Tshark.fields(["frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
                                        "tcp.srcport", "tcp.dstport"],
                                       of: capture, options: ["-o", "wg.keylog_file:\(keyLog)", "-o", "wg.dissect_packet:TRUE"])
        return frames.map { frame in
            let values = { (field: String) in (frame[field] ?? "").split(separator: ",").map(String.init) }
            let number = Int(frame["frame.number"] ?? "") ?? 0
            let outerIsV6 = values("ip.src").isEmpty
            let address: (String, String, Bool)
            if !outerIsV6, values("ip.src").count >= 2, let source = values("ip.src").last, let destination = values("ip.dst").last {
                address = (source, destination, false)
            } else if values("ipv6.src").count >= (outerIsV6 ? 2 : 1), let source = values("ipv6.src").last, let destination = values("ipv6.dst").last {
                address = (source, destination, true)
            } else {
                return (number, nil)
            }
            let ports = values("udp.srcport").count >= 2 ? (values("udp.srcport").last, values("udp.dstport").last)
                : (values("tcp.srcport").last, values("tcp.dstport").last)
            let text = { (host: String, port: String?) in port.map { address.2 ? "[\(host)]:\($0)" : "\(host):\($0)" } ?? host }
            return (number, "\(text(address.0, ports.0)) → \(text(address.1, ports.1))")
        }
    }
}
