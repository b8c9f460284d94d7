#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket
import PhoenixChannel
import SansIO
import WSClient
// WSCore's frame handler (ping/pong, close handshake, fragments, masking) is SPI; we use it rather than a
// second copy of it, because WSClient's own channel sends `Host` with the port and an `Origin`, and
// reports a refused upgrade without its HTTP status, all of which §1.2 and §1.8 need otherwise.
@_spi(WSInternal) import WSCore

/// One WebSocket connection to the portal on swift-websocket's `ClientConnection`: the §1.2 upgrade request
/// exactly (Host without the port, no Origin, the User-Agent), TLS for `wss`, and the HTTP status of a
/// refused upgrade.
struct PortalUpgradeChannel: ClientConnectionChannel {
    enum UpgradeResult: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused(status: Int?)
    }

    typealias Value = EventLoopFuture<UpgradeResult>

    let host: String
    let requestTarget: String
    let userAgent: String
    let sslContext: NIOSSLContext?
    let maxMessageSize: Int
    /// SO_MARK for the TCP socket, set before it connects (Linux; needs CAP_NET_ADMIN).
    let firewallMark: UInt32?
    let handler: WebSocketDataHandler<PortalWebSocketContext>

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            #if os(Linux)
            if let firewallMark {
                try channel.syncOptions?.setOption(ChannelOptions.socketOption(.init(rawValue: SO_MARK)), value: .init(firewallMark))
            }
            #endif
            if let sslContext {
                let serverName = IpAddress(host) == nil ? host : nil  // no SNI for an IP literal
                try channel.pipeline.syncOperations.addHandler(
                    try NIOSSLClientHandler(context: sslContext, serverHostname: serverName), position: .first)
            }
            let status = NIOLockedValueBox<Int?>(nil)
            let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(maxFrameSize: maxMessageSize) { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    .websocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                }
            }
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: host)
            headers.add(name: "User-Agent", value: userAgent)
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: requestTarget, headers: headers)
            let configuration = NIOTypedHTTPClientUpgradeConfiguration<UpgradeResult>(
                upgradeRequestHead: head, upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeSucceededFuture(.refused(status: status.withLockedValue { $0 }))
                })
            var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
            pipeline.leftOverBytesStrategy = .forwardBytes
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
            let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPClientUpgradeHandler<UpgradeResult>.self)
            try channel.pipeline.syncOperations.addHandler(ResponseStatusRecorder(status: status), position: .before(upgradeHandler))
            return result
        }
    }

    func handle(value: Value, logger: Logger) async throws {
        switch try await value.get() {
        case .refused(let status):
            throw PortalUpgradeRefused(status: status)
        case .websocket(let channel):
            _ = try await WebSocketHandler.handle(
                type: .client,
                configuration: .init(extensions: [], autoPing: .disabled, closeTimeout: .seconds(2), validateUTF8: true,
                                     maxFrameSize: maxMessageSize),
                asyncChannel: channel, context: PortalWebSocketContext(logger: logger), handler: handler)
        }
    }
}

/// The portal answered the upgrade with something other than 101.
struct PortalUpgradeRefused: Error {
    var status: Int?
}

struct PortalWebSocketContext: WebSocketContext {
    let logger: Logger
}

/// Notes the status of the upgrade response, then steps out of the pipeline (after a 101 the bytes that
/// follow are WebSocket frames, not HTTP).
private final class ResponseStatusRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    private let status: NIOLockedValueBox<Int?>

    init(status: NIOLockedValueBox<Int?>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            status.withLockedValue { $0 = Int(head.status.code) }
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}
