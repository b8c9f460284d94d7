import Foundation
import Logging
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import TestSupport

/// A client or gateway connection to the portal under test, through our `PortalChannel`.
final class Peer: Sendable {
    let channel: PortalChannel<PhoenixRawPayload>
    let events = EventQueue<PortalChannel<PhoenixRawPayload>.Event>()
    let publicKey: String

    /// - Parameter version: the Firezone version announced; the late-2025 releases unless set.
    init(port: Int, mode: LoginUrl.Mode, token: String, externalId: String, api: PortalApi = .v2, version: String? = nil) {
        publicKey = Self.randomKey()
        let url = try! LoginUrl(apiUrl: "ws://127.0.0.1:\(port)", mode: mode, token: token, device: .init(id: externalId, name: externalId),
                                api: api)
        let agent = UserAgent(osType: "Debian", osVersion: "12.0.0", component: mode == .client ? .headlessClient : .gateway,
                              version: version ?? (mode == .client ? "1.5.5" : "1.4.19"), architecture: "x86_64", kernelRelease: "6.1.0")
        var logger = Logger(label: "peer")
        logger.logLevel = .critical
        channel = PortalChannel(configuration: .init(url: url, publicKey: publicKey, userAgent: agent, maxElapsed: .seconds(5),
                                                     executor: ThreadPerJobExecutor.shared),
                                topic: mode.rawValue, logger: logger)
    }

    static func randomKey() -> String {
        Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    /// A random key as a query value (`+`, `/`, `=` escaped).
    static func randomKeyForUrl() -> String {
        randomKey().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
    }

    func start() -> Task<Void, any Error> {
        Task(executorPreference: ThreadPerJobExecutor.shared) { [channel, events] in try await channel.run { events.push($0) } }
    }

    func fatalError() async -> PhoenixChannelError? {
        do {
            try await channel.run { [events] in events.push($0) }
            return nil
        } catch {
            return error
        }
    }

    /// Sends the message as a client or gateway on this peer's API does.
    func send(_ message: some PortalEgress) {
        for frame in message.frames(for: channel.configuration.url.api) { channel.send(event: frame.event, payload: frame.payload) }
    }

    /// The next push, decoded as `Message` (replies and other events skipped).
    func nextPush<Message: PortalPush>(_ type: Message.Type) async throws -> Message {
        try await events.next { event in
            guard case .message(let push) = event else { return nil }
            return try? Message(event: push.event, payload: push.json)
        }
    }

    /// The names of the pushes received so far.
    var pushEvents: [String] {
        events.all.compactMap { if case .message(let push) = $0 { push.event } else { nil } }
    }

    /// The reason of the next error reply.
    func nextErrorReason() async throws -> String {
        try await events.next { event in
            guard case .errorReply(let reason) = event else { return nil }
            return reason
        }
    }
}

protocol PortalPush: Sendable {
    init(event: String, payload: String) throws(PortalMessageError)
}

extension ClientIngress: PortalPush {}
extension GatewayIngress: PortalPush {}
