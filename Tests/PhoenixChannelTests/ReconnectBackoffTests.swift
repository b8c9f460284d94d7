import PhoenixChannel
import SansIO
import Testing

@Suite struct ReconnectBackoffTests {
    func seconds(_ duration: Duration?) -> Double? {
        duration.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
    }

    @Test func firstRetryIsImmediateThenGrowsByOneAndAHalf() {
        var backoff = ReconnectBackoff(maxElapsed: nil)
        let now = Instant(nanoseconds: 0)
        let delays = (0..<6).map { _ in seconds(backoff.nextDelay(now: now, unit: 0.5)) }
        #expect(delays == [0, 0.5, 0.75, 1.125, 1.6875, 2.53125], "unit 0.5 is the middle of the jitter range")
    }

    @Test func jitterSpansHalfToOneAndAHalfAndTheIntervalCapsAtSixtySeconds() throws {
        var low = ReconnectBackoff(maxElapsed: nil)
        var high = ReconnectBackoff(maxElapsed: nil)
        let now = Instant(nanoseconds: 0)
        _ = low.nextDelay(now: now, unit: 0)
        _ = high.nextDelay(now: now, unit: 0.999_999)
        #expect(seconds(low.nextDelay(now: now, unit: 0)) == 0.25)
        #expect(try #require(seconds(high.nextDelay(now: now, unit: 0.999_999))) > 0.749)
        for _ in 0..<30 { _ = high.nextDelay(now: now, unit: 0.5) }
        #expect(seconds(high.nextDelay(now: now, unit: 0.5)) == 60)
        #expect(try #require(seconds(high.nextDelay(now: now, unit: 0.999_999))) > 89.9, "the cap is on the interval, not the jittered delay")
    }

    @Test func maxElapsedEndsTheRetriesAndResetStartsOver() {
        var backoff = ReconnectBackoff(maxElapsed: .seconds(900))
        let start = Instant(nanoseconds: 0)
        #expect(backoff.nextDelay(now: start, unit: 0.5) == .zero)
        #expect(backoff.nextDelay(now: start + .milliseconds(899_800), unit: 0.5) == nil, "899.8 s + 0.5 s would pass 900 s")
        var again = ReconnectBackoff(maxElapsed: .seconds(900))
        _ = again.nextDelay(now: start, unit: 0.5)
        #expect(again.nextDelay(now: start + .seconds(901), unit: 0) == nil)
        again.reset()
        #expect(again.nextDelay(now: start + .seconds(902), unit: 0.5) == .zero, "after a success the next failure retries at once")
        #expect(seconds(again.nextDelay(now: start + .seconds(902), unit: 0.5)) == 0.5)
    }
}
