import Benchmark
import Ice
import SansIO

/// How many connectivity checks one agent answers per second: a gateway with many clients multiplies this.
let benchmarks: @Sendable () -> Void = {
    // Counting mallocs interposes on every allocation, which dominates a 33-allocation path; time and count
    // are measured in separate runs of the same work.
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(3))
    Benchmark("ICE: answer a connectivity check (agent with 100 pairs)") { benchmark in
        try answerChecks(benchmark)
    }
    Benchmark("ICE: answer a connectivity check, allocations", configuration: .init(metrics: [.mallocCountTotal])) { benchmark in
        try answerChecks(benchmark)
    }
}

func answerChecks(_ benchmark: Benchmark) throws {
    do {
        let controlledCredentials = IceCredentials(ufrag: "gggg", password: "gatewaypasswordgatewayp")
        let controllingCredentials = IceCredentials(ufrag: "cccc", password: "clientpasswordclientpa")
        let agent = IceAgent(controlling: false, local: controlledCredentials, remote: controllingCredentials, timings: .gatewayDefault)
        let checker = IceAgent(controlling: true, local: controllingCredentials, remote: controlledCredentials, timings: .clientDefault)
        for index in 0..<10 {
            let local = agent.addLocalCandidate(kind: .host, address: SocketAddress(ip: .v4(IPv4Address(10, 0, 0, UInt8(index + 1))), port: 52625))!
            checker.addRemoteCandidate(local)
            let remote = checker.addLocalCandidate(kind: .host, address: SocketAddress(ip: .v4(IPv4Address(10, 1, 0, UInt8(index + 1))), port: 52625))!
            agent.addRemoteCandidate(remote)
        }
        checker.handleTimeout(now: Instant(nanoseconds: 0))
        var checks: [IceTransmit] = []
        while let transmit = checker.pollTransmit() { checks.append(transmit) }
        precondition(checks.count == 100, "100 pairs checked")
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let check = checks[iteration % checks.count]
            agent.handle(check.payload, from: check.source.base, to: check.destination, now: Instant(nanoseconds: Int64(iteration)))
            blackHole(agent.pollTransmit())
        }
    }
}
