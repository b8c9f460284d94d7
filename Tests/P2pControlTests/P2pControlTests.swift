import Dns
import Foundation
import IpPacket
import P2pControl
import Testing

/// Spec `tunnel-dns.md` §3: the JSON bodies byte for byte, validation on receipt, forward compatibility.
@Suite struct P2pControlTests {
    let resource = ResourceId("00000000-0000-0000-0000-000000000065")!
    let domain = DnsName("app.example.com")!

    @Test func bodiesMatchTheSpecExamples() throws {
        let ips = ["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4", "fd00:2021:1111:8000::",
                   "fd00:2021:1111:8000::1", "fd00:2021:1111:8000::2", "fd00:2021:1111:8000::3"].map { IpAddress($0)! }
        let assigned = P2pControlEvent.assignedIps(AssignedIps(resource: resource, domain: domain, proxyIps: ips))
        #expect(try assigned.jsonBody() == #"{"resource":"00000000-0000-0000-0000-000000000065","domain":"app.example.com","proxy_ips":["100.96.0.1","100.96.0.2","100.96.0.3","100.96.0.4","fd00:2021:1111:8000::","fd00:2021:1111:8000::1","fd00:2021:1111:8000::2","fd00:2021:1111:8000::3"]}"#)
        let status = P2pControlEvent.domainStatus(DomainStatusUpdate(resource: resource, domain: domain, status: .active))
        #expect(try status.jsonBody() == #"{"resource":"00000000-0000-0000-0000-000000000065","domain":"app.example.com","status":"Active"}"#)
        for event in [assigned, status, .goodbye] {
            let packet = try event.packet()
            #expect(packet.p2pControl?.kind == event.kind)
            #expect(try P2pControlEvent(packet) == event)
        }
    }

    /// The largest AssignedIps body: a 253-byte domain and 8 short IPs is 402 bytes, well within 1280.
    @Test func largestBodyIs402Bytes() throws {
        let longest = DnsName(([String](repeating: String(repeating: "a", count: 63), count: 3) + [String(repeating: "b", count: 61)]).joined(separator: "."))!
        #expect(longest.description.count == 253)
        let event = P2pControlEvent.assignedIps(AssignedIps(resource: resource, domain: longest, proxyIps: Array(repeating: IpAddress("::ffff")!, count: 8)))
        #expect(try event.jsonBody().utf8.count == 402)
        #expect(try event.packet().count == 48 + 402)
    }

    @Test func receivedFieldsAreValidatedAndExtrasIgnored() throws {
        func decode(kind: UInt8, _ body: String) throws(P2pControlError) -> P2pControlEvent? {
            let packet = try! IpPacket.p2pControl(kind: kind, body: Array(body.utf8))
            return try P2pControlEvent(packet)
        }
        let future = try decode(kind: 1, #"{"resource":"00000000-0000-0000-0000-000000000065","domain":"app.example.com","status":"Degraded","new_field":[1,2]}"#)
        #expect(future == .domainStatus(DomainStatusUpdate(resource: resource, domain: domain, status: .inactive)), "unknown status → Inactive")
        let upper = try decode(kind: 0, #"{"resource":"00000000-0000-0000-0000-0000000000AB","domain":"app.example.com","proxy_ips":["100.96.0.1"]}"#)
        guard case .assignedIps(let assigned)? = upper else { Issue.record("decodes"); return }
        #expect(assigned.resource.description == "00000000-0000-0000-0000-0000000000ab")
        #expect(assigned.proxyIps.count == 1, "the decoder does not check the count")
        #expect(try decode(kind: 7, "{}") == nil, "unknown kinds are ignored")
        #expect(throws: P2pControlError.invalidField("resource", "not-a-uuid")) {
            try decode(kind: 1, #"{"resource":"not-a-uuid","domain":"app.example.com","status":"Active"}"#)
        }
        #expect(throws: P2pControlError.invalidField("proxy_ips", "300.1.1.1")) {
            try decode(kind: 0, #"{"resource":"00000000-0000-0000-0000-000000000065","domain":"a.com","proxy_ips":["300.1.1.1"]}"#)
        }
        #expect(throws: P2pControlError.invalidField("domain", "a..b")) {
            try decode(kind: 1, #"{"resource":"00000000-0000-0000-0000-000000000065","domain":"a..b","status":"Active"}"#)
        }
        #expect(throws: P2pControlError.self) { try decode(kind: 0, "not json") }
        #expect(throws: P2pControlError.self) { try decode(kind: 1, #"{"resource":"00000000-0000-0000-0000-000000000065"}"#) }
    }

    @Test func encoderRefusesOtherThanFourOrEightIpsAndEscapesTheDomain() throws {
        let three = P2pControlEvent.assignedIps(AssignedIps(resource: resource, domain: domain, proxyIps: Array(repeating: IpAddress("100.96.0.1")!, count: 3)))
        #expect(throws: P2pControlError.wrongProxyIpCount(3)) { try three.jsonBody() }
        let hostile = DnsName("we\"ird\\.example.com")!
        let body = try P2pControlEvent.domainStatus(DomainStatusUpdate(resource: resource, domain: hostile, status: .active)).jsonBody()
        // Foundation's JSON parser, independent of our hand-written encoder, reads the escaped domain back.
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String]
        #expect(object?["domain"] == "we\"ird\\.example.com")
    }

    @Test func onlyRealControlPacketsAreDecoded() throws {
        let udp = try IpPacket.udp(source: IpAddress("100.64.0.1")!, destination: IpAddress("100.64.0.2")!, sourcePort: 1, destinationPort: 2, payload: [1])
        #expect(try P2pControlEvent(udp) == nil)
    }
}
