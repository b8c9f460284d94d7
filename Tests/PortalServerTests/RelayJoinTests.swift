import Foundation
import Glibc
import Logging
import PhoenixChannel
import PortalMessages
@testable import PortalServer
import SansIO
import TestSupport
import Testing

/// Relays joining the development portal as Firezone's join theirs: the upgrade's checks, and the built
/// `firezone-relay` joined to the built `firezone-portal`, with aioice allocating on it with the credentials the
/// portal minted from the secret the relay sent.
@Suite(.offPool) struct RelayJoinTests {
    static let config = """
        sites:
          - name: hq
            gateway_tokens: [gw-token]
        actors:
          - name: alice
            tokens: [alice-token]
        relay_tokens: [relay-token]
        """

    @Test("the upgrade: a known token, at least one address, a port (3478 when absent)")
    func connectRequest() throws {
        func request(_ query: [String: String], authorization: String? = "Bearer relay-token") throws(ConnectRequest.Refusal) -> RelayConnectRequest {
            try RelayConnectRequest(query: query, authorization: authorization, userAgent: "Debian/12.0.0 relay/1.4.5 (x86_64; 6.1.0)",
                                    tokenIsKnown: { $0 == "relay-token" })
        }
        let both = try request(["ipv4": "203.0.113.1", "ipv6": "2001:db8::1", "port": "3479", "name": "r1"])
        #expect(both.addresses.map(\.description) == ["203.0.113.1:3479", "[2001:db8::1]:3479"] && both.version == "1.4.5" && both.name == "r1")
        #expect(try request(["ipv4": "203.0.113.1"]).port == 3478)
        #expect(try request(["ipv4": "203.0.113.1", "token": "relay-token"], authorization: nil).token == "relay-token")
        #expect(throws: ConnectRequest.Refusal(status: 401, code: "missing_token", detail: "Missing token")) { try request(["ipv4": "203.0.113.1"], authorization: nil) }
        #expect(throws: ConnectRequest.Refusal(status: 401, code: "invalid_token", detail: "Invalid token")) {
            try request(["ipv4": "203.0.113.1"], authorization: "Bearer gw-token")
        }
        #expect(throws: ConnectRequest.Refusal(status: 400, code: "invalid_connect_params", detail: "ipv4 or ipv6 is required")) { try request(["port": "3478"]) }
        #expect(throws: ConnectRequest.Refusal(status: 400, code: "invalid_connect_params", detail: "ipv4 is invalid")) { try request(["ipv4": "2001:db8::1"]) }
        #expect(throws: ConnectRequest.Refusal(status: 400, code: "invalid_connect_params", detail: "port is invalid")) {
            try request(["ipv4": "203.0.113.1", "port": "70000"])
        }
    }

    @Test("the join payload: the stamp secret, required and not empty")
    func joinPayload() throws {
        func decode(_ payload: String) -> Result<RelayEgress, PhoenixPayloadError> {
            let frame = PhoenixFrame(topic: "relay", event: "phx_join", payload: payload, ref: 1).encoded()
            return (try? PhoenixInbound<RelayEgress>(decoding: frame))?.payload ?? .failure(PhoenixPayloadError(event: "phx_join", reason: "no frame"))
        }
        #expect(RelayJoin(stampSecret: "s3cret").json == #"{"stamp_secret":"s3cret"}"#)
        #expect(try decode(RelayJoin(stampSecret: "s3cret").json).get() == .join(RelayJoin(stampSecret: "s3cret")))
        for bad in ["null", "{}", #"{"stamp_secret":""}"#, #"{"stamp_secret":7}"#] {
            #expect((try? decode(bad).get()) == nil, "\(bad)")
        }
    }

    @Test("presence: a relay back with a new secret from the same address replaces the old at once; one back with its secret is no news")
    func presence() async throws {
        var config = try PortalConfig(yaml: Self.config)
        config.relayTokens = ["relay-token"]
        let state = PortalState(config: config, store: try DeviceStore(path: nil), logger: Logger(label: "test"), relayLeaveDebounce: .seconds(3_600))
        let clientOutbox = Outbox()
        let request = try ConnectRequest(role: .client, query: ["token": "alice-token", "external_id": "laptop", "public_key": Peer.randomKey()],
                                         authorization: nil, userAgent: "Debian/12.0.0 headless-client/1.5.5", tokenIsKnown: { _ in true })
        await state.clientJoined(request, device: try state.store.device(kind: .client, externalId: "laptop"), api: .v2, outbox: clientOutbox)
        var pushes = clientOutbox.frames.makeAsyncIterator()
        #expect(try PhoenixFrame(decoding: try #require(await pushes.next())).event == "init")
        func nextPresence() async throws -> RelaysPresence {
            let frame = try PhoenixFrame(decoding: try #require(await pushes.next()))
            guard case .relaysPresence(let presence) = try ClientIngress(event: frame.event, payload: frame.payload) else {
                throw PortalProcessError("not relays_presence: \(frame.event)")
            }
            return presence
        }
        let relay = try RelayConnectRequest(query: ["ipv4": "203.0.113.1"], authorization: "Bearer relay-token", userAgent: nil,
                                            tokenIsKnown: { _ in true })
        let (first, second) = (Outbox(), Outbox())
        await state.relayJoined(relay, join: RelayJoin(stampSecret: "first"), outbox: first)
        let joined = try await nextPresence()
        let firstId = Credentials.relayId(stampSecret: "first")
        #expect(joined.connected.map(\.id) == [firstId] && joined.disconnectedIds.isEmpty)

        await state.left(outbox: first)
        await state.relayJoined(relay, join: RelayJoin(stampSecret: "second"), outbox: second)
        let replaced = try await nextPresence()
        #expect(replaced.disconnectedIds == [firstId] && replaced.connected.map(\.id) == [Credentials.relayId(stampSecret: "second")],
                "the old relay is gone without waiting for the debounce")

        await state.left(outbox: second)
        await state.relayJoined(relay, join: RelayJoin(stampSecret: "second"), outbox: Outbox())
        let back = try await nextPresence()
        #expect(back.disconnectedIds.isEmpty && back.connected.count == 1)
        #expect(await state.leavingRelays.isEmpty, "no leave left to report")
        #expect(await state.connected.relays == [Credentials.relayId(stampSecret: "second")])
    }

    @Test("firezone-relay joins: clients are offered it, aioice allocates with the portal's credentials, and its leave reaches them")
    func relayJoinsThePortal() async throws {
        let portal = try PortalProcess(config: Self.config)
        try await portal.start()
        defer {
            _ = portal.stop()
            portal.removeFiles()
        }
        let client = Peer(port: portal.port, mode: .client, token: "alice-token", externalId: "laptop")
        let session = client.start()
        defer { session.cancel() }
        guard case .initialize(let hello) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no init") }
        #expect(hello.relays.isEmpty)

        let (listenPort, healthPort) = (try Self.unusedPort(SOCK_DGRAM), try Self.unusedPort(SOCK_STREAM))
        let relay = ToolProcess("firezone-relay")
        try relay.start(Self.relayArguments(listenPort: listenPort, healthPort: healthPort) + ["relay-token"],
                        environment: ["FIREZONE_API_URL": "ws://127.0.0.1:\(portal.port)", "FIREZONE_NAME": "relay-a"])
        defer { _ = relay.stop() }
        _ = try await relay.waitForLine(containing: "Connected to portal")
        #expect(try Shell.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(healthPort)/readyz").output == "200")

        guard case .relaysPresence(let joined) = try await client.nextPush(ClientIngress.self),
              case .turn(let offered)? = joined.connected.first else { throw PortalProcessError("no relays_presence with the relay") }
        #expect(joined.connected.count == 1 && joined.disconnectedIds.isEmpty)
        #expect(offered.address.description == "127.0.0.1:\(listenPort)")
        let aioice = try Shell.run("python3", Self.aioiceClient, "127.0.0.1", "\(listenPort)", "-", "127.0.0.1", "5",
                                   offered.username, offered.password, allowFailure: true)
        #expect(aioice.output.contains("5 of 5"), "aioice with the portal's credentials: \(aioice)")

        #expect(relay.stop() == 0)
        guard case .relaysPresence(let left) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no leave") }
        #expect(left.disconnectedIds == [offered.id] && left.connected.isEmpty)
    }

    @Test("a relay token the portal does not know: the relay says why and exits 1")
    func unknownToken() async throws {
        let portal = try PortalProcess(config: Self.config)
        try await portal.start()
        defer {
            _ = portal.stop()
            portal.removeFiles()
        }
        let arguments = Self.relayArguments(listenPort: try Self.unusedPort(SOCK_DGRAM), healthPort: try Self.unusedPort(SOCK_STREAM))
        let result = try Shell.run("sh", "-c", "FIREZONE_API_URL=ws://127.0.0.1:\(portal.port) \(try ToolProcess.executable("firezone-relay")) "
                                   + arguments.joined(separator: " ") + " not-a-token 2>&1", allowFailure: true)
        #expect(result.status == 1 && result.output.contains("Portal connection failed: Authentication token invalid"), "\(result)")
    }

    /// The relay on loopback: its port, 201 allocation ports away from it, and its health check.
    static func relayArguments(listenPort: Int, healthPort: Int) -> [String] {
        let lowest = 20_000 + listenPort % 40_000
        return ["--public-ip4-addr", "127.0.0.1", "--bind-ip4-addr", "127.0.0.1", "--listen-port", "\(listenPort)", "--lowest-port", "\(lowest)",
                "--highest-port", "\(lowest + 200)", "--health-check-addr", "127.0.0.1:\(healthPort)"]
    }

    static var aioiceClient: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Support/aioice_turn_client.py").path
    }

    /// A port nothing on this host uses now, of the socket type asked for.
    static func unusedPort(_ type: __socket_type) throws -> Int {
        let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")),
                                  sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw PortalProcessError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
