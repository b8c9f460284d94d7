import PortalMessages
import SansIO
import Testing

/// Malformed input: what is skipped on its own (resources in a client's `init`, ICE candidates), what refuses
/// the whole message, and that every refusal names the event and the JSON path.
@Suite struct StrictDecodingTests {
    static let interface = #"{"ipv4":"100.64.0.1","ipv6":"fd00:2021:1111::1"}"#
    static let site = #"[{"id":"bf56f32d-7b2c-4f5d-a784-788977d014a4","name":"test"}]"#

    @Test func oneMalformedResourceIsSkippedAndTheRestUsed() throws {
        let payload = """
            {"interface":\(Self.interface),"resources":[
             {"id":"73037362-715d-4a83-a749-f18eadd970e6","type":"cidr","name":"n","address":"10.0.0.1/8","gateway_groups":\(Self.site)},
             {"id":"1106047c-cd5d-4151-b679-96b93da7383b","type":"future_kind","gateway_groups":\(Self.site)},
             {"id":"03000143-e25e-45c7-aafb-144990e57dcd","type":"dns","name":"n","address":"*.corp","sites":\(Self.site)}]}
            """
        var skipped: [SkippedEntry] = []
        let message = try ClientIngress(event: "init", payload: payload, skipped: &skipped)
        guard case .initialize(let initMessage) = message else {
            Issue.record("not init")
            return
        }
        #expect(initMessage.resources.map(\.id.description) == ["03000143-e25e-45c7-aafb-144990e57dcd"])
        guard case .dns(let dns) = try #require(initMessage.resources.first) else {
            Issue.record("not a DNS resource")
            return
        }
        #expect(dns.ipStack == .dual && dns.sites.count == 1, "ip_stack defaults to dual; `sites` accepted for gateway_groups")
        #expect(skipped.map(\.index) == [0], "a malformed resource is skipped as malformed")
        #expect(skipped[0].description.contains("resources[0].address: '10.0.0.1/8' is not a canonical CIDR network"))
        #expect(initMessage.unsupportedResources.map(\.description) == ["future_kind 1106047c-cd5d-4151-b679-96b93da7383b"],
                "a type this client does not know is left out and named, as Firezone's `Unknown` variant (§8)")
    }

    @Test func oneMalformedCandidateIsSkipped() throws {
        let payload = #"{"gateway_id":"b3d34a15-55ab-40df-994b-a838e75d65d7","candidates":["candidate:1 1 udp 50331391 35.244.108.190 53909 typ relay","candidate:2 1 tcp 1 1.2.3.4 5 typ host",7]}"#
        var skipped: [SkippedEntry] = []
        guard case .iceCandidates(let candidates) = try ClientIngress(event: "ice_candidates", payload: payload, skipped: &skipped) else {
            Issue.record("not ice_candidates")
            return
        }
        #expect(candidates.candidates.map(\.address.description) == ["35.244.108.190:53909"])
        #expect(skipped.map(\.index) == [1, 2])
    }

    @Test(arguments: [
        // (event, payload, what the error must say)
        ("relays_presence", #"{"disconnected_ids":[],"connected":[{"id":"0a133356-7a9e-4b9a-b413-0d95a5720fd8","type":"quic","addr":"1.2.3.4:3478"}]}"#,
         "connected[0].type: unknown relay type 'quic'"),
        ("relays_presence", #"{"connected":[]}"#, "missing 'disconnected_ids'"),
        ("flow_created", flowCreated(key: "uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY"), "gateway_public_key: not a 32-byte base64 key"),
        ("flow_created", flowCreated(key: "uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWZ="), "gateway_public_key: not a 32-byte base64 key"),
        ("resource_deleted", #""not-a-uuid""#, "'not-a-uuid' is not a UUID"),
        ("config_changed", #"{"interface":{"ipv4":"100.64.0.01","ipv6":"fd00::1"}}"#, "interface.ipv4: '100.64.0.01' is not an IPv4 address"),
        ("resource_created_or_updated", #"{"id":"03000143-e25e-45c7-aafb-144990e57dcd","type":"dns","name":"n","address":"a"}"#,
         "missing 'sites'"),
        ("flow_creation_failed", #"{"resource_id":"f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3","reason":7}"#, "reason: expected a string"),
        ("init", "[]", "expected an object"),
        ("init", "not json", "not valid JSON"),
    ])
    func clientRefusalsNameThePath(_ event: String, _ payload: String, _ expected: String) {
        #expect {
            try ClientIngress(event: event, payload: payload)
        } throws: { error in
            guard case .malformed(let failedEvent, let reason) = error as? PortalMessageError else { return false }
            return failedEvent == event && reason.contains(expected)
        }
    }

    @Test(arguments: [
        ("init", #"{"interface":{"ipv4":"100.64.0.1","ipv6":"fd00::1"}}"#, "missing 'config'"),
        ("resource_updated", #"{"id":"57f9ebbb-21d5-4f9f-bf86-b25122fc7a43","type":"ip","address":"1.2.3.4","name":"n","filters":[]}"#,
         "unknown resource type 'ip'"),
        ("resource_updated", #"{"id":"57f9ebbb-21d5-4f9f-bf86-b25122fc7a43","type":"cidr","address":"10.0.0.0/8","name":"n","filters":[{"protocol":"tcp","port_range_start":90,"port_range_end":80}]}"#,
         "filters[0].port_range_start: port range 90-80 starts above its end"),
        ("resource_updated", #"{"id":"57f9ebbb-21d5-4f9f-bf86-b25122fc7a43","type":"cidr","address":"10.0.0.0/8","name":"n","filters":[{"protocol":"sctp"}]}"#,
         "unknown filter protocol 'sctp'"),
        ("reject_access", #"{"client_id":"2b1524e6-239e-4570-bc73-70a188e12101"}"#, "missing 'resource_id'"),
    ])
    func gatewayRefusalsNameThePath(_ event: String, _ payload: String, _ expected: String) {
        #expect {
            try GatewayIngress(event: event, payload: payload)
        } throws: { error in
            guard case .malformed(_, let reason) = error as? PortalMessageError else { return false }
            return reason.contains(expected)
        }
    }

    @Test func unknownEventsAreTheirOwnError() {
        #expect(throws: PortalMessageError.unknownEvent("prepare_connection")) {
            try ClientEgress(event: "prepare_connection", payload: "{}")
        }
        #expect(throws: PortalMessageError.unknownEvent("request_connection")) {
            try GatewayIngress(event: "request_connection", payload: "{}")
        }
    }

    @Test func filtersDefaultToAllPortsAndEncodeAsThePortalRendersThem() throws {
        let payload = #"{"id":"57f9ebbb-21d5-4f9f-bf86-b25122fc7a43","type":"dns","address":"?.httpbin","name":"n","filters":[{"protocol":"udp","port_range_start":53},{"protocol":"tcp"},{"protocol":"tcp","port_range_start":80,"port_range_end":80}]}"#
        let message = try GatewayIngress(event: "resource_updated", payload: payload)
        guard case .resourceUpdated(let resource) = message else {
            Issue.record("not resource_updated")
            return
        }
        #expect(resource.filters == [.udp(53...65535), .tcp(0...65535), .tcp(80...80)])
        #expect(message.payload.contains(#"{"protocol":"tcp"}"#))
        #expect(message.payload.contains(#"{"port_range_end":65535,"port_range_start":53,"protocol":"udp"}"#))
    }

    @Test func secretsStayOutOfDescriptions() throws {
        let key = try #require(WireGuardKey(base64: "anX2T9RH9mimT5Xd5+HqNGV0bfCodWDHQch1DLiFNls="))
        let psk = PresharedKey(key)
        #expect(!"\(psk)".contains("anX2") && !String(reflecting: psk).contains("anX2") && !"\([psk])".contains("anX2"))
        let relay = TurnRelay(id: RelayId.random(), address: try #require(SocketAddress("1.2.3.4:3478")),
                              username: "1:salt", password: "hunter2", expiresAt: 1)
        #expect(!"\(relay)".contains("hunter2"))
    }

    @Test func legacyDnsUpstreamsAreUsedOnlyWithoutDo53() throws {
        let legacy = #"{"interface":{"ipv4":"100.64.0.1","ipv6":"fd00::1","upstream_dns":[{"protocol":"ip_port","address":"[2001:db8::1]:53"}]}}"#
        guard case .configChanged(let interface) = try ClientIngress(event: "config_changed", payload: legacy) else {
            Issue.record("not config_changed")
            return
        }
        #expect(interface.effectiveDo53 == [try #require(IpAddress("2001:db8::1"))])
        #expect(interface.searchDomain == nil && interface.upstreamDoh.isEmpty)
    }
}

private func flowCreated(key: String) -> String {
    #"{"gateway_group_id":"ef42a07f-87d0-40da-baa7-e881e619ea1c","gateway_id":"d263d490-a0bb-452a-8990-01d27a1f1144","resource_id":"733e8d14-c18d-4931-af30-3639fa09c0c0","preshared_key":"anX2T9RH9mimT5Xd5+HqNGV0bfCodWDHQch1DLiFNls=","client_ice_credentials":{"username":"resc","password":"rqi3ibvfikfaxj3wgp7muh"},"gateway_ice_credentials":{"username":"jbi4","password":"a6oeevhlutevykcifd5r2a"},"gateway_public_key":""#
        + key + #"","gateway_ipv4":"100.72.145.83","gateway_ipv6":"fd00:2021:1111::5:bcfd"}"#
}
