import Testing
@testable import TunnelSimulation

extension Simulation {
    /// A simulation whose own problems (a stuck clock, a failed portal message) fail the running test.
    convenience init(seed: UInt64) {
        self.init(seed: seed) { problem in Issue.record(Comment(rawValue: problem)) }
    }
}
