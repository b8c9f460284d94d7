import Hummingbird
import Logging
import ServiceLifecycle

/// A Hummingbird application in a service group of its own: ``run()`` serves until ``shutDown()`` or until the
/// calling task is cancelled, and either way the server finishes its requests and closes gracefully.
struct GracefulServer: Sendable {
    private let group: ServiceGroup

    init(_ app: some Service, logger: Logger) {
        group = ServiceGroup(configuration: .init(services: [app], logger: logger))
    }

    func run() async throws {
        // The server runs in a task of its own that the caller's cancellation does not reach: cancelled directly,
        // Hummingbird logs errors about its closed channels. Cancellation shuts it down gracefully instead.
        let group = group
        let server = Task { try await group.run() }
        try await withTaskCancellationHandler {
            try await server.value
        } onCancel: {
            Task { await group.triggerGracefulShutdown() }
        }
    }

    func shutDown() async {
        await group.triggerGracefulShutdown()
    }
}
