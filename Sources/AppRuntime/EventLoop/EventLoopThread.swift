import Foundation

/// An ``EventLoop`` on a thread of its own.
public final class EventLoopThread<Plane: DataPlane>: @unchecked Sendable {
    private let loop: EventLoop<Plane>
    private let finished = DispatchSemaphore(value: 0)

    public init(_ loop: EventLoop<Plane>) {
        self.loop = loop
        Thread { [self] in
            loop.run()
            finished.signal()
        }.start()
    }

    /// Stops the loop after it has flushed what is queued before this call (Goodbyes) and waits for its thread.
    public func stopAndJoin() {
        loop.execute { [loop] _, _ in loop.stop() }
        finished.wait()
    }
}
