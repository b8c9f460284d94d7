@testable import PhoenixChannel
import TestSupport
import Testing

@Suite(.offPool) struct UserAgentTests {
    @Test func formatsAsTheSpecsExamples() {
        let ubuntu = OsRelease.parse("NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\n")
        let agent = UserAgent(osType: ubuntu.type, osVersion: ubuntu.version, component: .headlessClient, version: "1.5.4",
                              architecture: "x86_64", kernelRelease: "6.8.0-1036-azure")
        #expect(agent.description == "Ubuntu/22.4.0 headless-client/1.5.4 (x86_64; 6.8.0-1036-azure)")
        #expect(UserAgent(osType: "Windows", osVersion: "10.0.26200", component: .guiClient, version: "1.5.8",
                          architecture: "x86_64").description == "Windows/10.0.26200 gui-client/1.5.8 (x86_64)")
        #expect(UserAgent(osType: "Mäc OS", osVersion: "15", component: .gateway, version: "1").description == "Mc OS/15 gateway/1",
                "non-ASCII removed")
    }

    @Test func readsThisMachineLikeUnameDoes() throws {
        let agent = UserAgent.current(component: .gateway, version: "1.4.19")
        let machine = try Shell.run("uname", "-m").output.trimmingCharacters(in: .whitespacesAndNewlines)
        let release = try Shell.run("uname", "-r").output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(agent.description.hasSuffix(" gateway/1.4.19 (\(machine); \(release))"))
        #expect(agent.description.hasPrefix("Debian/12.0.0 "), "this machine is Debian 12: \(agent)")
    }
}
