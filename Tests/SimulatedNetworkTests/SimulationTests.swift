import SansIO
import SimulatedNetwork
import Testing

/// The simulated network's own rules: latency, drop rules, the order of actions and timers, stuck detection.
@Suite struct SimulationTests {
    final class Recorder: SimulatedHost {
        var received: [(at: Instant, payload: [UInt8])] = []
        var deadline: Instant?
        var advances = 0
        /// Keeps asking for a timer at the same instant without moving it (a broken host).
        var stuck = false

        func receive(_ datagram: Datagram, in simulation: Simulation) { received.append((simulation.now, datagram.payload)) }
        func nextDeadline() -> Instant? { deadline }
        func advance(in simulation: Simulation) {
            advances += 1
            if !stuck { deadline = nil }
        }
        var description: String { "recorder" }
    }

    @Test func datagramsArriveAfterTheLatencyUnlessARuleDropsThem() {
        var problems: [String] = []
        let simulation = Simulation(seed: 1) { problems.append($0) }
        let host = Recorder()
        simulation.attach(host, at: IpAddress("192.0.2.1")!)
        var tapped = 0
        simulation.onSend = { _ in tapped += 1 }
        simulation.dropRules.append { $0.payload == [2] }
        let start = simulation.now
        for byte: UInt8 in 1...3 {
            simulation.send(Datagram(source: SocketAddress("192.0.2.9:1")!, destination: SocketAddress("192.0.2.1:2")!, payload: [byte]))
        }
        simulation.send(Datagram(source: SocketAddress("192.0.2.9:1")!, destination: SocketAddress("192.0.2.77:2")!, payload: [4]))
        simulation.run(for: .milliseconds(4))
        #expect(host.received.isEmpty)
        simulation.run(for: .milliseconds(1))
        #expect(host.received.map(\.payload) == [[1], [3]])
        #expect(host.received.allSatisfy { $0.at == start + .milliseconds(5) })
        #expect(simulation.delivered == 2 && simulation.dropped == 2 && tapped == 4, "one by a rule, one to nobody")
        #expect(problems.isEmpty)
    }

    @Test func atOneInstantActionsRunFirstInTheirOrderThenTimers() {
        let simulation = Simulation(seed: 1) { _ in }
        let host = Recorder()
        simulation.join(host)
        var order: [String] = []
        let at = simulation.now + .milliseconds(10)
        host.deadline = at
        simulation.schedule(after: .milliseconds(10)) { _ in order.append("first \(host.advances)") }
        simulation.schedule(after: .milliseconds(10)) { _ in order.append("second \(host.advances)") }
        simulation.schedule(after: .milliseconds(3)) { _ in order.append("earlier") }
        simulation.run(for: .seconds(1))
        #expect(order == ["earlier", "first 0", "second 0"])
        #expect(host.advances == 1)
    }

    @Test func aHostThatNeverMovesItsTimerIsReportedStuck() {
        var problems: [String] = []
        let simulation = Simulation(seed: 1) { problems.append($0) }
        let host = Recorder()
        host.stuck = true
        host.deadline = simulation.now
        simulation.join(host)
        simulation.run(for: .seconds(1))
        #expect(simulation.stuck)
        #expect(problems.count == 1 && problems[0].contains("recorder"))
        #expect(!simulation.run(within: .seconds(1)) { false })
    }
}
