import PhoenixChannel
import SansIO
import Testing

/// The channel state machine on a virtual clock: the owner's side is played by the test; role messages are
/// kept as raw JSON.
typealias Core = PhoenixChannelCore<PhoenixRawPayload>

@Suite struct PhoenixChannelCoreTests {
    var now = Instant(nanoseconds: 1_000_000_000)

    func drain(_ channel: inout Core, at now: Instant) -> [Core.Output] {
        var outputs: [Core.Output] = []
        while let output = channel.pollOutput(now: now) { outputs.append(output) }
        return outputs
    }

    func reply(_ ref: Int, topic: String = "client", status: String = "ok", reason: String? = nil) -> String {
        let response = reason.map { #"{"reason":"\#($0)"}"# } ?? "{}"
        return #"{"topic":"\#(topic)","event":"phx_reply","payload":{"status":"\#(status)","response":\#(response)},"ref":\#(ref)}"#
    }

    func joined() -> Core {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.received(reply(0), now: now, unit: 0.5)
        _ = drain(&channel, at: now)
        return channel
    }

    @Test func joinGoesFirstAndMessagesWaitForItsReply() {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.send(event: "create_flow", payload: #"{"resource_id":"r"}"#)
        channel.connect()
        #expect(drain(&channel, at: now) == [.openConnection])
        channel.connectionOpened(now: now)
        #expect(drain(&channel, at: now) == [.send(#"{"topic":"client","event":"phx_join","payload":null,"ref":0}"#)],
                "only the join before its reply")
        channel.received(reply(0), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.joined, .send(#"{"topic":"client","event":"create_flow","payload":{"resource_id":"r"},"ref":1}"#)])
    }

    @Test func aHeartbeatEveryTenSecondsWhateverElseIsSentAndFourUnansweredReconnect() {
        var channel = joined()
        #expect(channel.pollTimeout() == now + .seconds(10))
        channel.send(event: "x", payload: "{}")
        _ = drain(&channel, at: now + .seconds(5))
        #expect(channel.pollTimeout() == now + .seconds(10), "sending does not move the heartbeat")
        channel.handleTimeout(now: now + .seconds(10), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(10)) == [.send(#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":2}"#)])
        channel.received(reply(2, topic: "phoenix"), now: now + .seconds(11), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(11)).isEmpty, "a heartbeat reply is the channel's own business")
        for second in [20, 30, 40] {
            channel.handleTimeout(now: now + .seconds(second), unit: 0.5)
            #expect(drain(&channel, at: now + .seconds(second)).count == 1, "heartbeat at \(second) s")
        }
        channel.handleTimeout(now: now + .seconds(50), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(50)) == [.hiccup(delay: .milliseconds(500), reason: "too many heartbeats were unanswered")],
                "three unanswered and a fourth due: reconnect, on the reconnect schedule since the channel had joined")
    }

    @Test func beforeTheFirstJoinRetriesAreOneSecondApartForFifteenSeconds() {
        var channel = Core(topic: "gateway", maxElapsed: .seconds(86_400))
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.handleTimeout(now: now + .seconds(5), unit: 0.9)
        #expect(drain(&channel, at: now + .seconds(5)) == [.hiccup(delay: .seconds(1), reason: "room join timed out")], "no jitter")
        var at = now + .seconds(6)
        var failures = 0
        while true {
            channel.handleTimeout(now: at, unit: 0.9)
            guard drain(&channel, at: at) == [.openConnection] else { break }
            channel.connectionFailed(.network("connection refused"), now: at, unit: 0.9)
            failures += 1
            let outputs = drain(&channel, at: at)
            if outputs == [.fatal(.maxRetriesReached(lastError: "connection refused"))] { break }
            #expect(outputs == [.hiccup(delay: .seconds(1), reason: "connection refused")])
            at = at + .seconds(1)
        }
        #expect(failures == 15 && at == now + .seconds(20), "the 15 s budget counts from the first failure, at 5 s: \(failures)")
    }

    @Test func afterAJoinTheReconnectScheduleAndItsPartitionTimeApply() {
        var channel = Core(topic: "gateway", maxElapsed: .seconds(60))
        channel.connect()
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.received(reply(0, topic: "gateway"), now: now, unit: 0.5)
        _ = drain(&channel, at: now)
        channel.connectionFailed(.streamEnded, now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.hiccup(delay: .milliseconds(500), reason: "the connection ended")])
        channel.handleTimeout(now: now + .seconds(1), unit: 0.5)
        _ = drain(&channel, at: now + .seconds(1))
        channel.connectionFailed(.refused(UpgradeRefusal(status: 502)), now: now + .seconds(1), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(1)) == [.hiccup(delay: .milliseconds(750), reason: "the portal answered HTTP 502")])
        channel.handleTimeout(now: now + .seconds(2), unit: 0.5)
        _ = drain(&channel, at: now + .seconds(2))
        channel.connectionFailed(.network("refused"), now: now + .seconds(61), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(61)) == [.fatal(.maxRetriesReached(lastError: "refused"))], "60 s partition used up")
    }

    @Test func retryAfterReplacesTheBackoff() {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionFailed(.refused(UpgradeRefusal(status: 429, retryAfter: .seconds(120))), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.hiccup(delay: .seconds(120), reason: "the portal answered HTTP 429")])
        #expect(channel.pollTimeout() == now + .seconds(120))
    }

    @Test(arguments: [
        (UpgradeRefusal(status: 401, problem: ProblemDetails(code: "invalid_token", detail: "Invalid token")), PhoenixChannelError.invalidToken),
        (UpgradeRefusal(status: 401, problem: ProblemDetails(code: "missing_token")), .invalidToken),
        (UpgradeRefusal(status: 401, problem: ProblemDetails(code: "device_untrusted", detail: "Device is not trusted")),
         .authenticationFailed(detail: "Device is not trusted")),
        (UpgradeRefusal(status: 401), .authenticationFailed(detail: "no reason provided")),
    ])
    func only401IsFatalAndOnlyABadTokenSignsOut(refusal: UpgradeRefusal, expected: PhoenixChannelError) {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionFailed(.refused(refusal), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.fatal(expected)])
        #expect(expected.requiresSignIn == (expected == .invalidToken))
    }

    @Test(arguments: [403, 404, 408, 422, 429, 500])
    func everyOtherStatusIsRetried(status: Int) {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionFailed(.refused(UpgradeRefusal(status: status, problem: ProblemDetails(code: "account_disabled"))), now: now, unit: 0.5)
        guard case .hiccup(let delay, _)? = drain(&channel, at: now).first else {
            Issue.record("HTTP \(status) was not retried")
            return
        }
        #expect(delay == .seconds(1))
    }

    @Test func aCloseFrameReconnectsAndRequestIdsStartOverOnTheNewConnection() {
        var channel = joined()
        channel.send(event: "x", payload: "{}")
        _ = drain(&channel, at: now)
        channel.connectionFailed(.closedByPortal(code: 1001, reason: "going away"), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.hiccup(delay: .milliseconds(500), reason: "the portal sent a WebSocket close frame: 1001 going away")])
        channel.handleTimeout(now: now + .seconds(1), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(1)) == [.openConnection])
        channel.connectionOpened(now: now + .seconds(1))
        #expect(drain(&channel, at: now + .seconds(1)) == [.send(#"{"topic":"client","event":"phx_join","payload":null,"ref":0}"#)])
    }

    @Test func anExactDuplicateOfAQueuedMessageIsNotQueuedAgain() {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.send(event: "x", payload: #"{"a":1}"#)
        channel.send(event: "x", payload: #"{"a":1}"#)
        channel.send(event: "x", payload: #"{"a":2}"#)
        channel.send(event: "y", payload: #"{"a":1}"#)
        channel.connect()
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.received(reply(0), now: now, unit: 0.5)
        #expect(drain(&channel, at: now).count == 4, "joined and three messages")
    }

    @Test func reconnectOnRequestIsImmediate() {
        var channel = joined()
        channel.reconnect(reason: "no relays")
        #expect(drain(&channel, at: now) == [.hiccup(delay: .zero, reason: "no relays"), .openConnection])
    }

    @Test func joinErrorTokenExpiredAndCertificatesAreFatal() {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.received(reply(0, status: "error", reason: "invalid_version"), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.fatal(.loginFailed(reason: "invalid_version"))])

        var expired = joined()
        expired.received(#"{"topic":"relay","event":"disconnect","payload":{"reason":"token_expired"},"ref":null}"#, now: now, unit: 0.5)
        #expect(drain(&expired, at: now) == [.fatal(.tokenExpired)])
        #expect(PhoenixChannelError.tokenExpired.requiresSignIn)

        var certificate = Core(topic: "client", maxElapsed: nil)
        certificate.connect()
        certificate.connectionFailed(.invalidPeerCertificate, now: now, unit: 0.5)
        #expect(drain(&certificate, at: now).last == .fatal(.invalidPeerCertificate))
    }

    @Test func unmatchedTopicRejoinsAndPhxCloseReconnects() {
        var channel = joined()
        channel.send(event: "x", payload: "{}")
        _ = drain(&channel, at: now)
        channel.received(reply(1, status: "error", reason: "unmatched topic"), now: now, unit: 0.5)
        let outputs = drain(&channel, at: now)
        #expect(outputs.count == 2)
        #expect(outputs.first == .errorReply(reason: "unmatched topic"))
        #expect(outputs.last == .send(#"{"topic":"client","event":"phx_join","payload":null,"ref":2}"#), "rejoin")
        #expect(channel.pollTimeout() == now + .seconds(5), "the rejoin has its own 5 s timeout")
        channel.received(#"{"topic":"client","event":"phx_close","payload":{},"ref":null}"#, now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.hiccup(delay: .milliseconds(500), reason: "the portal closed the channel")])
    }

    @Test func queueSurvivesReconnectsAndDropsWhenOverfull() {
        var channel = Core(topic: "client", maxElapsed: nil)
        for index in 0..<33 { channel.send(event: "m\(index)", payload: "{}") }
        channel.send(event: "after", payload: "{}")
        channel.connect()
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.received(reply(0), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.joined, .send(#"{"topic":"client","event":"after","payload":{},"ref":1}"#)],
                "33 queued: the whole queue went before 'after' was added")
    }

    @Test func garbageFramesAreCountedNotFatal() {
        var channel = joined()
        channel.received("not json", now: now, unit: 0.5)
        channel.received(#"{"topic":"client","event":"phx_reply","payload":{},"ref":"1"}"#, now: now, unit: 0.5)
        channel.received(#"{"topic":"client","event":"init","payload":{"interface":{}},"ref":null}"#, now: now, unit: 0.5)
        #expect(channel.malformedFrameCount == 2)
        #expect(drain(&channel, at: now) == [.message(PhoenixRawPayload(event: "init", json: #"{"interface":{}}"#))],
                "the valid push still arrives")
    }
}
