import Foundation
import PhoenixChannel
import TestSupport
import Testing

@Suite(.offPool) struct LoginUrlTests {
    static let device = LoginUrl.Device(id: "2b6f0cc904d137be2e1730235f5664094b831186", name: "Alices-MacBook-Pro",
                                        serial: "C02XK0AAJGH5", uuid: "6F9619FF-8B86-D011-B42D-00C04FC964FF")
    static let publicKey = "uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY="

    @Test func specExampleForAClientWithTheTokenInTheHeaderOnly() throws {
        let url = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .client, token: "<TOKEN>\n", device: Self.device)
        #expect(url.requestTarget(publicKey: Self.publicKey) ==
            "/client/v2/websocket?external_id=2b6f0cc904d137be2e1730235f5664094b831186&name=Alices-MacBook-Pro"
            + "&device_serial=C02XK0AAJGH5&device_uuid=6F9619FF-8B86-D011-B42D-00C04FC964FF&public_key=uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY%3D")
        #expect(url.authorization == "Bearer <TOKEN>", "whitespace around the token is dropped (#12992)")
        #expect(url.baseUrl == "wss://api.firezone.dev:443/")
    }

    @Test func apiVersionsSelectThePath() throws {
        let v1 = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .gateway, token: "t", device: Self.device, api: .v1)
        let v2 = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .gateway, token: "t", device: Self.device)
        let relay = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .relay, token: "t", device: Self.device, api: .v2)
        #expect(v1.path == "/gateway/websocket" && v1.api == .v1)
        #expect(v2.path == "/gateway/v2/websocket" && v2.api == .v2, "v2 is the default")
        #expect(relay.path == "/relay/websocket" && relay.api == .v1, "the relay has no v2 socket")
    }

    @Test(arguments: [
        ("wss://api.firezone.dev", "wss", 443, "/client/v2/websocket"),
        ("https://example.com/api/", "wss", 443, "/api/client/v2/websocket"),
        ("http://localhost:8081", "ws", 8081, "/client/v2/websocket"),
        ("ws://localhost", "ws", 443, "/client/v2/websocket"),
        ("ws://localhost:80", "ws", 443, "/client/v2/websocket"),
        ("https://example.com:443/a/b?x=1", "wss", 443, "/a/b/client/v2/websocket"),
        ("wss://example.com:8443", "wss", 8443, "/client/v2/websocket"),
    ])
    func schemesPortsAndPaths(apiUrl: String, scheme: String, port: Int, path: String) throws {
        let url = try LoginUrl(apiUrl: apiUrl, mode: .client, token: "t", device: Self.device)
        #expect(url.scheme == scheme && url.port == port && url.path == path, "\(apiUrl)")
        #expect(!url.requestTarget(publicKey: "k").contains("x=1"), "the API URL's own query is dropped")
    }

    @Test func badUrlsAreTypedErrors() {
        #expect(throws: LoginUrlError.invalidScheme("ftp")) { try LoginUrl(apiUrl: "ftp://example.com", mode: .gateway, token: "t", device: Self.device) }
        #expect(throws: LoginUrlError.missingHost) { try LoginUrl(apiUrl: "wss:///path", mode: .gateway, token: "t", device: Self.device) }
        #expect("\(LoginUrlError.invalidScheme("ftp"))" == "invalid scheme 'ftp'; only http(s) and ws(s) are allowed")
    }

    @Test func gatewayOmitsHardwareIdentifiers() throws {
        let url = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .gateway, token: "t", device: Self.device)
        #expect(url.requestTarget(publicKey: "k") == "/gateway/v2/websocket?external_id=2b6f0cc904d137be2e1730235f5664094b831186&name=Alices-MacBook-Pro&public_key=k")
    }

    /// `LoginUrl::relay`: the name, then the addresses and the listening port; no `external_id`, no `public_key`.
    @Test func relayAnnouncesItsAddressesAndNoKey() throws {
        let url = try LoginUrl(apiUrl: "ws://portal.test:8081", mode: .relay, token: "t", device: .init(id: "unused", name: "relay 1"),
                               relay: .init(ipv4: "203.0.113.1", ipv6: "2001:db8::1", listenPort: 3478))
        #expect(url.requestTarget(publicKey: nil) == "/relay/websocket?name=relay+1&ipv4=203.0.113.1&ipv6=2001%3Adb8%3A%3A1&port=3478")
        let ipv6Only = try LoginUrl(apiUrl: "ws://portal.test:8081", mode: .relay, token: "t", device: .init(id: "unused", name: "r"),
                                    relay: .init(ipv4: nil, ipv6: "2001:db8::1", listenPort: 3479))
        #expect(ipv6Only.requestTarget(publicKey: nil) == "/relay/websocket?name=r&ipv6=2001%3Adb8%3A%3A1&port=3479")
    }

    /// Python's hashlib and urllib (independent implementations) agree with our external_id and query encoding.
    @Test func pythonAgreesWithExternalIdAndQueryEncoding() throws {
        let uuids = ["6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff8b86d011b42d00c04fc964ff",
                     "{6f9619ff-8b86-d011-b42d-00c04fc964ff}", "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff"]
        for uuid in uuids {
            let expected = try Shell.run("python3", "-c", "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", uuid).output
            #expect(LoginUrl.externalId(deviceId: uuid) == expected.trimmingCharacters(in: .whitespacesAndNewlines), "\(uuid) is a UUID: hashed")
        }
        #expect(LoginUrl.externalId(deviceId: "not-a-uuid") == "not-a-uuid")
        #expect(LoginUrl.externalId(deviceId: "6f9619ff-8b86d011-b42d-00c04fc964ff") == "6f9619ff-8b86d011-b42d-00c04fc964ff", "wrong grouping")

        let awkward = LoginUrl.Device(id: "a b+c/d=e'f", name: "Alice's Mac + Ü/=&?~*")
        let url = try LoginUrl(apiUrl: "wss://h", mode: .client, token: "t", device: awkward)
        let query = String(url.requestTarget(publicKey: "k+/=").split(separator: "?", maxSplits: 1)[1])
        let decoded = try Shell.run("python3", "-c", "import urllib.parse,sys,json; print(json.dumps(urllib.parse.parse_qsl(sys.argv[1])))", query).output
        #expect(decoded.trimmingCharacters(in: .whitespacesAndNewlines) ==
            #"[["external_id", "a b+c/d=e'f"], ["name", "Alice's Mac + \u00dc/=&?~*"], ["public_key", "k+/="]]"#)
        #expect(query.hasPrefix("external_id=a+b%2Bc%2Fd%3De%27f&"), "space as +, reserved characters percent-encoded")
    }

    @Test func theTokenNeverShowsInDescriptions() throws {
        let url = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .client, token: "SECRET-TOKEN", device: Self.device)
        var dumped = ""
        dump(url, to: &dumped)
        for text in ["\(url)", String(reflecting: url), dumped, url.requestTarget(publicKey: "k")] {
            #expect(!text.contains("SECRET"), "\(text)")
        }
    }
}
