import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// One accepted TCP connection: an HTTP/1.1 request that either upgrades to a portal WebSocket session or is
/// answered with a status. hummingbird-websocket's own channel answers every refused upgrade with 400; the
/// real portal answers 401 for a bad token and 400 for a bad device or User-Agent, with problem details whose
/// `code` clients act on (spec §8), so this channel records the refusal and writes it.
struct PortalChildChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, WebSocketSession)
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, ConnectRequest.Refusal?)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    private enum Verdict: Sendable {
        case accepted(WebSocketSession)
        case refused(ConnectRequest.Refusal)
    }

    let endpoints: [String: any PortalEndpoint]
    static let maxFrameSize = 1 << 20

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let verdict = NIOLockedValueBox<Verdict?>(nil)
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: Self.maxFrameSize,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        let path = String(head.uri.prefix { $0 != "?" })
                        guard let endpoint = endpoints[path] else {
                            verdict.withLockedValue { $0 = .refused(.init(status: 404, code: "not_found", detail: "Not found")) }
                            return nil
                        }
                        do {
                            let session = try await endpoint.accept(uri: head.uri, headers: head.headers)
                            verdict.withLockedValue { $0 = .accepted(session) }
                            return HTTPHeaders()
                        } catch let refusal as ConnectRequest.Refusal {
                            verdict.withLockedValue { $0 = .refused(refusal) }
                            return nil
                        }
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .accepted(let session)? = verdict.withLockedValue({ $0 }) else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        return .webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), session)
                    }
                })
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let refusal: ConnectRequest.Refusal? = switch verdict.withLockedValue({ $0 }) {
                        case .refused(let refusal)?: refusal
                        default: nil
                        }
                        return .http(try NIOAsyncChannel(wrappingChannelSynchronously: channel), refusal)
                    }
                })
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: .init(upgradeConfiguration: upgrade))
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .webSocket(let channel, let session):
                _ = try await WebSocketHandler.handle(
                    type: .server,
                    configuration: .init(extensions: [], autoPing: .disabled, closeTimeout: .seconds(2), validateUTF8: true,
                                         maxFrameSize: Self.maxFrameSize),
                    asyncChannel: channel, context: PortalWebSocketContext(logger: logger)
                ) { inbound, outbound, _ in
                    try await session(inbound, outbound)
                }
            case .http(let channel, let refusal):
                try await Self.answer(channel, refusal: refusal)
            }
        } catch {
            logger.debug("Connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// A refused upgrade gets its status; `/healthz` gets 200; anything else 404.
    private static func answer(_ channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
                               refusal: ConnectRequest.Refusal?) async throws {
        try await channel.executeThenClose { inbound, outbound in
            let status: Int
            let body: String
            let contentType: String
            if let refusal {
                // NIO does not pass on the request of a refused upgrade: answer without reading it.
                (status, body, contentType) = (refusal.status, refusal.problemJson, "application/problem+json; charset=utf-8")
            } else {
                var requests = inbound.makeAsyncIterator()
                guard case .head(let head)? = try await requests.next() else { return }
                (status, body) = head.uri == "/healthz" ? (200, "ok") : (404, "Not found")
                contentType = "text/plain; charset=utf-8"
            }
            let headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.utf8.count)"),
                                       ("Connection", "close")])
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers)))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
            try await outbound.write(.end(nil))
        }
    }
}

/// What runs on an upgraded connection until it ends.
typealias WebSocketSession = @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void

/// One WebSocket path of the portal: the upgrade checks, and the session that runs once they pass.
protocol PortalEndpoint: Sendable {
    func accept(uri: String, headers: HTTPHeaders) async throws(ConnectRequest.Refusal) -> WebSocketSession
}

struct PortalWebSocketContext: WebSocketContext {
    let logger: Logger
}
