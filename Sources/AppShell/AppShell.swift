import AppRuntime
import Logging
import Noise
import PhoenixChannel
import PhoenixChannelTransport
import PortalMessages
import SansIO
import Tunnel

/// What the client and the gateway share around their tunnel: the data plane on an ``EventLoop`` thread and
/// the portal channel feeding it. Portal messages go to the plane on the loop; after every batch the plane's
/// own messages go to the portal and the app sees the rest of its output. ``stop()`` says Goodbye to every peer
/// and ends the loop.
///
/// ```swift
/// let shell = try AppShell(plane: state, tun: tun, sockets: sockets, channel: channel, logger: logger) { state, now in
///     while let event = state.pollEvent() { handle(event) }
/// }
/// try await shell.runPortal(host: url.host)     // until the channel closes or fails for good
/// shell.stop()
/// ```
public final class AppShell<Plane: PortalPlane>: Sendable {
    public let channel: PortalChannel<Plane.Ingress>
    public let loop: EventLoop<Plane>
    private let thread: EventLoopThread<Plane>
    private let logger: Logger

    /// `firewallMark` marks the streams to relays UDP cannot reach as the sockets are marked (the client's).
    public init(plane: Plane, tun: TunDevice, sockets: [UdpSocket], channel: PortalChannel<Plane.Ingress>, logger: Logger,
                firewallMark: UInt32? = nil, afterBatch: @escaping (Plane, Instant) -> Void) throws {
        self.channel = channel
        self.logger = logger
        let api = channel.configuration.url.api
        let tunnelLogger = Logger(label: "snownet")
        loop = try EventLoop(plane: plane, tun: tun, sockets: sockets, firewallMark: firewallMark, logger: tunnelLogger) { plane, now in
            while let message = plane.pollPortalMessage() {
                for frame in message.frames(for: api) { channel.send(event: frame.event, payload: frame.payload) }
            }
            while let report = plane.pollReport() { tunnelLogger.log(report) }
            afterBatch(plane, now)
        }
        thread = EventLoopThread(loop)
    }

    /// Runs the portal channel until it closes (returns) or fails for good (throws): every push goes to the
    /// plane on the loop; joins, hiccups and pushes the plane cannot use are logged.
    public func runPortal(host: String) async throws(PhoenixChannelError) {
        let loop = loop, logger = logger
        try await channel.run { event in
            switch event {
            case .joined:
                logger.info("Connected to portal", metadata: ["host": "\(host)"])
            case .message(let message):
                loop.execute { plane, now in plane.handle(message, now: now) }
            case .unreadable(let error):
                logger.warning("Unreadable portal message \(error)")
            case .errorReply(let reason):
                logger.warning("The portal refused a message: \(reason)")
            case let .hiccup(delay, reason):
                logger.info("Hiccup in portal connection: \(reason)", metadata: ["backoff": "\(delay)"])
            }
        }
    }

    /// Goodbye to every peer, then the loop flushes it and stops.
    public func stop() {
        loop.execute { plane, now in plane.shutdown(now: now) }
        thread.stopAndJoin()
    }

    /// Firezone's listen port, 49152 + 3473 ("FIRE" on a phone pad): an admin can forward it through a NAT,
    /// which is what makes the optimistic candidates of spec `snownet.md` §2.4 find a direct path.
    public static var defaultListenPort: UInt16 { 52625 }

    /// The tunnel's UDP sockets on every address: IPv4, and IPv6 where the host has it, each on `preferredPort`
    /// when it is free and on a port the kernel picks when not (logged at INFO).
    public static func bindSockets(options: UdpSocket.Options = .init(), preferredPort: UInt16 = defaultListenPort,
                                   logger: Logger? = nil) throws -> [UdpSocket] {
        var sockets = [try bind(ip: "0.0.0.0", preferredPort, options, logger)]
        if let v6 = try? bind(ip: "::", preferredPort, options, logger) { sockets.append(v6) }
        return sockets
    }

    private static func bind(ip: String, _ port: UInt16, _ options: UdpSocket.Options, _ logger: Logger?) throws -> UdpSocket {
        let bound = try UdpSocket.bind(IpAddress(ip)!, preferringPort: port, options: options)
        if let unavailable = bound.unavailable {
            logger?.info("UDP port \(port) is not available; listening on \(bound.socket.localAddress) instead",
                         metadata: ["error": "\(unavailable)"])
        }
        return bound.socket
    }
}

extension PortalChannel {
    /// The tunnel has no relay: on the v2 API, `no_relays`, which the portal answers with `relays_presence`;
    /// on v1, a new connection for a fresh `init` (spec `portal-phoenix.md` §5.2, §8).
    public func requestRelays(logger: Logger) {
        switch configuration.url.api {
        case .v2:
            logger.info("No relay is known; asking the portal for relays")
            send(event: "no_relays", payload: "{}")
        case .v1:
            logger.info("No relay is known; reconnecting to the portal for a fresh init")
            reconnect(reason: "no relays")
        }
    }
}

extension Logger {
    /// A ``TunnelReport`` at its level, its fields as metadata.
    public func log(_ report: TunnelReport) {
        let metadata = report.fields.mapValues { Logger.MetadataValue.string($0) }
        switch report.level {
        case .debug: debug("\(report.message)", metadata: metadata)
        case .info: info("\(report.message)", metadata: metadata)
        }
    }
}
