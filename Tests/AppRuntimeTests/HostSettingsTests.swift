import AppRuntime
import SansIO
import Testing

@Suite("AppRuntime: the nameservers of resolv.conf")
struct HostSettingsTests {
    @Test("nameservers in order; comments, options, scoped IPv6 and garbage lines handled")
    func resolvConf() {
        let text = """
            # generated
            search example.com
            nameserver 10.77.0.5
            nameserver\tfe80::1%eth0
            nameserver not-an-address
            nameserver
            ;nameserver 9.9.9.9
            options ndots:1
            nameserver 2001:db8::53 # trailing words
            """
        #expect(ResolvConf.nameservers(in: text) == [IpAddress("10.77.0.5")!, IpAddress("fe80::1")!, IpAddress("2001:db8::53")!])
        #expect(ResolvConf.nameservers(in: "\u{0}\u{1}garbage\n\n") == [])
        #expect(throws: SystemCallError.self) { try ResolvConf.nameservers(path: "/nonexistent/resolv.conf") }
    }
}
