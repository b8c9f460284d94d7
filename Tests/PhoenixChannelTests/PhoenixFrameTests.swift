import PhoenixChannel
import Testing

@Suite struct PhoenixFrameTests {
    @Test func egressMatchesTheSpecsExamples() {
        #expect(PhoenixFrame(topic: "client", event: "phx_join", ref: 0).encoded() == #"{"topic":"client","event":"phx_join","payload":null,"ref":0}"#)
        #expect(PhoenixFrame(topic: "phoenix", event: "heartbeat", payload: "{}", ref: 7).encoded() ==
            #"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":7}"#)
    }

    @Test func ingressExamplesDecode() throws {
        let reply = try PhoenixFrame(decoding: #"{"topic":"client","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":0}"#)
        #expect(reply.topic == "client" && reply.event == "phx_reply" && reply.ref == 0)
        #expect(reply.payload == #"{"status":"ok","response":{}}"# || reply.payload == #"{"response":{},"status":"ok"}"#)
        let push = try PhoenixFrame(decoding: #"{"topic":"client","event":"init","payload":{"interface":{"ipv4":"100.72.112.111"}},"ref":null,"join_ref":"3"}"#)
        #expect(push.ref == nil && push.payload == #"{"interface":{"ipv4":"100.72.112.111"}}"#, "join_ref ignored")
        let missingPayload = try PhoenixFrame(decoding: #"{"topic":"t","event":"e"}"#)
        #expect(missingPayload.payload == "null" && missingPayload.ref == nil)
    }

    @Test func malformedFramesAreTypedErrors() {
        #expect(throws: PhoenixFrameError.refNotAnInteger) { try PhoenixFrame(decoding: #"{"topic":"t","event":"e","payload":{},"ref":"1"}"#) }
        #expect(throws: PhoenixFrameError.refNotAnInteger) { try PhoenixFrame(decoding: #"{"topic":"t","event":"e","payload":{},"ref":1.5}"#) }
        #expect(throws: PhoenixFrameError.missingField("event")) { try PhoenixFrame(decoding: #"{"topic":"t","payload":{}}"#) }
        #expect(throws: PhoenixFrameError.notAJsonObject) { try PhoenixFrame(decoding: "[1,2]") }
        #expect(throws: PhoenixFrameError.notAJsonObject) { try PhoenixFrame(decoding: "") }
    }

    @Test func escapingRoundTrips() throws {
        let frame = PhoenixFrame(topic: "client", event: "x\"\\\n\u{1}", payload: #"["a\"b"]"#, ref: 42)
        #expect(try PhoenixFrame(decoding: frame.encoded()) == frame)
    }

    /// Found by Fuzz/PortalMessage: payload keys came back in whatever order the JSON parser kept them, so a
    /// decoded frame did not re-encode to text that decoded equal. Payloads are canonical: compact, keys sorted.
    @Test func payloadKeysAreCanonical() throws {
        let frame = try PhoenixFrame(decoding: #"{"topic":"t","event":"e","payload":{"b":1,"a":{"d":[2,{"z":0,"y":1}],"c":3}},"ref":1}"#)
        #expect(frame.payload == #"{"a":{"c":3,"d":[2,{"y":1,"z":0}]},"b":1}"#)
        #expect(try PhoenixFrame(decoding: frame.encoded()) == frame)
    }
}
