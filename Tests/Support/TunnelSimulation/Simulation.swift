import SansIO

/// A UDP datagram on the simulated network.
struct Datagram: Hashable {
    var source: SocketAddress
    var destination: SocketAddress
    var payload: [UInt8]
}

/// Something with an address on the simulated network: a node, a relay, a NAT.
protocol SimulatedHost: AnyObject, CustomStringConvertible {
    func receive(_ datagram: Datagram, in simulation: Simulation)
    /// When the host wants ``advance(in:)`` next.
    func nextDeadline() -> Instant?
    func advance(in simulation: Simulation)
}

/// An in-memory network on a virtual clock: datagrams arrive after a fixed latency unless a firewall rule
/// drops them; hosts' timers run when due. Everything is deterministic for a given seed.
final class Simulation {
    private(set) var now = Instant(nanoseconds: 1_000_000_000_000)
    let unixAnchor: Int64 = 1_790_000_000_000_000_000
    var random: SplitMix64
    var latency: Duration = .milliseconds(5)
    /// Firewall: a datagram for which a rule returns `true` is dropped.
    var dropRules: [(Datagram) -> Bool] = []
    private(set) var hosts: [IpAddress: SimulatedHost] = [:]
    private var participants: [SimulatedHost] = []
    private var scheduled: [(at: Instant, order: Int, action: () -> Void)] = []
    private var order = 0
    private(set) var delivered = 0
    private(set) var dropped = 0
    /// Set when a host kept asking for its timer at the same instant without progress.
    private(set) var stuck = false
    private var stuckHost: SimulatedHost?
    /// Hears what went wrong inside the simulation itself (a stuck clock, a portal message that failed):
    /// the unit tests record it as an issue, the state-machine model counts it as a complaint.
    let reportProblem: (String) -> Void

    init(seed: UInt64, reportProblem: @escaping (String) -> Void) {
        random = SplitMix64(seed: seed)
        self.reportProblem = reportProblem
    }

    /// Routes datagrams for `address` to `host` and runs its timers.
    func attach(_ host: SimulatedHost, at address: IpAddress) {
        hosts[address] = host
        join(host)
    }

    /// Runs a host's timers without giving it a public address (a host behind a NAT).
    func join(_ host: SimulatedHost) {
        guard !participants.contains(where: { $0 === host }) else { return }
        participants.append(host)
    }

    /// Puts a datagram on the wire.
    func send(_ datagram: Datagram) {
        if dropRules.contains(where: { $0(datagram) }) {
            dropped += 1
            return
        }
        schedule(after: latency) { [weak self] in
            guard let self, let host = self.hosts[datagram.destination.ip] else {
                self?.dropped += 1
                return
            }
            self.delivered += 1
            host.receive(datagram, in: self)
        }
    }

    /// Runs `action` at `now + delay` (the stub portal's signalling uses this).
    func schedule(after delay: Duration, _ action: @escaping () -> Void) {
        order += 1
        scheduled.append((now + delay, order, action))
    }

    /// Runs everything due until `deadline`, in time order; hosts' timers included.
    func run(for duration: Duration) {
        run(until: now + duration)
    }

    func run(until deadline: Instant) {
        var stepsAtThisInstant = 0
        var lastInstant = now
        while true {
            stepsAtThisInstant = now == lastInstant ? stepsAtThisInstant + 1 : 0
            lastInstant = now
            guard stepsAtThisInstant < 10_000 else {
                stuck = true
                reportProblem("the simulation is stuck at \(now): timers due without progress in \(stuckHost.map { "\($0)" } ?? "?")")
                break
            }
            let nextAction = scheduled.min { ($0.at, $0.order) < ($1.at, $1.order) }
            let hostDeadlines = participants.compactMap { host in host.nextDeadline().map { (max($0, now), host) } }
            let nextTimer = hostDeadlines.min { $0.0 < $1.0 }
            let candidates = [nextAction?.at, nextTimer?.0].compactMap { $0 }
            guard let next = candidates.min(), next <= deadline else { break }
            now = max(now, next)
            if let action = nextAction, action.at <= now {
                scheduled.removeAll { $0.order == action.order }
                action.action()
            } else if let (_, host) = nextTimer {
                stuckHost = host
                host.advance(in: self)
            }
        }
        now = max(now, deadline)
    }

    /// Runs until `condition` holds or `limit` passes; returns whether it held.
    @discardableResult
    func run(within limit: Duration, until condition: () -> Bool) -> Bool {
        let deadline = now + limit
        while !condition() {
            guard now < deadline, !stuck else { return false }
            run(until: min(deadline, now + .milliseconds(10)))
        }
        return true
    }
}
