import Foundation
import PhoenixChannel
import TestSupport
import Testing

@Suite(.offPool) struct LoginUrlTests {
    static let device = LoginUrl.Device(id: "2b6f0cc904d137be2e1730235f5664094b831186", name: "Alices-MacBook-Pro",
                                        serial: "C02XK0AAJGH5", uuid: "6F9619FF-8B86-D011-B42D-00C04FC964FF")
    static let publicKey = "uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY="

    @Test func specExampleForAClient() throws {
        let url = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .client, token: "<TOKEN>", device: Self.device)
        #expect(url.requestTarget(publicKey: Self.publicKey) ==
            "/client/websocket?token=%3CTOKEN%3E&external_id=2b6f0cc904d137be2e1730235f5664094b831186&name=Alices-MacBook-Pro"
            + "&device_serial=C02XK0AAJGH5&device_uuid=6F9619FF-8B86-D011-B42D-00C04FC964FF&public_key=uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY%3D")
        #expect(url.baseUrl == "wss://api.firezone.dev:443/")
    }

    @Test(arguments: [
        ("wss://api.firezone.dev", "wss", 443, "/client/websocket"),
        ("https://example.com/api/", "wss", 443, "/api/client/websocket"),
        ("http://localhost:8081", "ws", 8081, "/client/websocket"),
        ("ws://localhost", "ws", 443, "/client/websocket"),
        ("ws://localhost:80", "ws", 443, "/client/websocket"),
        ("https://example.com:443/a/b?x=1", "wss", 443, "/a/b/client/websocket"),
        ("wss://example.com:8443", "wss", 8443, "/client/websocket"),
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
        #expect(url.requestTarget(publicKey: "k") == "/gateway/websocket?token=t&external_id=2b6f0cc904d137be2e1730235f5664094b831186&name=Alices-MacBook-Pro&public_key=k")
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

        let awkward = LoginUrl.Device(id: "id", name: "Alice's Mac + Ü/=&?~*")
        let url = try LoginUrl(apiUrl: "wss://h", mode: .client, token: "a b+c/d=e'f", device: awkward)
        let query = String(url.requestTarget(publicKey: "k+/=").split(separator: "?", maxSplits: 1)[1])
        let decoded = try Shell.run("python3", "-c", "import urllib.parse,sys,json; print(json.dumps(urllib.parse.parse_qsl(sys.argv[1])))", query).output
        #expect(decoded.trimmingCharacters(in: .whitespacesAndNewlines) ==
            #"[["token", "a b+c/d=e'f"], ["external_id", "id"], ["name", "Alice's Mac + \u00dc/=&?~*"], ["public_key", "k+/="]]"#)
        #expect(query.hasPrefix("token=a+b%2Bc%2Fd%3De%27f&"), "space as +, reserved characters percent-encoded")
    }

    @Test func theTokenNeverShowsInDescriptions() throws {
        let url = try LoginUrl(apiUrl: "wss://api.firezone.dev", mode: .client, token: "SECRET-TOKEN", device: Self.device)
        var dumped = ""
        dump(url, to: &dumped)
        for text in ["\(url)", String(reflecting: url), dumped] {
            #expect(!text.contains("SECRET"), "\(text)")
        }
    }
}
