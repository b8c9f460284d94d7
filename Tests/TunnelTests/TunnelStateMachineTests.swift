import Foundation
import IpPacket
import PortalMessages
import SansIO
import TestSupport
import Testing
@testable import TunnelSimulation

/// A state-machine property test in the manner of Firezone's `tunnel_test` (spec `tunnel-dns.md` §7.1): random
/// transitions applied to the real ClientState, GatewayState and Node in the simulation and to a small
/// reference model, with the model's predictions checked after every step.
///
/// `TUNNEL_PROPTEST_CASES` sets the number of cases (default 200); `TUNNEL_PROPTEST_SEED` replays one case.
@Suite("Tunnel: state machine against a reference model")
struct TunnelStateMachineTests {
    static func transitions(seed: UInt64) -> (initial: TunnelModel.Topology, steps: [TunnelModel.Transition]) {
        var random = SplitMix64(seed: seed)
        return TunnelModel.transitions(using: &random, maxSteps: 15)
    }

    @Test("random transitions: traffic, resources, rejections and idling agree with the model")
    func randomTransitions() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let seed = environment["TUNNEL_PROPTEST_SEED"].flatMap(UInt64.init) {
            seeds = [seed]
        } else {
            let cases = environment["TUNNEL_PROPTEST_CASES"].flatMap(Int.init) ?? 200
            seeds = (0..<UInt64(cases)).map { $0 &* 0x9E37_79B9 &+ 17 }
        }
        // Seconds of CPU: off the concurrency pool, so the run's async tests keep going meanwhile.
        let report = try await offPool { () throws -> String? in
            for seed in seeds {
                let (initial, steps) = Self.transitions(seed: seed)
                guard let failure = try TunnelModel.run(initial: initial, steps: steps) else { continue }
                let shrunk = try TunnelModel.shrink(initial: initial, steps: steps)
                return """
                    seed \(seed) failed: \(failure)
                    initial \(initial), transitions: \(steps)
                    shrunk to \(shrunk.steps): \(shrunk.failure)
                    replay: TUNNEL_PROPTEST_SEED=\(seed) swift test --filter TunnelStateMachineTests
                    """
            }
            return nil
        }
        if let report { Issue.record(Comment(rawValue: report)) }
    }

    /// The inputs with which Fuzz/TunnelProto found a disagreement (FUZZING.md's crash table), replayed through
    /// the same decoding; each is also in Fuzz/corpora/TunnelProto.
    @Test("the fuzzer's findings agree with the model", arguments: [
        "b6484421 2aac443a 36cc8c9d d57d6f2f d7170000 e0331874 7274729d",
        "f02d1ec9c9c9c9c9c9c9ff54bb1329a8fdc8eaea6de91f44ea41c9c9c9c9c9c9c9c9c9c9c9496e74ea5326",
        "300000e700000000002f8c2fd73418b3ef9d3a49d65f781d993800e70000002a6c71c6108c06b131000000860da0544713",
        // Relayed only, idle past a channel's lifetime: the client never bound its peer again (shrunk to dnsTraffic,
        // portalReconnect, idle(630 s), idle(589 s), portalReconnect, dnsTraffic).
        "212aac7426dee0e0e0cecececee0e0e0e0e0e0e0e01700000000000000e00000004ae0e0e0e0e0e0e0e0e0e0e02acececece4677c9e38765c90032774e2e01e0e0e0e0e0e0e02acececece4677c9e38765c90032774e2e010200c0af6089b20200c0af6089b23ee6de31fffe10e3",
        // A client restarted without its proxy IPs: a name numbered onto another name's old proxies cleared the whole
        // gateway NAT, the name set up after the restart included (shrunk to dnsTraffic(host0), dnsTraffic(host2, TCP),
        // restart(keepingProxyIps: false), dnsTraffic(host0), dnsTraffic(host1, TCP), dnsTraffic(host0)).
        "a81f4eec2aada552525252525252525252525252525252525252525252cf8cbecb5252525252525252524f7074696f6e616c525252525252cf9d9d999d9d9d9d9d9df19d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d8c1b000000000000005252525252525252",
        // Relayed only, idle 220 s, then the gateway closes: an immediate USE-CANDIDATE check on each pair nominated
        // while the pairs failed one by one put off the client's notice past 130 s (filteredTcp(1), idle(220 s),
        // rejectAccess(1)).
        "44083c7a3f00b6443c6ee91f2c447a877a40b433ef000000bb",
    ])
    func fuzzerFindings(hex: String) async throws {
        let bytes = stride(from: 0, to: hex.filter { $0 != " " }.count, by: 2).map { offset in
            let digits = Array(hex.filter { $0 != " " })
            return UInt8(String(digits[offset...offset + 1]), radix: 16)!
        }
        let report = try await offPool { () throws -> String? in
            var choices = FuzzedChoices(bytes)
            let (initial, steps) = TunnelModel.transitions(using: &choices, maxSteps: 20)
            guard let failure = try TunnelModel.run(initial: initial, steps: steps) else { return nil }
            let shrunk = try TunnelModel.shrink(initial: initial, steps: steps)
            return "\(failure)\ninitial \(initial), transitions: \(steps)\nshrunk to \(shrunk.steps): \(shrunk.failure)"
        }
        if let report { Issue.record(Comment(rawValue: report)) }
    }

    /// Fuzz/TunnelProto draws its case from the input bytes. Swift's bounded sampling rejects some values and
    /// draws again, so a generator that returned zero once the bytes ran out would loop for ever on an empty
    /// input; all ones is always accepted.
    @Test("fuzzer bytes decode into a bounded case, and running out of bytes ends the drawing")
    func fuzzedChoicesTerminate() {
        var empty = FuzzedChoices([])
        let (_, steps) = TunnelModel.transitions(using: &empty, maxSteps: 20)
        #expect(steps.count == 20 && Set(steps).count == 1, "every draw past the end is the same: \(steps)")

        var random = SplitMix64(seed: 99)
        for _ in 0..<1_000 {
            let bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var choices = FuzzedChoices(bytes)
            let (_, steps) = TunnelModel.transitions(using: &choices, maxSteps: 20)
            #expect((1...20).contains(steps.count))
        }
    }
}
