import Foundation
import Noise
import PhoenixChannel
import PortalMessages
import SansIO
import TestSupport
import Testing
import Tunnel

/// The portal's version gates (spec `portal-phoenix.md` §8), on the `firezone-portal` binary: for each version a
/// client announces, what the portal sends it, and what our client's state then has. This is what made a client
/// announcing 0.1.0 see `?.wiki.example` and no Internet resource.
@Suite(.serialized, .offPool) struct PortalVersionGateTests {
    static let config = """
        account_slug: gates
        sites:
          - name: hq
            gateway_tokens: [gw-token]
        actors:
          - name: alice
            tokens: [alice-token]
        resources:
          - name: intranet
            type: cidr
            address: 10.20.0.0/16
            sites: [hq]
          - name: wiki
            type: dns
            address: "*.wiki.example"
            sites: [hq]
          - name: deep
            type: dns
            address: "a.*.example"
            sites: [hq]
          - name: internet
            type: internet
            sites: [hq]
        policies:
          - actor: everyone
            resource: intranet
          - actor: everyone
            resource: wiki
          - actor: everyone
            resource: deep
          - actor: everyone
            resource: internet
        """

    struct Case: Sendable, CustomTestStringConvertible {
        var version: String
        var api: PortalApi
        /// The DNS addresses the client ends up with, sorted.
        var dns: [String]
        var internet: Bool
        var sitesKey: String
        var testDescription: String { "headless-client/\(version) on \(api)" }
    }

    @Test(arguments: [
        Case(version: "0.1.0", api: .v1, dns: ["?.wiki.example"], internet: false, sitesKey: "gateway_groups"),
        Case(version: "1.1.9", api: .v1, dns: ["?.wiki.example"], internet: false, sitesKey: "gateway_groups"),
        Case(version: "1.2.0", api: .v1, dns: ["*.wiki.example", "a.*.example"], internet: false, sitesKey: "gateway_groups"),
        Case(version: "1.5.5", api: .v2, dns: ["*.wiki.example", "a.*.example"], internet: true, sitesKey: "gateway_groups"),
        Case(version: "1.5.11", api: .v1, dns: ["*.wiki.example", "a.*.example"], internet: true, sitesKey: "sites"),
        Case(version: "1.5.11", api: .v2, dns: ["*.wiki.example", "a.*.example"], internet: true, sitesKey: "sites"),
    ])
    func whatEachVersionIsSentAndThenHas(_ gate: Case) async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }
        let client = Peer(port: portal.port, mode: .client, token: "alice-token", externalId: "laptop", api: gate.api, version: gate.version)
        let run = client.start()
        let raw = try await client.events.next { event -> PhoenixRawPayload? in
            if case .message(let push) = event, push.event == "init" { push } else { nil }
        }
        #expect(raw.json.contains("\"\(gate.sitesKey)\":["), "sites keyed as \(gate.sitesKey)")

        let message = try ClientIngress(event: raw.event, payload: raw.json)
        let state = ClientState(privateKey: SecretKey.generatePrivateKey(), now: Instant(nanoseconds: 0), unixTimeNanoseconds: 0)
        state.handle(message, now: Instant(nanoseconds: 0))
        var resources: [ClientResource] = []
        while let event = state.pollEvent() {
            if case .resourcesChanged(let views) = event { resources = views.map(\.resource) }
        }
        let dns = resources.compactMap { if case .dns(let dns) = $0 { dns.address } else { nil } }.sorted()
        #expect(dns == gate.dns)
        #expect(resources.contains { if case .internet = $0 { true } else { false } } == gate.internet)
        #expect(resources.contains { if case .cidr = $0 { true } else { false } })
        client.channel.close()
        try await run.value
    }

    /// A site served only by a gateway outside the client's window: `version_mismatch`, as today's portal says,
    /// where a 0.1.0 gateway left every Firezone client with nothing.
    @Test(arguments: [("0.1.0", FlowCreationFailed.Reason.versionMismatch), ("1.6.0", nil)])
    func aGatewayServesOnlyClientsInsideItsWindow(gatewayVersion: String, failure: FlowCreationFailed.Reason?) async throws {
        let portal = try PortalProcess(config: Self.config)
        defer { portal.removeFiles() }
        try await portal.start()
        defer { _ = portal.stop() }
        let gateway = Peer(port: portal.port, mode: .gateway, token: "gw-token", externalId: "gw", version: gatewayVersion)
        let gatewayRun = gateway.start()
        _ = try await gateway.nextPush(GatewayIngress.self)
        let client = Peer(port: portal.port, mode: .client, token: "alice-token", externalId: "laptop", version: "1.5.5")
        let clientRun = client.start()
        guard case .initialize(let hello) = try await client.nextPush(ClientIngress.self) else { throw PortalProcessError("no init") }
        let intranet = try #require(hello.resources.first { if case .cidr = $0 { true } else { false } })
        client.send(ClientEgress.createFlow(CreateFlow(resourceId: intranet.id, connectedGatewayIds: [])))
        if let failure {
            guard case .flowCreationFailed(let failed) = try await client.nextPush(ClientIngress.self) else {
                throw PortalProcessError("no authorization_creation_failed")
            }
            #expect(failed.reason == failure)
        } else {
            guard case .authorizeFlow = try await gateway.nextPush(GatewayIngress.self) else { throw PortalProcessError("no create_authorization") }
        }
        client.channel.close()
        gateway.channel.close()
        try await clientRun.value
        try await gatewayRun.value
    }
}
