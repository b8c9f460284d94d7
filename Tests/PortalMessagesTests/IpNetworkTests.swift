import SansIO
import Testing

@Suite struct IpNetworkTests {
    @Test(arguments: ["172.172.0.0/16", "0.0.0.0/0", "1.2.3.4/32", "fd00:2021:1111::/107", "::/0", "2001:db8::1/128",
                      "100.64.0.0/11", "fd00:2021:1111:8000::/107"])
    func canonicalNetworksParseAndPrintBack(_ text: String) throws {
        #expect(try #require(IpNetwork(text)).description == text)
    }

    @Test(arguments: ["10.0.0.1/8", "1.2.3.4", "1.2.3.0/33", "1.2.3.0/024", "1.2.3.0/", "fd00::1/64", "::/129",
                      "fd00:2021:1111::20/107", "10.0.0.0/8/8", "10.0.0.0/-1"])
    func nonCanonicalNetworksAreRefused(_ text: String) {
        #expect(IpNetwork(text) == nil)
    }

    @Test func containment() throws {
        let v4 = try #require(IpNetwork("100.64.0.0/11"))
        #expect(v4.contains(try #require(IpAddress("100.95.255.255"))))
        #expect(!v4.contains(try #require(IpAddress("100.96.0.0"))))
        #expect(!v4.contains(try #require(IpAddress("fd00::1"))))
        let v6 = try #require(IpNetwork("fd00:2021:1111::/107"))
        #expect(v6.contains(try #require(IpAddress("fd00:2021:1111::1f:ffff"))))
        #expect(!v6.contains(try #require(IpAddress("fd00:2021:1111::20:0"))))
        #expect(try #require(IpNetwork("::/0")).contains(try #require(IpAddress("2001:db8::1"))))
    }
}
