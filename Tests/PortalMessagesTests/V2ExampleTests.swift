import Foundation
import Ice
import PhoenixChannel
import PortalMessages
import Testing

/// The portal protocol of today (spec `portal-phoenix.md` §8): every JSON example of Firezone's newest message
/// tests (copied to `Fixtures/portal-messages/v2-examples.jsonl` with the test each came from) is decoded,
/// refused or written exactly as Firezone's client and gateway do.
@Suite struct V2ExampleTests {
    struct Example: CustomTestStringConvertible, Sendable {
        let source: String
        let kind: String
        let expect: String
        let json: String
        var testDescription: String { "\(source) (\(expect))" }

        var frame: PhoenixFrame {
            get throws { try PhoenixFrame(decoding: json.replacingOccurrences(of: #""payload""#, with: #""topic":"t","payload""#)) }
        }
    }

    static let examples: [Example] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../Fixtures/portal-messages/v2-examples.jsonl")
        let lines = (try? String(contentsOf: url, encoding: .utf8))?.split(separator: "\n") ?? []
        return lines.map { line in
            let object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let json = try! JSONSerialization.data(withJSONObject: object["json"]!, options: [.sortedKeys])
            return Example(source: object["source"] as! String, kind: object["kind"] as! String, expect: object["expect"] as! String,
                           json: String(decoding: json, as: UTF8.self))
        }
    }()

    @Test func theFixtureHoldsEveryExample() {
        #expect(Self.examples.count == 41)
    }

    @Test(arguments: examples.filter { $0.kind.hasSuffix("ingress") })
    func pushesDecodeOrAreRefusedAsFirezonesDo(_ example: Example) throws {
        let frame = try example.frame
        let decoded: Result<Void, PortalMessageError>
        do {
            if example.kind == "client_ingress" {
                _ = try ClientIngress(event: frame.event, payload: frame.payload)
            } else {
                _ = try GatewayIngress(event: frame.event, payload: frame.payload)
            }
            decoded = .success(())
        } catch {
            decoded = .failure(error)
        }
        switch (example.expect, decoded) {
        case ("decode", .success), ("refuse", .failure(.malformed)): break
        default: Issue.record("\(example.source): expected \(example.expect), got \(decoded)")
        }
    }

    @Test(arguments: examples.filter { $0.kind.hasSuffix("egress") })
    func oursSendWhatFirezonesSend(_ example: Example) throws {
        let frame = try example.frame
        if example.kind == "client_egress" {
            let message = try ClientEgress(event: frame.event, payload: frame.payload)
            #expect(ClientEgress.isSent(as: frame.event, on: .v2))
            guard example.expect == "encode" else { return }
            #expect(try message.frames(for: .v2).map(canonical) == [canonical(PortalFrame(event: frame.event, payload: frame.payload))])
        } else {
            let message = try GatewayEgress(event: frame.event, payload: frame.payload)
            #expect(GatewayEgress.isSent(as: frame.event, on: .v2))
            #expect(try message.frames(for: .v2).map(canonical) == [canonical(PortalFrame(event: frame.event, payload: frame.payload))])
        }
    }

    @Test(arguments: examples.filter { $0.kind.hasSuffix("resources") || $0.kind == "traffic_filter" || $0.kind == "client_init_payload" })
    func objectsDecode(_ example: Example) throws {
        let data = Data(example.json.utf8)
        switch example.kind {
        case "gateway_resources": _ = try JSONDecoder().decode([GatewayResource].self, from: data)
        case "traffic_filter": _ = try JSONDecoder().decode(TrafficFilter.self, from: data)
        case "client_init_payload": _ = try ClientIngress(event: "init", payload: example.json)
        default:
            let initPayload = #"{"interface":{"ipv4":"100.64.0.1","ipv6":"fd00:2021:1111::1"},"resources":\#(example.json)}"#
            var skipped: [SkippedEntry] = []
            guard case .initialize(let message) = try ClientIngress(event: "init", payload: initPayload, skipped: &skipped) else {
                Issue.record("not init")
                return
            }
            #expect(skipped.isEmpty, "\(skipped)")
            #expect(message.resources.count + message.unsupportedResources.count == (try JSONSerialization.jsonObject(with: data) as! [Any]).count,
                    "every entry is a resource or an unsupported one; none is lost")
        }
    }

    @Test func whatTheNewFieldsCarry() throws {
        let created = try #require(Self.examples.first { $0.source.hasSuffix("authorization_created_picks_up_use_iceless") })
        guard case .flowCreated(let flow) = try ClientIngress(event: "authorization_created", payload: try created.frame.payload) else {
            Issue.record("not authorization_created")
            return
        }
        #expect(flow.useIceless && flow.flowLogsIngestToken?.raw.hasPrefix("eyJhbGciOiJIUzI1NiIs") == true)
        #expect(!"\(flow)".contains("eyJ"), "the token is a credential: never printed")

        let pools = try #require(Self.examples.first { $0.source.hasSuffix("can_deserialize_static_device_pool_resource") })
        let initPayload = #"{"interface":{"ipv4":"100.64.0.1","ipv6":"fd00:2021:1111::1"},"resources":\#(pools.json)}"#
        guard case .initialize(let message) = try ClientIngress(event: "init", payload: initPayload) else { return }
        #expect(message.unsupportedResources == [UnsupportedResource(type: "static_device_pool", id: ResourceId("a1b2c3d4-e5f6-7890-abcd-ef1234567890"))])
        #expect(message.resources.isEmpty)

        let withFlowLogs = try #require(Self.examples.first { $0.source.hasSuffix("can_deserialize_init_with_flow_logs_config") })
        guard case .initialize(let logged) = try ClientIngress(event: "init", payload: withFlowLogs.json) else { return }
        #expect(logged.flowLogs == FlowLogsConfig(apiUrl: "https://flow-api.firezone.dev", uploadIntervalSecs: 60, uploadBatchSize: 1000))

        let failed = try #require(Self.examples.first { $0.source.hasSuffix("can_deserialize_unknown_authorization_creation_failed_err") })
        guard case .flowCreationFailed(let failure) = try ClientIngress(event: "authorization_creation_failed", payload: try failed.frame.payload)
        else { return }
        #expect(failure.reason == .unknown("foobar"))

        let device = try #require(Self.examples.first { $0.source.hasSuffix("client_device_access_authorized_carries_ingest_token") })
        #expect(try ClientIngress(event: "client_device_access_authorized", payload: try device.frame.payload)
            == .unsupported(UnsupportedPush(event: "client_device_access_authorized")), "client-to-client access: ignored")
    }

    @Test func aV2BroadcastIsOneMessagePerGatewayAndV1OnlyMessagesAreNothingThere() throws {
        let candidate = try IceCandidateString.parse("candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host")
        let gateways = [GatewayId.random(), GatewayId.random()]
        let broadcast = ClientEgress.broadcastIceCandidates(CandidatesForGateways(peers: gateways, candidates: [candidate]))
        #expect(broadcast.frames(for: .v1).map(\.event) == ["broadcast_ice_candidates"])
        let perGateway = broadcast.frames(for: .v2)
        #expect(perGateway.map(\.event) == ["new_gateway_ice_candidates", "new_gateway_ice_candidates"])
        #expect(try perGateway.map { try ClientEgress(event: $0.event, payload: $0.payload) }
            == gateways.map { .broadcastIceCandidates(CandidatesForGateways(peers: [$0], candidates: [candidate])) })
        #expect(ClientEgress.noRelays.frames(for: .v1).isEmpty, "v1 has no no_relays: the app reconnects instead")
        #expect(GatewayEgress.flowAuthorized(ref: "r").frames(for: .v1).map(\.event) == ["flow_authorized"])
        #expect(!ClientEgress.isSent(as: "create_flow", on: .v2) && !ClientEgress.isSent(as: "request_authorization", on: .v1))
        #expect(!GatewayEgress.isSent(as: "flow_authorized", on: .v2) && !GatewayEgress.isSent(as: "authorization_created", on: .v1))
    }

    private func canonical(_ frame: PortalFrame) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(frame.payload.utf8))
        return frame.event + " " + String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}
