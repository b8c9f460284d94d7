import Foundation
import Ice
import Logging
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import SansIO
import TestSupport
import Testing

/// The `firezone-portal` binary with our client and gateway channels (`PortalChannel`), and with an
/// independent Phoenix client (`phoenix-channels-python-client`).
@Suite(.serialized, .offPool) struct PortalEndToEndTests {
    static let config = """
        account_slug: e2e
        upstream_dns: [1.1.1.1]
        sites:
          - name: hq
            gateway_tokens: [gw-token]
        actors:
          - name: alice
            email: alice@example.com
            tokens: [alice-token]
        resources:
          - name: intranet
            type: cidr
            address: 10.20.0.0/16
            sites: [hq]
            filters: [tcp/80]
          - name: wiki
            type: dns
            address: "*.wiki.example"
            sites: [hq]
        policies:
          - actor: alice
            resource: intranet
          - actor: alice
            resource: wiki
        relays:
          - name: relay-1
            addresses: ["127.0.0.1:3478", "[::1]:3478"]
            stamp_secret: stamp
        """

    /// Both API generations, and a client on v1 with a gateway on v2 (the newest portal serves both at once).
    @Test(arguments: [(PortalApi.v1, PortalApi.v1), (.v2, .v2), (.v1, .v2)])
    func aFullFlowFromCreateFlowToFlowCreatedWithCandidatesBothWays(clientApi: PortalApi, gatewayApi: PortalApi) async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }

        let gateway = Peer(port: portal.port, mode: .gateway, token: "gw-token", externalId: "gateway-1", api: gatewayApi)
        let gatewayRun = gateway.start()
        #expect(try await gateway.events.next() == .joined)
        let gatewayInit = try await gateway.nextPush(GatewayIngress.self)
        guard case .initialize(let gatewayHello) = gatewayInit else { throw PortalProcessError("gateway got \(gatewayInit)") }
        #expect(DeviceStoreRanges.contains(gatewayHello.interface.ipv4, gatewayHello.interface.ipv6))
        #expect(gatewayHello.relays.count == 2, "one entry per address family")
        #expect(gatewayHello.accountSlug == "e2e")

        let client = Peer(port: portal.port, mode: .client, token: "alice-token", externalId: "laptop-1", api: clientApi)
        let clientRun = client.start()
        #expect(try await client.events.next() == .joined)
        guard case .initialize(let clientHello) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no init") }
        #expect(clientHello.flowLogs?.uploadEnabled == false, "flow_logs present, uploads off")
        #expect(clientHello.resources.map(\.id).count == 2)
        #expect(clientHello.interface.upstreamDo53.map(\.ip.description) == ["1.1.1.1"])
        let intranet = try #require(clientHello.resources.first { if case .cidr = $0 { true } else { false } })
        guard case .turn(let clientRelay) = try #require(clientHello.relays.first) else { throw PortalProcessError("no TURN relay") }
        #expect(clientRelay.username.hasSuffix(":" + Credentials64.salt(client.publicKey)), "TURN username salted with our key")

        client.send(ClientEgress.createFlow(CreateFlow(resourceId: intranet.id, connectedGatewayIds: [])))
        guard case .authorizeFlow(let authorize) = try await gateway.nextPush(GatewayIngress.self) else {
            throw PortalProcessError("no authorize_flow")
        }
        #expect(authorize.resource.id == intranet.id && authorize.resource.filters == [.tcp(80...80)])
        #expect(authorize.client.publicKey.base64 == client.publicKey)
        #expect(authorize.client.version == "1.5.5" && authorize.client.deviceOsName == "Debian")
        #expect(authorize.subject?.actorEmail == "alice@example.com")

        gateway.send(GatewayEgress.flowAuthorized(ref: authorize.ref))
        guard case .flowCreated(let created) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no flow_created") }
        #expect(created.resourceId == intranet.id)
        #expect(created.gatewayPublicKey.base64 == gateway.publicKey)
        #expect(created.presharedKey == authorize.client.presharedKey, "both sides get the same preshared key")
        #expect(created.clientIceCredentials == authorize.clientIceCredentials)
        #expect(created.gatewayIceCredentials == authorize.gatewayIceCredentials)
        #expect(created.clientIceCredentials != created.gatewayIceCredentials)
        #expect(created.gatewayIpv4 == gatewayHello.interface.ipv4)
        #expect(created.flowLogsIngestToken != nil && authorize.flowLogsIngestToken != nil && !created.useIceless && !authorize.useIceless)
        #expect(created.flowLogsIngestToken != authorize.flowLogsIngestToken, "initiator and responder get their own tokens")
        #expect(client.pushEvents.contains(clientApi == .v2 ? "authorization_created" : "flow_created"))
        #expect(gateway.pushEvents.contains(gatewayApi == .v2 ? "create_authorization" : "authorize_flow"))

        let clientCandidate = try IceCandidateString.parse("candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host")
        client.send(ClientEgress.broadcastIceCandidates(CandidatesForGateways(peers: [created.gatewayId], candidates: [clientCandidate])))
        guard case .iceCandidates(let atGateway) = try await gateway.nextPush(GatewayIngress.self) else { throw PortalProcessError("no candidates") }
        #expect(atGateway.candidates == [clientCandidate] && atGateway.peer == authorize.client.id)

        let gatewayCandidate = try IceCandidateString.parse("candidate:2 1 udp 1694498815 198.51.100.7 3478 typ srflx raddr 0.0.0.0 rport 0")
        gateway.send(GatewayEgress.broadcastInvalidatedIceCandidates(CandidatesForClients(peers: [authorize.client.id],
                                                                                          candidates: [gatewayCandidate])))
        guard case .invalidateIceCandidates(let atClient) = try await client.nextPush(ClientIngress.self) else {
            throw PortalProcessError("no invalidation")
        }
        #expect(atClient.candidates == [gatewayCandidate] && atClient.peer == created.gatewayId)

        // A second flow_authorized with the same ref is refused; an unknown event gets unknown_message, and so does
        // the other generation's name for create_flow.
        gateway.send(GatewayEgress.flowAuthorized(ref: authorize.ref))
        #expect(try await gateway.nextErrorReason() == "invalid_ref")
        client.channel.send(event: "prepare_connection", payload: "{}")
        #expect(try await client.nextErrorReason() == "unknown_message")
        client.channel.send(event: clientApi == .v2 ? "create_flow" : "request_authorization", payload: #"{"resource_id":"\#(intranet.id)","connected_gateway_ids":[]}"#)
        #expect(try await client.nextErrorReason() == "unknown_message")
        if clientApi == .v2 {
            client.send(ClientEgress.noRelays)
            guard case .relaysPresence(let presence) = try await client.nextPush(ClientIngress.self) else {
                throw PortalProcessError("no_relays was not answered with relays_presence")
            }
            #expect(presence.connected.count == 2 && presence.disconnectedIds.isEmpty)
        }

        client.channel.close()
        gateway.channel.close()
        try await clientRun.value
        try await gatewayRun.value
    }

    @Test func upgradeRefusalsCarryThePortalsStatus() async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }
        let wrongToken = Peer(port: portal.port, mode: .client, token: "not-a-token", externalId: "x")
        #expect(await wrongToken.fatalError() == .invalidToken)
        let gatewayTokenOnClientPath = Peer(port: portal.port, mode: .client, token: "gw-token", externalId: "x")
        #expect(await gatewayTokenOnClientPath.fatalError() == .invalidToken)
        let status = try Shell.run(
            "python3", "-c", """
                import asyncio, sys
                from websockets.asyncio.client import connect
                from websockets.exceptions import InvalidStatus
                async def main():
                    try:
                        async with connect(sys.argv[1], user_agent_header="python-websockets"): print("upgraded")
                    except InvalidStatus as e: print(e.response.status_code, e.response.headers["Content-Type"], e.response.body.decode())
                asyncio.run(main())
                """,
            "ws://127.0.0.1:\(portal.port)/client/websocket?token=alice-token&external_id=x&public_key=\(Peer.randomKeyForUrl())"
        ).output
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines)
            == #"400 application/problem+json; charset=utf-8 {"type":"about:blank","title":"Bad Request","status":400,"#
            + #""detail":"last_seen_user_agent is invalid","code":"invalid_connect_params"}"#,
            "a User-Agent without a component version: RFC 9457 problem details")
    }

    @Test func sighupReloadPushesTheDifferences() async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }
        let gateway = Peer(port: portal.port, mode: .gateway, token: "gw-token", externalId: "gateway-1")
        let gatewayRun = gateway.start()
        _ = try await gateway.nextPush(GatewayIngress.self)
        let client = Peer(port: portal.port, mode: .client, token: "alice-token", externalId: "laptop-1")
        let clientRun = client.start()
        guard case .initialize(let hello) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no init") }
        let intranet = try #require(hello.resources.first { if case .cidr = $0 { true } else { false } }).id
        let wiki = try #require(hello.resources.first { if case .dns = $0 { true } else { false } }).id
        client.send(ClientEgress.createFlow(CreateFlow(resourceId: intranet, connectedGatewayIds: [])))
        guard case .authorizeFlow(let authorize) = try await gateway.nextPush(GatewayIngress.self) else { throw PortalProcessError("no flow") }
        gateway.send(GatewayEgress.flowAuthorized(ref: authorize.ref))
        _ = try await client.nextPush(ClientIngress.self)

        // intranet's filters change, the wiki policy goes, the relay's secret changes.
        let reloaded = Self.config
            .replacingOccurrences(of: "filters: [tcp/80]", with: "filters: [tcp/80, udp/53]")
            .replacingOccurrences(of: "  - actor: alice\n    resource: wiki\n", with: "")
            .replacingOccurrences(of: "stamp_secret: stamp", with: "stamp_secret: rotated")
        try portal.writeConfig(reloaded)
        portal.signal(SIGHUP)
        _ = try await portal.waitForLine(containing: "configuration reloaded")

        #expect(try await client.nextPush(ClientIngress.self) == .resourceDeleted(wiki))
        guard case .relaysPresence(let clientRelays) = try await client.nextPush(ClientIngress.self) else {
            throw PortalProcessError("no relays_presence for the client")
        }
        #expect(clientRelays.disconnectedIds.count == 1 && clientRelays.connected.count == 2)
        guard case .resourceUpdated(let updated) = try await gateway.nextPush(GatewayIngress.self) else {
            throw PortalProcessError("no resource_updated")
        }
        #expect(updated.id == intranet && updated.filters == [.tcp(80...80), .udp(53...53)])
        guard case .relaysPresence = try await gateway.nextPush(GatewayIngress.self) else { throw PortalProcessError("no relays_presence") }

        // Taking alice's access to intranet away rejects the authorized flow on the gateway.
        try portal.writeConfig(reloaded.replacingOccurrences(of: "  - actor: alice\n    resource: intranet\n", with: ""))
        portal.signal(SIGHUP)
        _ = try await portal.waitForLine(containing: "configuration reloaded")
        #expect(try await gateway.nextPush(GatewayIngress.self) == .rejectAccess(AccessKey(clientId: authorize.client.id, resourceId: intranet)))
        #expect(try await client.nextPush(ClientIngress.self) == .resourceDeleted(intranet))

        client.channel.close()
        gateway.channel.close()
        try await clientRun.value
        try await gatewayRun.value
    }

    @Test func aRestartKeepsTheTunnelAddressesAndSigtermExitsZero() async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        let first = try await Self.interface(port: portal.port)
        #expect(portal.stop() == 0, "SIGTERM is a graceful stop")
        try await portal.start()
        defer { _ = portal.stop() }
        let second = try await Self.interface(port: portal.port)
        #expect(first == second)
    }

    static func interface(port: Int) async throws -> ClientInterface {
        let client = Peer(port: port, mode: .client, token: "alice-token", externalId: "stable-laptop")
        let run = client.start()
        guard case .initialize(let hello) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no init") }
        client.channel.close()
        try await run.value
        return hello.interface
    }

    @Test func anIndependentPhoenixClientJoinsAndReceivesInit() async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }
        let script = """
            import asyncio, json, sys
            from phoenix_channels_python_client import PHXChannelsClient, PhoenixChannelsProtocolVersion
            async def main():
                received = asyncio.get_running_loop().create_future()
                async def on_message(message):
                    if message.event == "init" and not received.done():
                        received.set_result(message.payload)
                client = PHXChannelsClient(sys.argv[1], "unused", protocol_version=PhoenixChannelsProtocolVersion.V1,
                                           additional_headers={"User-Agent": "Ubuntu/22.4.0 headless-client/1.5.4 (x86_64; 6.8.0)"})
                async with client:
                    await client.subscribe_to_topic("client", on_message)
                    payload = await asyncio.wait_for(received, 10)
                    print(json.dumps(payload))
            asyncio.run(main())
            """
        let url = "ws://127.0.0.1:\(portal.port)/client/websocket?token=alice-token&external_id=python-1&name=py&public_key=\(Peer.randomKeyForUrl())"
        let output = try Shell.run("python3", "-c", script, url).output
        let line = try #require(output.split(separator: "\n").last.map(String.init))
        let hello = try ClientIngress(event: "init", payload: line)
        guard case .initialize(let message) = hello else { throw PortalProcessError("not init") }
        #expect(message.resources.count == 2 && message.relays.count == 2)
    }
}

/// The tunnel address ranges of spec §6.
enum DeviceStoreRanges {
    static func contains(_ v4: IPv4Address, _ v6: IPv6Address) -> Bool {
        IpNetwork("100.64.0.0/11")!.contains(.v4(v4)) && IpNetwork("fd00:2021:1111::/107")!.contains(.v6(v6))
    }
}

enum Credentials64 {
    /// base64-nopad(SHA-256(public key text)), computed by Python.
    static func salt(_ publicKey: String) -> String {
        (try? Shell.run("python3", "-c", "import base64,hashlib,sys; print(base64.b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip('='))",
                        publicKey).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
    }
}
