import Dns
import Testing

/// Spec `tunnel-dns.md` §4.6.4: every example of the pattern table and the normative precedence order.
@Suite struct DomainPatternTests {
    @Test(arguments: [
        ("**.example.com", ["example.com", "foo.example.com", "a.b.example.com"], [String]()),
        ("app.**.example.com", ["app.bar.foo.example.com"], []),
        ("*.example.com", ["foo.example.com", "example.com"], ["a.b.example.com"]),
        ("foo.*.example.com", ["foo.bar.example.com"], []),
        ("app.*.example.com", [], ["app.foo.bar.example.com"]),
        ("app.*.*.example.com", ["app.foo.bar.example.com"], []),
        ("app.f??.example.com", ["app.foo.example.com"], []),
        ("*?*.example.com", ["app.example.com"], []),
        ("app.**.web.**.example.com", ["app.web.example.com"], []),
        ("app.*com", [], ["app.foo.com"]),
        ("app?com", [], ["app.com"]),
        ("?.example.com", ["a.example.com"], ["example.com", "ab.example.com"]),
        ("App.Example.COM", ["app.example.com", "APP.example.com"], ["www.app.example.com"]),
    ])
    func patternTable(pattern: String, matches: [String], nonMatches: [String]) throws {
        let compiled = DomainPattern(pattern)
        for name in matches { #expect(compiled.matches(try #require(DnsName(name))), "\(pattern) matches \(name)") }
        for name in nonMatches { #expect(!compiled.matches(try #require(DnsName(name))), "\(pattern) does not match \(name)") }
    }

    @Test func precedenceFollowsTheNormativeExample() {
        let expected = ["example.com", "bar.example.com", "*.bar.example.com", "foo.example.com", "?.example.com",
                        "*.example.com", "**.example.com", "*ample.com", "*.com"]
        for seed in 0..<20 {
            var generator = SystemRandomNumberGenerator()
            let shuffled = seed == 0 ? expected.reversed() : expected.shuffled(using: &generator)
            #expect(shuffled.map(DomainPattern.init).sorted().map(\.text) == expected)
        }
    }
}
