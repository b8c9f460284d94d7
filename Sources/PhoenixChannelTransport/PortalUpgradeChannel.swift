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
/// exactly (Host without the port, no Origin, the User-Agent, the token in `X-Authorization`), TLS for `wss`,
/// the status, headers and body of a refused upgrade, and the Close frame that ended a connection.
struct PortalUpgradeChannel: ClientConnectionChannel {
    enum UpgradeResult: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused(RefusedResponse)
    }

    typealias Value = EventLoopFuture<UpgradeResult>
    /// The portal's Close frame, if it sent one; `nil` when the connection just ended.
    typealias Result = WebSocketCloseFrame?

    let host: String
    let requestTarget: String
    /// `Bearer <token>`.
    let authorization: String
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
            let refusal = channel.eventLoop.makePromise(of: RefusedResponse.self)
            let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(maxFrameSize: maxMessageSize) { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    .websocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                }
            }
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: host)
            headers.add(name: "User-Agent", value: userAgent)
            headers.add(name: "X-Authorization", value: authorization)
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: requestTarget, headers: headers)
            let configuration = NIOTypedHTTPClientUpgradeConfiguration<UpgradeResult>(
                upgradeRequestHead: head, upgraders: [upgrader],
                notUpgradingCompletionHandler: { _ in refusal.futureResult.map { .refused($0) } })
            var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
            pipeline.leftOverBytesStrategy = .forwardBytes
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
            let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPClientUpgradeHandler<UpgradeResult>.self)
            try channel.pipeline.syncOperations.addHandler(RefusedResponseRecorder(promise: refusal), position: .before(upgradeHandler))
            return result
        }
    }

    func handle(value: Value, logger: Logger) async throws -> WebSocketCloseFrame? {
        switch try await value.get() {
        case .refused(let response):
            throw PortalUpgradeRefused(response: response)
        case .websocket(let channel):
            return try await WebSocketHandler.handle(
                type: .client,
                configuration: .init(extensions: [], autoPing: .disabled, closeTimeout: .seconds(2), validateUTF8: true,
                                     maxFrameSize: maxMessageSize),
                asyncChannel: channel, context: PortalWebSocketContext(logger: logger), handler: handler)
        }
    }
}

/// What a refused upgrade said: enough for ``UpgradeRefusal``.
struct RefusedResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
}

/// The portal answered the upgrade with something other than 101.
struct PortalUpgradeRefused: Error {
    var response: RefusedResponse
}

struct PortalWebSocketContext: WebSocketContext {
    let logger: Logger
}

/// Steps out of the pipeline on a 101 (the bytes that follow are WebSocket frames, not HTTP); otherwise reads
/// the refusal's head and up to 16 KiB of its body, for the status, `Retry-After` and problem details.
private final class RefusedResponseRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart
    static let maxBody = 16 * 1024

    private let promise: EventLoopPromise<RefusedResponse>
    private var response: RefusedResponse?
    private var completed = false

    init(promise: EventLoopPromise<RefusedResponse>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            complete(.failure(ChannelError.inappropriateOperationForState))
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        case .head(let head):
            response = RefusedResponse(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: [])
        case .body(var buffer):
            let room = Self.maxBody - (response?.body.count ?? 0)
            if room > 0, let bytes = buffer.readBytes(length: min(room, buffer.readableBytes)) { response?.body += bytes }
        case .end:
            finish()
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.inappropriateOperationForState))
    }

    private func finish() {
        complete(response.map { .success($0) } ?? .failure(ChannelError.eof))
    }

    /// Every promise is completed exactly once, or NIO reports a leak.
    private func complete(_ result: Result<RefusedResponse, any Error>) {
        guard !completed else { return }
        completed = true
        promise.completeWith(result)
    }
}
