import Foundation
import TestSupport
import Testing

/// The CLI's exit codes and messages for files it cannot use.
@Suite(.offPool) struct PortalCommandTests {
    @Test func anInvalidConfigurationExits78NamingTheLine() throws {
        let portal = try PortalProcess(config: "sites:\n  - name: hq\n    gateway_token: [a]\n")
        defer { portal.removeFiles() }
        let result = try Shell.run("sh", "-c", "\(try PortalProcess.executable) --config \(portal.configPath) --database \(portal.databasePath) 2>&1",
                                   allowFailure: true)
        #expect(result.status == 78)
        #expect(result.output.contains("portal.yaml: line 3: unknown key 'gateway_token' in a site"), "\(result.output)")
    }

    @Test func aMissingConfigurationExits66() throws {
        let result = try Shell.run("sh", "-c", "\(try PortalProcess.executable) --config /nonexistent/portal.yaml 2>&1", allowFailure: true)
        #expect(result.status == 66)
        #expect(result.output.contains("cannot read /nonexistent/portal.yaml"), "\(result.output)")
    }
}
