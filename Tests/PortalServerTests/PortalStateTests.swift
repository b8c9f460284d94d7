import Logging
import PhoenixChannel
import PortalMessages
@testable import PortalServer
import SansIO
import Synchronization
import Testing

/// `PortalState` in process, with time injected: the failure reasons of `flow_creation_failed` and access
/// expiry, which the end-to-end tests do not reach.
@Suite struct PortalStateTests {
    let now = FakeWallClock(1_800_000_000)
    let store: DeviceStore
    let state: PortalState

    init() throws {
        store = try DeviceStore(path: nil)
        var config = try PortalConfig(yaml: PortalEndToEndTests.config)
        config.accessLifetime = .seconds(3_600)
        let clock = now
        state = PortalState(config: config, store: store, logger: Logger(label: "test"), wallClock: { clock.seconds })
    }

    /// Joins like a connection would; returns its outbox, the frames after `init`, and `init`'s payload.
    func connect(_ role: ConnectRequest.Role, token: String, externalId: String) async throws
        -> (Outbox, AsyncStream<String>.Iterator, String)
    {
        let request = try ConnectRequest(
            role: role, query: ["token": token, "external_id": externalId, "public_key": Self.key(externalId)],
            authorization: nil, userAgent: role == .client ? "Debian/12.0.0 headless-client/1.5.5" : "Debian/12.0.0 gateway/1.4.19",
            tokenIsKnown: { _ in true })
        let outbox = Outbox()
        let device = try store.device(kind: role == .client ? .client : .gateway, externalId: externalId)
        if role == .client {
            await state.clientJoined(request, device: device, api: .v1, outbox: outbox)
        } else {
            await state.gatewayJoined(request, device: device, api: .v1, outbox: outbox)
        }
        var frames = outbox.frames.makeAsyncIterator()
        let hello = try Self.push(await frames.next())
        #expect(hello.event == "init")
        return (outbox, frames, hello.payload)
    }

    static func key(_ seed: String) -> String {
        WireGuardKey(bytes: Array(repeating: UInt8(truncatingIfNeeded: seed.hashValue), count: 32))!.base64
    }

    static func push(_ text: String?) throws -> PhoenixFrame {
        try PhoenixFrame(decoding: try #require(text))
    }

    /// A client's or gateway's message as the portal's session decodes it: inside its frame, in one pass.
    /// A message as the portal's v1 session decodes it.
    static func decoded<Message: PhoenixPayload & PortalEgress>(_ message: Message) -> Result<Message, PhoenixPayloadError> {
        let frame = message.frames(for: .v1)[0]
        return decoded(frame.event, frame.payload, as: Message.self)
    }

    static func decoded<Message: PhoenixPayload>(_ event: String, _ payload: String, as type: Message.Type)
        -> Result<Message, PhoenixPayloadError> {
        let text = PhoenixFrame(topic: "t", event: event, payload: payload, ref: 1).encoded()
        guard let frame = try? PhoenixInbound<Message>(decoding: text) else {
            return .failure(PhoenixPayloadError(event: event, reason: "not a frame"))
        }
        return frame.payload
    }

    @Test func flowCreationFailsNotFoundThenOffline() async throws {
        let (client, clientFrames, _) = try await connect(.client, token: "alice-token", externalId: "laptop")
        var frames = clientFrames
        let unknown = ClientEgress.createFlow(CreateFlow(resourceId: ResourceId.random(), connectedGatewayIds: []))
        #expect(await state.handleClientMessage(from: client, message: Self.decoded(unknown)) == .none)
        let notFound = try ClientIngress(event: "flow_creation_failed", payload: try Self.push(await frames.next()).payload)
        guard case .flowCreationFailed(let failure) = notFound else { throw PortalProcessError("not a failure") }
        #expect(failure.reason == .notFound)

        let intranet = try #require(await state.config.resources.first { $0.name == "intranet" }).id
        let flow = ClientEgress.createFlow(CreateFlow(resourceId: intranet, connectedGatewayIds: []))
        _ = await state.handleClientMessage(from: client, message: Self.decoded(flow))
        guard case .flowCreationFailed(let offline) = try ClientIngress(event: "flow_creation_failed",
                                                                        payload: try Self.push(await frames.next()).payload)
        else { throw PortalProcessError("not a failure") }
        #expect(offline.reason == .offline && offline.resourceId == intranet, "no gateway of the site is connected")
        #expect(await state.handleClientMessage(from: client, message: Self.decoded("create_flow", "{}", as: ClientEgress.self)) == .error(reason: "unknown_message"),
                "a create_flow without its keys")
    }

    @Test func authorizationsExpireAndLeaveTheGatewaysInit() async throws {
        let (client, firstClientFrames, _) = try await connect(.client, token: "alice-token", externalId: "laptop")
        let (gateway, firstGatewayFrames, _) = try await connect(.gateway, token: "gw-token", externalId: "gw")
        var clientFrames = firstClientFrames
        var gatewayFrames = firstGatewayFrames
        let intranet = try #require(await state.config.resources.first { $0.name == "intranet" }).id
        let flow = ClientEgress.createFlow(CreateFlow(resourceId: intranet, connectedGatewayIds: []))
        _ = await state.handleClientMessage(from: client, message: Self.decoded(flow))
        guard case .authorizeFlow(let authorize) = try GatewayIngress(event: "authorize_flow",
                                                                       payload: try Self.push(await gatewayFrames.next()).payload)
        else { throw PortalProcessError("no authorize_flow") }
        #expect(authorize.expiresAt.map { $0 == 1_800_003_600 } == true, "now + access_lifetime_seconds")
        let authorized = GatewayEgress.flowAuthorized(ref: authorize.ref)
        #expect(await state.handleGatewayMessage(from: gateway, message: Self.decoded(authorized)) == .ok("{}"))
        _ = await clientFrames.next()  // flow_created

        func authorizationsOnRejoin() async throws -> [AccessExpiry] {
            let (_, _, payload) = try await connect(.gateway, token: "gw-token", externalId: "gw")
            guard case .initialize(let hello) = try GatewayIngress(event: "init", payload: payload) else {
                throw PortalProcessError("no init")
            }
            return hello.authorizations
        }
        #expect(try await authorizationsOnRejoin() == [AccessExpiry(clientId: authorize.client.id, resourceId: intranet,
                                                                    expiresAt: 1_800_003_600)])
        now.seconds = 1_800_003_600
        await state.expireAccess()
        #expect(try await authorizationsOnRejoin().isEmpty)
    }
}

/// Unix seconds that a test sets.
final class FakeWallClock: Sendable {
    private let value: Mutex<Int64>

    init(_ seconds: Int64) {
        value = Mutex(seconds)
    }

    var seconds: Int64 {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// coturn ties an allocation to the username that made it: a node that rejoins (a portal restart, a lost
/// WebSocket) keeps its socket, so it must get the same TURN username, or it can neither reuse nor delete it.
@Suite struct RelayCredentialTests {
    @Test("a client and a gateway rejoining an hour later, or after a restart, get the same TURN credentials")
    func stableAcrossRejoins() async throws {
        let store = try DeviceStore(path: nil)
        let config = try PortalConfig(yaml: PortalEndToEndTests.config)
        let clock = FakeWallClock(1_800_000_000)
        var payloads: [String: [String]] = [:]
        for restart in 0..<2 {
            let state = PortalState(config: config, store: store, logger: Logger(label: "test"), wallClock: { clock.seconds })
            let tests = PortalStateTests.self
            for (role, token, id) in [(ConnectRequest.Role.client, "alice-token", "laptop"), (.gateway, "gw-token", "gw")] {
                let request = try ConnectRequest(role: role, query: ["token": token, "external_id": id, "public_key": tests.key(id)],
                                                 authorization: nil, userAgent: role == .client ? "Debian/12.0.0 headless-client/1.5.5" : "Debian/12.0.0 gateway/1.4.19",
                                                 tokenIsKnown: { _ in true })
                let outbox = Outbox()
                let device = try store.device(kind: role == .client ? .client : .gateway, externalId: id)
                if role == .client {
                    await state.clientJoined(request, device: device, api: .v1, outbox: outbox)
                } else {
                    await state.gatewayJoined(request, device: device, api: .v1, outbox: outbox)
                }
                var frames = outbox.frames.makeAsyncIterator()
                let initial = try tests.push(await frames.next())
                let relays = try #require(initial.payload.range(of: "\"relays\":").map { String(initial.payload[$0.lowerBound...]) })
                #expect(relays.contains("\"expires_at\":2145916800"), "\(relays)")
                payloads[id, default: []].append(String(relays.prefix(while: { $0 != "]" })))
            }
            clock.seconds += Int64(3_600 * (restart + 1))
        }
        for (id, seen) in payloads { #expect(Set(seen).count == 1, "\(id): \(seen)") }
    }
}
