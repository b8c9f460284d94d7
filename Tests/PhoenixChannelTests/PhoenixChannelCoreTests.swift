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

    @Test func heartbeatAfterThirtySecondsOfSilence() {
        var channel = joined()
        #expect(channel.pollTimeout() == now + .seconds(30))
        channel.send(event: "x", payload: "{}")
        _ = drain(&channel, at: now + .seconds(10))
        #expect(channel.pollTimeout() == now + .seconds(40), "sending restarts the heartbeat timer")
        channel.handleTimeout(now: now + .seconds(40), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(40)) == [.send(#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":2}"#)])
    }

    @Test func joinTimeoutReconnectsImmediatelyThenWithBackoff() {
        var channel = Core(topic: "gateway", maxElapsed: .seconds(900))
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionOpened(now: now)
        _ = drain(&channel, at: now)
        channel.handleTimeout(now: now + .seconds(5), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(5)) == [.hiccup(delay: .zero, reason: "room join timed out")])
        channel.handleTimeout(now: now + .seconds(5), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(5)) == [.openConnection])
        channel.connectionFailed(.httpStatus(502), now: now + .seconds(6), unit: 0.5)
        #expect(drain(&channel, at: now + .seconds(6)) == [.hiccup(delay: .milliseconds(500), reason: "the portal answered HTTP 502")])
        #expect(channel.pollTimeout() == now + .milliseconds(6500))
    }

    @Test(arguments: [(401, true), (403, true), (422, false), (429, false)])
    func fourHundredsAreFatal(status: Int, signOut: Bool) {
        var channel = Core(topic: "client", maxElapsed: nil)
        channel.connect()
        _ = drain(&channel, at: now)
        channel.connectionFailed(.httpStatus(status), now: now, unit: 0.5)
        #expect(drain(&channel, at: now) == [.fatal(.rejected(status: status))])
        #expect(PhoenixChannelError.rejected(status: status).isAuthenticationError == signOut)
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
        #expect(PhoenixChannelError.tokenExpired.isAuthenticationError)

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
        #expect(drain(&channel, at: now) == [.hiccup(delay: .zero, reason: "the portal closed the channel")])
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
