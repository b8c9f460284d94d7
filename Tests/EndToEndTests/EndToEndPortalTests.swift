import Foundation
import Testing
import TestSupport

/// The binaries against today's portal protocol (spec `portal-phoenix.md` §8) and through portal outages
/// (``EndToEndLab``): v2, v1, and a v1 client with a v2 gateway on the same portal; a tunnel that carries traffic
/// while the portal is gone for minutes; a gateway that gives up after its maximum partition time.
@Suite("End to end: portal API generations and portal outages (root)")
struct EndToEndPortalTests {
    @Test("a ping and a new DNS flow work with client and gateway on v2, on v1, and the client on v1 with the gateway on v2",
          arguments: [("v2", "v2"), ("v1", "v1"), ("v1", "v2")])
    func apiGenerations(clientApi: String, gatewayApi: String) async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            lab.gatewayEnvironment["FIREZONE_PORTAL_API"] = gatewayApi
            try lab.startInfrastructure()
            try lab.startClient(["--dns-control", "etc-resolv-conf", "--portal-api", clientApi])
            let ping = try lab.pingResource()
            #expect(ping.replies >= 3, "\(ping.output)\n\(lab.logs)")
            let page = try lab.inClient("curl", "-sS", "--max-time", "20", "http://web.lab.test/")
            #expect(page.output == EndToEndLab.page, "a second flow, for the DNS resource\n\(page)\n\(lab.logs)")

            let portal = lab.log("portal")
            #expect(portal.contains("Client joined") && portal.contains("api=\(clientApi)") && portal.contains("version=headless-client/1.5.11"),
                    "\(portal)")
            #expect(portal.contains("Gateway joined") && portal.contains("api=\(gatewayApi)") && portal.contains("version=gateway/1.6.0"),
                    "\(portal)")
            #expect(lab.log("client").contains("portal_api=\(clientApi)") && lab.log("gateway").contains("portal_api=\(gatewayApi)"))
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())")
            #expect(lab.stop("client") == 0 && lab.stop("gateway") == 0)
        }
    }

    /// The portal is gone for three minutes, longer than WireGuard's 120 s rekey: the established tunnel carries
    /// a ping every half second and a checksummed download throughout; when the portal comes back both sides
    /// rejoin on their own and a new flow works.
    @Test("traffic flows through a portal outage of three minutes; both sides rejoin afterwards")
    func portalOutage() async throws {
        try await offPool {
            let outage = 180.0
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            try lab.startInfrastructure()
            try lab.startClient()
            let before = try lab.pingResource()
            #expect(before.replies >= 3, "\(before.output)\n\(lab.logs)")

            let pings = Int((outage + 20) / 0.5)
            try lab.startInClient("pinger", ["ping", "-n", "-i", "0.5", "-c", "\(pings)", "10.77.0.5"])
            #expect(lab.stop("portal") == 0)
            try lab.waitFor("Hiccup in portal connection", in: "client")
            try lab.waitFor("Hiccup in portal connection", in: "gateway")
            // The outage's length is what is tested: no event ends it early.
            Thread.sleep(forTimeInterval: outage - 20)
            let download = try lab.inClient("sh", "-c", "curl -sS --max-time 60 http://10.77.0.5/blob | sha256sum")
            #expect(download.output.hasPrefix(lab.blobSha256), "a 4 MiB download during the outage\n\(download.output)\n\(lab.logs)")
            Thread.sleep(forTimeInterval: 20)

            try lab.startPortal(log: "portal-2")
            // The reconnect backoff is capped at 60 s ± 50 % after minutes of failures.
            try lab.waitFor("Gateway joined", in: "portal-2", seconds: 120)
            try lab.waitFor("Client joined", in: "portal-2", seconds: 120)
            #expect(lab.waitForExit("pinger", killAfter: 60) == 0, "\(lab.log("pinger").suffix(500))")
            let summary = lab.log("pinger")
            let received = pingReplies(summary)
            #expect(received >= pings * 99 / 100, "\(received) of \(pings) pings answered through the outage\n\(summary.suffix(400))")

            let page = try lab.inClient("curl", "-sS", "--max-time", "20", "http://web.lab.test/")
            #expect(page.output == EndToEndLab.page, "a new flow after the portal came back\n\(page)\n\(lab.logs)")
            #expect(lab.unexpectedWarnings().isEmpty, "\(lab.unexpectedWarnings())")
            print("portal outage: \(received) of \(pings) pings answered over \(Int(outage)) s without the portal")
        }
    }

    @Test("a gateway with FIREZONE_MAX_PARTITION_TIME=5s exits 1 when the portal stays away longer")
    func maximumPartitionTime() async throws {
        try await offPool {
            let lab = try EndToEndLab()
            defer { lab.tearDown() }
            lab.gatewayEnvironment["FIREZONE_MAX_PARTITION_TIME"] = "5s"
            try lab.startPortal()
            try lab.startGateway()
            #expect(lab.stop("portal") == 0)
            #expect(lab.waitForExit("gateway", killAfter: 30) == 1, "\(lab.log("gateway"))")
            // It stops when the next delay would pass the 5 s budget: after 2.5 s at the earliest (0.25 + 0.375 +
            // 0.5625 + 0.84 + 1.27 s of jittered delays), before 5 s plus the last attempt. Timed by the gateway's own
            // log, from the first hiccup to the give-up: the wall clock around the portal's shutdown and the
            // gateway's exit also counts how long a loaded machine takes to stop and reap processes.
            let lines = lab.log("gateway").split(separator: "\n")
            let firstHiccup = lines.first { $0.contains("Hiccup in portal connection") }.flatMap(Self.timestamp)
            let gaveUp = lines.first { $0.contains("max-retry limit") }.flatMap(Self.timestamp)
            let seconds = firstHiccup.flatMap { first in gaveUp.map { $0.timeIntervalSince(first) } }
            #expect(seconds.map { $0 >= 1.5 && $0 < 8 } == true, "gave up \(seconds ?? -1) s after the first hiccup: \(lab.log("gateway"))")
            let hiccups = lab.log("gateway").components(separatedBy: "Hiccup in portal connection").count - 1
            #expect(hiccups >= 3, "it kept retrying first: \(lab.log("gateway"))")
            #expect(lab.log("gateway").contains("hit the max-retry limit"), "\(lab.log("gateway"))")
        }
    }

    /// The time at the start of a log line (`2026-12-07T21:12:33.076Z  INFO …`).
    static func timestamp(_ line: Substring) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return line.split(separator: " ").first.flatMap { formatter.date(from: String($0)) }
    }
}
