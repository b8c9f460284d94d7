import AppOptions
import Logging
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import Synchronization

/// The relay's connection to the portal (spec `snownet.md` §3.12): it announces its addresses in the login URL,
/// joins topic `relay` with its stamp secret and is ready once `init` arrives. It keeps relaying while the portal
/// is away, reconnecting for up to 24 h; ``run()`` throws when the portal refuses it or that time runs out.
final class RelayPortalLink: Sendable {
    private let channel: PortalChannel<RelayIngress>
    private let logger: Logger
    private let initialized = Atomic<Bool>(false)

    init(options: RelayOptions, portal: RelayPortal, version: String, logger: Logger) throws {
        let addresses = LoginUrl.RelayAddresses(ipv4: options.publicIPv4.map { "\($0)" }, ipv6: options.publicIPv6.map { "\($0)" },
                                                listenPort: options.listenPort)
        let url = try LoginUrl(apiUrl: portal.apiUrl, mode: .relay, token: portal.token, device: .init(id: "", name: portal.name),
                               relay: addresses)
        channel = PortalChannel(
            configuration: .init(url: url, publicKey: nil, userAgent: .current(component: .relay, version: version),
                                 maxElapsed: UserAgent.Component.relay.defaultMaxElapsed),
            topic: "relay", joinPayload: RelayJoin(stampSecret: options.secret).json, logger: Logger(label: "firezone_relay::portal"))
        self.logger = logger
    }

    /// Whether the portal has sent `init` on the current connection: `/readyz`.
    var isReady: Bool { initialized.load(ordering: .relaxed) }

    /// Connects and stays connected until ``close()`` (returns) or a fatal refusal (throws).
    func run() async throws(PhoenixChannelError) {
        let host = channel.configuration.url.baseUrl
        try await channel.run { [self] event in
            switch event {
            case .joined:
                logger.debug("Joined the portal's relay topic", metadata: ["host": "\(host)"])
            case .message(.initialize):
                initialized.store(true, ordering: .relaxed)
                logger.info("Connected to portal", metadata: ["host": "\(host)"])
            case .unreadable(let error):
                logger.warning("Unreadable portal message \(error)")
            case .errorReply(let reason):
                logger.warning("The portal refused a message: \(reason)")
            case let .hiccup(delay, reason):
                initialized.store(false, ordering: .relaxed)
                logger.info("Hiccup in portal connection: \(reason)", metadata: ["backoff": "\(delay)"])
            }
        }
    }

    /// Leaves the portal gracefully; ``run()`` returns.
    func close() {
        channel.close()
    }
}
