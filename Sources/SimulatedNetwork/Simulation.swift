import HeapModule
import SansIO

/// Something with an address on the simulated network: a node, a relay, a NAT.
public protocol SimulatedHost: AnyObject, CustomStringConvertible {
    func receive(_ datagram: Datagram, in simulation: Simulation)
    /// When the host wants ``advance(in:)`` next.
    func nextDeadline() -> Instant?
    func advance(in simulation: Simulation)
}

/// An in-memory network on a virtual clock: datagrams arrive after a fixed latency unless a firewall rule
/// drops them; scheduled actions and hosts' timers run when due, in time order (actions first at a tie, in
/// the order they were scheduled; then hosts in the order they joined). Deterministic for a given seed.
/// The tunnel's simulations, its state-machine fuzzing and the pcap replay all run on it.
///
/// ```swift
/// let simulation = Simulation(seed: 1) { problem in print(problem) }
/// simulation.attach(relay, at: relay.ip)
/// simulation.send(Datagram(source: client, destination: relay.address, payload: bytes))
/// simulation.run(for: .seconds(1))
/// ```
public final class Simulation {
    public private(set) var now = Instant(nanoseconds: 1_000_000_000_000)
    /// The Unix time, in nanoseconds, at the simulation's start: for the states that need both clocks.
    public let unixAnchor: Int64
    public var random: SplitMix64
    public var latency: Duration = .milliseconds(5)
    /// Firewall: a datagram for which a rule returns `true` is dropped.
    public var dropRules: [(Datagram) -> Bool] = []
    /// Hears every datagram put on the wire, dropped or not.
    public var onSend: (Datagram) -> Void = { _ in }
    public private(set) var hosts: [IpAddress: SimulatedHost] = [:]
    public private(set) var delivered = 0
    public private(set) var dropped = 0
    /// Set when the clock stood still for ``stuckLimit`` steps: something keeps asking for its timer at one
    /// instant without progress.
    public private(set) var stuck = false
    /// Hears what went wrong inside the simulation itself (a stuck clock, a failed portal message): the unit
    /// tests record it as an issue, the state-machine model counts it as a complaint, the replay reports it.
    public let reportProblem: (String) -> Void

    /// Steps at one instant before the simulation counts as stuck.
    public static var stuckLimit: Int { 100_000 }

    private var participants: [SimulatedHost] = []
    private var scheduled = Heap<ScheduledAction>()
    private var order = 0
    private var stuckHost: SimulatedHost?

    public init(seed: UInt64, unixAnchor: Int64 = 1_790_000_000_000_000_000, reportProblem: @escaping (String) -> Void) {
        random = SplitMix64(seed: seed)
        self.unixAnchor = unixAnchor
        self.reportProblem = reportProblem
    }

    /// Routes datagrams for `address` to `host` and runs its timers.
    public func attach(_ host: SimulatedHost, at address: IpAddress) {
        hosts[address] = host
        join(host)
    }

    /// Runs a host's timers without giving it a public address (a host behind a NAT).
    public func join(_ host: SimulatedHost) {
        guard !participants.contains(where: { $0 === host }) else { return }
        participants.append(host)
    }

    /// Puts a datagram on the wire.
    public func send(_ datagram: Datagram) {
        onSend(datagram)
        if dropRules.contains(where: { $0(datagram) }) {
            dropped += 1
            return
        }
        schedule(after: latency) { simulation in
            guard let host = simulation.hosts[datagram.destination.ip] else {
                simulation.dropped += 1
                return
            }
            simulation.delivered += 1
            host.receive(datagram, in: simulation)
        }
    }

    /// Runs `action` at `now + delay`. The action gets the simulation as its argument, so the schedule holds
    /// no reference cycle through it.
    public func schedule(after delay: Duration, _ action: @escaping (Simulation) -> Void) {
        order += 1
        scheduled.insert(ScheduledAction(at: now + delay, order: order, action: action))
    }

    /// Runs everything due in the next `duration`, hosts' timers included.
    public func run(for duration: Duration) {
        run(until: now + duration)
    }

    /// Runs everything due until `deadline`, in time order; the clock ends at `deadline`.
    public func run(until deadline: Instant) {
        var stepsAtThisInstant = 0
        var lastInstant = now
        while true {
            stepsAtThisInstant = now == lastInstant ? stepsAtThisInstant + 1 : 0
            lastInstant = now
            guard stepsAtThisInstant < Self.stuckLimit else {
                stuck = true
                reportProblem("the simulation is stuck at \(now): timers due without progress in \(stuckHost.map { "\($0)" } ?? "?")")
                break
            }
            let nextAction = scheduled.min?.at
            var nextTimer: (at: Instant, host: SimulatedHost)?
            for host in participants {
                guard let deadline = host.nextDeadline().map({ max($0, now) }) else { continue }
                if nextTimer.map({ deadline < $0.at }) ?? true { nextTimer = (deadline, host) }
            }
            guard let next = nextAction.earliest(nextTimer?.at), next <= deadline else { break }
            now = max(now, next)
            if let nextAction, nextAction <= now, let action = scheduled.popMin() {
                action.action(self)
            } else if let (_, host) = nextTimer {
                stuckHost = host
                host.advance(in: self)
            }
        }
        now = max(now, deadline)
    }

    /// Runs until `condition` holds or `limit` passes; returns whether it held.
    @discardableResult
    public func run(within limit: Duration, until condition: () -> Bool) -> Bool {
        let deadline = now + limit
        while !condition() {
            guard now < deadline, !stuck else { return false }
            run(until: min(deadline, now + .milliseconds(10)))
        }
        return true
    }

    private struct ScheduledAction: Comparable {
        var at: Instant
        var order: Int
        var action: (Simulation) -> Void

        static func < (lhs: Self, rhs: Self) -> Bool { (lhs.at, lhs.order) < (rhs.at, rhs.order) }
        static func == (lhs: Self, rhs: Self) -> Bool { (lhs.at, lhs.order) == (rhs.at, rhs.order) }
    }
}
