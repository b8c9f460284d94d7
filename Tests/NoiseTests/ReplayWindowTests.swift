@testable import Noise
import SansIO
import Testing

@Suite struct ReplayWindowTests {
    @Test func acceptsEachCounterOnceInAnyOrderWithinTheWindow() {
        let window = WindowBox()
        #expect(window.accept(0))
        #expect(!window.accept(0), "duplicate")
        #expect(window.accept(5))
        #expect(window.accept(3), "late but inside the window")
        #expect(!window.accept(3))
        #expect(window.accept(1))
        #expect(!window.mayAccept(5))
    }

    @Test func windowEdgeIsExact() {
        let window = WindowBox()
        let highest: UInt64 = 100_000
        #expect(window.accept(highest))
        let oldestAccepted = highest - ReplayWindow.windowSize + 1
        #expect(!window.mayAccept(oldestAccepted - 1), "one too old")
        #expect(window.accept(oldestAccepted))
        #expect(ReplayWindow.windowSize >= 2048)
    }

    @Test func largeJumpForgetsOldCountersAndClearsReusedBits() {
        let window = WindowBox()
        for counter in 0..<200 { #expect(window.accept(UInt64(counter))) }
        let jump: UInt64 = 200 + 8192 * 3 + 17
        #expect(window.accept(jump))
        #expect(!window.mayAccept(150), "far behind now")
        // Counters just behind the new highest share bitmap words with old, now cleared, counters.
        for counter in (jump - 300)..<jump { #expect(window.accept(counter), "counter \(counter)") }
    }

    @Test func countersAtTheRejectLimitAreRefused() {
        let window = WindowBox()
        #expect(!window.accept(WireGuardLimits.rejectAfterMessages))
        #expect(!window.accept(UInt64.max))
        #expect(window.accept(WireGuardLimits.rejectAfterMessages - 1))
    }
}

/// Lets `#expect` call the mutating `accept`.
final class WindowBox {
    var window = ReplayWindow()
    func accept(_ counter: UInt64) -> Bool { window.accept(counter) }
    func mayAccept(_ counter: UInt64) -> Bool { window.mayAccept(counter) }
}
