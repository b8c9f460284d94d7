import Foundation
import PortalMessages
@testable import PortalServer
import SansIO
import Testing

@Suite struct ConfigTests {
    static let examplePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fixtures/portal/example.yaml").path

    @Test func theExampleParses() throws {
        let config = try PortalConfig(yaml: String(contentsOfFile: Self.examplePath, encoding: .utf8))
        #expect(config.sites.map(\.name) == ["hq"] && config.sites[0].gatewayTokens == ["gateway-token-hq"])
        #expect(config.resources.map(\.name) == ["intranet", "wiki", "internet"])
        #expect(config.resources[0].filters == [.tcp(80...80), .tcp(443...443), .icmp])
        #expect(config.resources[1].kind == .dns("*.wiki.example", .ipv4Only))
        #expect(config.resources(for: "alice").map(\.name) == ["intranet", "wiki"], "no policy grants the Internet resource")
        #expect(config.relays.first?.secret == .coturn("dev-turn-secret"))
        #expect(config.upstreamDns == [IpAddress("1.1.1.1")!] && config.accessLifetime == .seconds(86_400))
        #expect(try PortalConfig(yaml: String(contentsOfFile: Self.examplePath, encoding: .utf8)).resources[0].id == config.resources[0].id,
                "ids derived from names are stable")
    }

    @Test(arguments: [
        ("sites:\n  - name: hq\n    gateway_token: [a]\n", 3, "unknown key 'gateway_token' in a site"),
        ("sites:\n  - name: hq\nresources:\n  - name: r\n    type: cidr\n    address: 10.0.0.1/8\n    sites: [hq]\n", 6,
         "'10.0.0.1/8' is not a canonical CIDR network"),
        ("sites:\n  - name: hq\nresources:\n  - name: r\n    type: cidr\n    address: 10.0.0.0/8\n    sites: [branch]\n", 7,
         "no site named 'branch'"),
        ("actors:\n  - name: alice\npolicies:\n  - actor: alice\n    resource: nothing\n", 5, "no resource named 'nothing'"),
        ("relays:\n  - name: r\n    addresses: [\"127.0.0.1:3478\"]\n", 2, "needs exactly one of stamp_secret and coturn_secret"),
        ("sites:\n  - name: hq\nresources:\n  - name: r\n    type: cidr\n    address: 10.0.0.0/8\n    sites: [hq]\n    filters: [tcp/90-80]\n",
         8, "'tcp/90-80' is not a filter"),
        ("sites: [\n", 2, "not valid YAML"),
        ("actors:\n  - name: a\n    tokens: [t]\n  - name: b\n    tokens: [t]\n", 2, "duplicate client token 't'"),
        ("sites:\n  - name: hq\nupstream_dns: " + String(repeating: "[", count: 40) + "\n", 3, "nested more than 32 levels deep"),
        // Found by Fuzz/PortalInput: YAML counts a lone CR as a line break, and so must the nesting check.
        ("sites:\r  - name: hq\rupstream_dns: " + String(repeating: "[", count: 40) + "\r", 3, "nested more than 32 levels deep"),
    ])
    func errorsNameTheLine(_ yaml: String, _ line: Int, _ message: String) {
        #expect {
            try PortalConfig(yaml: yaml)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.line == line && error.message.contains(message)
        }
    }
}
