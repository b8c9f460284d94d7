import PhoenixChannel
import SansIO
import Testing

@Suite struct ReconnectBackoffTests {
    func seconds(_ duration: Duration?) -> Double? {
        duration.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
    }

    @Test func reconnectStartsAtHalfASecondAndGrowsByOneAndAHalf() {
        var backoff = ReconnectBackoff(maxElapsed: nil)
        let now = Instant(nanoseconds: 0)
        let delays = (0..<6).map { _ in seconds(backoff.nextDelay(now: now, unit: 0.5)) }
        #expect(delays == [0.5, 0.75, 1.125, 1.6875, 2.53125, 3.796875], "unit 0.5 is the middle of the jitter range")
    }

    @Test func initialConnectIsOneSecondWithoutJitterForFifteenSeconds() {
        var backoff = ReconnectBackoff(schedule: .initialConnect, maxElapsed: ReconnectBackoff.initialConnectBudget)
        let start = Instant(nanoseconds: 0)
        #expect(seconds(backoff.nextDelay(now: start, unit: 0)) == 1)
        #expect(seconds(backoff.nextDelay(now: start + .seconds(1), unit: 0.999)) == 1)
        #expect(seconds(backoff.nextDelay(now: start + .seconds(14), unit: 0.5)) == 1)
        #expect(backoff.nextDelay(now: start + .milliseconds(14_500), unit: 0.5) == nil, "14.5 s + 1 s would pass 15 s")
    }

    @Test func jitterSpansHalfToOneAndAHalfAndTheIntervalCapsAtSixtySeconds() throws {
        var low = ReconnectBackoff(maxElapsed: nil)
        var high = ReconnectBackoff(maxElapsed: nil)
        let now = Instant(nanoseconds: 0)
        #expect(seconds(low.nextDelay(now: now, unit: 0)) == 0.25)
        #expect(try #require(seconds(high.nextDelay(now: now, unit: 0.999_999))) > 0.749)
        for _ in 0..<30 { _ = high.nextDelay(now: now, unit: 0.5) }
        #expect(seconds(high.nextDelay(now: now, unit: 0.5)) == 60)
        #expect(try #require(seconds(high.nextDelay(now: now, unit: 0.999_999))) > 89.9, "the cap is on the interval, not the jittered delay")
    }

    @Test func maxElapsedEndsTheRetriesAndResetStartsOver() {
        var backoff = ReconnectBackoff(maxElapsed: .seconds(900))
        let start = Instant(nanoseconds: 0)
        #expect(backoff.nextDelay(now: start, unit: 0.5) == .milliseconds(500))
        #expect(backoff.nextDelay(now: start + .milliseconds(899_500), unit: 0.5) == nil, "899.5 s + 0.75 s would pass 900 s")
        var again = ReconnectBackoff(maxElapsed: .seconds(900))
        _ = again.nextDelay(now: start, unit: 0.5)
        #expect(again.nextDelay(now: start + .seconds(901), unit: 0) == nil)
        again.reset()
        #expect(again.nextDelay(now: start + .seconds(902), unit: 0.5) == .milliseconds(500), "after a success the schedule starts over")
        #expect(seconds(again.nextDelay(now: start + .seconds(902), unit: 0.5)) == 0.75)
    }
}
