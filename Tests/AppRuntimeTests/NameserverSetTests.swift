import AppRuntime
import Dns
import Foundation
import Glibc
import SansIO
import TestSupport
import Testing

/// The gateway's nameserver ranking (spec `tunnel-dns.md` §5.9) against real nameservers on loopback addresses:
/// Python servers answering over UDP and TCP with a chosen delay and response code (port 53: root).
@Suite("AppRuntime: the fastest system nameserver (root)", .serialized, .offPool)
struct NameserverSetTests {
    let slow = IpAddress("127.53.0.1")!, fast = IpAddress("127.53.0.2")!, refusing = IpAddress("127.53.0.3")!
    let silent = IpAddress("127.53.0.4")!, alsoSilent = IpAddress("127.53.0.5")!

    @Test("every nameserver is probed over UDP and TCP; NOERROR answers rank by speed, other codes after them")
    func fastestNoErrorAnswerWins() async throws {
        let servers = try [ProbeServer(slow, delayMilliseconds: 300), ProbeServer(fast), ProbeServer(refusing, rcode: 5)]
        defer { servers.forEach { $0.stop() } }
        let set = NameserverSet([slow, refusing, silent, fast, slow])
        #expect(set.nameservers == [slow, refusing, silent, fast], "resolv.conf's order, without duplicates")
        #expect(set.fastest == slow, "before the first evaluation, resolv.conf's first")

        let probes = await set.evaluate()

        #expect(probes.count == 8)
        for transport in [NameserverSet.Probe.Transport.udp, .tcp] {
            let by = Dictionary(uniqueKeysWithValues: probes.filter { $0.transport == transport }.map { ($0.nameserver, $0) })
            #expect(by[fast]?.rcode == .noError && by[slow]?.rcode == .noError, "\(transport)")
            #expect(by[refusing]?.rcode == DnsRcode(rawValue: 5), "\(transport)")
            #expect(by[silent]?.rcode == nil, "\(transport)")
            #expect(by[slow]!.roundTrip >= .milliseconds(300), "\(transport)")
        }
        #expect(set.ranked == [fast, slow, refusing])
        #expect(set.fastest == fast)
    }

    @Test("a nameserver that stops answering loses its place at the next evaluation (deviation from Firezone)")
    func rankingFollowsTheLatestEvaluation() async throws {
        let steady = try ProbeServer(slow, delayMilliseconds: 100)
        defer { steady.stop() }
        let flaky = try ProbeServer(fast)
        let set = NameserverSet([slow, fast])
        await set.evaluate()
        #expect(set.fastest == fast)
        flaky.stop()
        await set.evaluate()
        #expect(set.ranked == [slow])
    }

    @Test("garbage over UDP and a cut-off answer over TCP count as no answer; the nameserver that answers wins")
    func unreadableAnswersAreNoAnswers() async throws {
        let servers = try [ProbeServer(slow, rcode: -1), ProbeServer(fast)]
        defer { servers.forEach { $0.stop() } }
        let set = NameserverSet([slow, fast])
        let probes = await set.evaluate()
        #expect(probes.filter { $0.nameserver == slow }.map(\.rcode) == [nil, nil], "\(probes)")
        #expect(probes.filter { $0.nameserver == slow }.allSatisfy { $0.roundTrip < NameserverSet.probeTimeout },
                "the bad answers end the probes at once, not the timeout")
        #expect(set.ranked == [fast])
    }

    @Test("when no nameserver answers, resolv.conf's order stands (deviation from Firezone); without any, none")
    func nobodyAnsweringKeepsTheConfiguredOrder() async throws {
        let set = NameserverSet([alsoSilent, silent])
        let clock = ContinuousClock()
        let started = clock.now
        let probes = await set.evaluate()
        // Each UDP probe waits out its 2 s timeout: one after the other they would take 4 s.
        #expect(started.duration(to: clock.now) < .milliseconds(3_500), "the probes run at once")
        #expect(probes.count == 4 && probes.allSatisfy { $0.rcode == nil })
        #expect(set.ranked == [alsoSilent, silent])
        #expect(set.fastest == alsoSilent)

        let empty = NameserverSet([])
        #expect(await empty.evaluate().isEmpty)
        #expect(empty.fastest == nil)
    }
}

/// `Tests/Support/dns_probe_server.py` on `address`:53.
final class ProbeServer: Sendable {
    private let process: Process

    init(_ address: IpAddress, delayMilliseconds: Int = 0, rcode: Int = 0) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/dns_probe_server.py").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script, "\(address)", "\(delayMilliseconds)", "\(rcode)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        guard LineReader(output.fileHandleForReading).next(timeout: 20) == "ready" else {
            stop()
            throw ShellError.failed("dns_probe_server.py \(address)", "did not start")
        }
    }

    /// Foundation starts children with every signal blocked, so only SIGKILL ends it.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
