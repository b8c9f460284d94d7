import Synchronization

/// Things that arrive from another task (channel events, pushes), kept in order; ``next(within:)`` waits for
/// the next one by polling every 5 ms, so a test waits for what it expects rather than sleeping a fixed time.
public final class EventQueue<Element: Sendable>: Sendable {
    private let state = Mutex<(items: [Element], taken: Int)>(([], 0))

    public init() {}

    public func push(_ element: Element) {
        state.withLock { $0.items.append(element) }
    }

    /// Everything pushed so far, taken or not.
    public var all: [Element] { state.withLock { $0.items } }

    public func next(within timeout: Duration = .seconds(20)) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let element: Element? = state.withLock { state in
                guard state.taken < state.items.count else { return nil }
                state.taken += 1
                return state.items[state.taken - 1]
            }
            if let element { return element }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw EventQueueTimeout(timeout: timeout)
    }

    /// The next element `match` accepts, skipping the others.
    public func next<T>(within timeout: Duration = .seconds(20), _ match: (Element) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw EventQueueTimeout(timeout: timeout) }
            if let found = match(try await next(within: remaining)) { return found }
        }
    }
}

public struct EventQueueTimeout: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "nothing arrived within \(timeout)" }
}
