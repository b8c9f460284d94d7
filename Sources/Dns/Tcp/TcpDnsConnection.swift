import IpPacket

/// One segment to send: sequence numbers, flags, options and data.
struct TcpSegment {
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: TcpFlags
    var options: [UInt8] = []
    var payload: [UInt8] = []

    /// Our MSS option (kind 2, length 4): 1240, what fits a 1280-byte MTU after the IPv6 and TCP headers.
    static let mssOption: [UInt8] = [2, 4, 0x04, 0xD8]

    /// The segment as an IP packet from `local` to `remote`, with our window fully open.
    func packet(from local: SocketAddress, to remote: SocketAddress) -> IpPacket? {
        try? IpPacket.tcp(source: local.ip, destination: remote.ip, sourcePort: local.port, destinationPort: remote.port,
                          sequenceNumber: sequence, acknowledgmentNumber: acknowledgment, flags: flags, window: UInt16.max,
                          options: options, payload: payload)
    }

    /// The RST for a segment that belongs to no connection (RFC 9293 §3.10.7.1).
    static func reset(answering tcp: TcpHeader) -> TcpSegment {
        if tcp.flags.contains(.ack) { return TcpSegment(sequence: tcp.acknowledgmentNumber, acknowledgment: 0, flags: [.rst]) }
        return TcpSegment(sequence: 0, acknowledgment: tcp.sequenceNumber &+ (tcp.flags.contains(.syn) ? 1 : 0), flags: [.rst, .ack])
    }

    /// The MSS option of a SYN, or 536 (RFC 9293 §3.7.1) without one.
    static func maximumSegmentSize(in options: [UInt8]) -> Int {
        var index = 0
        while index < options.count {
            switch options[index] {
            case 0: return 536
            case 1: index += 1
            default:
                guard index + 1 < options.count, options[index + 1] >= 2 else { return 536 }
                let length = Int(options[index + 1])
                if options[index] == 2, length == 4, index + 3 < options.count {
                    return max(64, Int(options[index + 2]) << 8 | Int(options[index + 3]))
                }
                index += length
            }
        }
        return 536
    }
}

/// The state of one connection of ``TcpDnsServer`` (passive open) or ``TcpDnsClient`` (active open).
/// Sequence space: our SYN at `initialSequence`, data from `initialSequence + 1` (`sendBuffer[0]` is at
/// `sendBase`), our FIN after the last byte.
struct TcpDnsConnection {
    enum State { case synSent, synReceived, established }

    var state = State.synReceived
    let initialSequence: UInt32
    /// The oldest unacknowledged sequence number and the next one to send.
    var unacknowledged: UInt32
    var nextToSend: UInt32
    /// Sequence number of `sendBuffer[0]`; the buffer holds data not yet acknowledged plus data not yet sent.
    var sendBase: UInt32
    var sendBuffer: [UInt8] = []
    var peerWindow: UInt32
    let segmentSize: Int
    var receiveNext: UInt32
    var receiveBuffer: [UInt8] = []
    var peerFinished = false
    var finSequence: UInt32?
    /// Queries handed out and not answered yet; our FIN waits for them.
    var pendingAnswers = 0
    var retransmitAt: Instant?
    var retransmissionInterval = TcpDnsServer.initialRetransmission
    var retransmissions = 0
    var lastActivity: Instant

    /// Passive open: a SYN arrived.
    init(initialSequence: UInt32, peerSequence: UInt32, peerWindow: UInt16, peerMss: Int, now: Instant) {
        self.initialSequence = initialSequence
        unacknowledged = initialSequence
        nextToSend = initialSequence &+ 1
        sendBase = initialSequence &+ 1
        self.peerWindow = UInt32(peerWindow)
        segmentSize = min(peerMss, TcpDnsServer.maxSegment)
        receiveNext = peerSequence &+ 1
        lastActivity = now
        retransmitAt = now + retransmissionInterval
    }

    /// Active open: our SYN goes out first (``syn()``).
    init(initialSequence: UInt32, now: Instant) {
        self.init(initialSequence: initialSequence, peerSequence: 0, peerWindow: 0, peerMss: TcpDnsServer.maxSegment, now: now)
        state = .synSent
    }

    func syn() -> TcpSegment {
        TcpSegment(sequence: initialSequence, acknowledgment: 0, flags: [.syn], options: TcpSegment.mssOption)
    }

    /// The peer's SYN-ACK to our SYN: `true` when it acknowledged our SYN and the connection is established.
    mutating func synAcknowledged(_ tcp: TcpHeader, now: Instant) -> Bool {
        guard state == .synSent, tcp.flags.contains([.syn, .ack]), tcp.acknowledgmentNumber == initialSequence &+ 1 else { return false }
        receiveNext = tcp.sequenceNumber &+ 1
        state = .established
        acknowledge(tcp.acknowledgmentNumber, window: tcp.window, now: now)
        return true
    }

    var isFinished: Bool {
        guard let finSequence, peerFinished else { return false }
        return Self.isAfter(unacknowledged, finSequence)
    }

    func synAck() -> TcpSegment {
        TcpSegment(sequence: initialSequence, acknowledgment: receiveNext, flags: [.syn, .ack], options: TcpSegment.mssOption)
    }

    func ackOnly() -> TcpSegment {
        TcpSegment(sequence: nextToSend, acknowledgment: receiveNext, flags: [.ack])
    }

    func reset() -> TcpSegment {
        TcpSegment(sequence: nextToSend, acknowledgment: receiveNext, flags: [.rst, .ack])
    }

    mutating func acknowledge(_ ack: UInt32, window: UInt16, now: Instant) {
        peerWindow = UInt32(window)
        guard state != .synSent, Self.isAfter(ack, unacknowledged), !Self.isAfter(ack, nextToSend) else { return }
        if state == .synReceived { state = .established }
        let ackedData = Int(ack &- sendBase)
        if ackedData > 0 {
            let dropped = min(ackedData, sendBuffer.count)
            sendBuffer.removeFirst(dropped)
            sendBase = sendBase &+ UInt32(dropped)
        }
        unacknowledged = ack
        retransmissions = 0
        retransmissionInterval = TcpDnsServer.initialRetransmission
        retransmitAt = unacknowledged == nextToSend ? nil : now + retransmissionInterval
    }

    /// Takes in-order data (and a FIN right after it); anything else is left for the peer to retransmit.
    mutating func receive(_ payload: [UInt8], sequence: UInt32, fin: Bool) {
        guard state == .established else { return }
        let offset = receiveNext &- sequence
        if !payload.isEmpty, !peerFinished, offset < UInt32(payload.count) {
            receiveBuffer += payload[Int(offset)...]
            receiveNext = receiveNext &+ (UInt32(payload.count) - offset)
        }
        if fin, !peerFinished, sequence &+ UInt32(payload.count) == receiveNext {
            receiveNext = receiveNext &+ 1
            peerFinished = true
        }
    }

    /// The complete length-prefixed messages received so far; a zero length cannot be a DNS message.
    mutating func takeMessages() throws(TcpDnsFramingError) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while let (message, consumed) = DnsTcpFraming.nextMessage(in: receiveBuffer) {
            guard !message.isEmpty else { throw .emptyMessage }
            messages.append(Array(message))
            receiveBuffer.removeFirst(consumed)
        }
        return messages
    }

    mutating func queue(_ bytes: [UInt8]) {
        sendBuffer += bytes
    }

    /// The next segment that fits the peer's window, then our FIN once the peer finished and every answer
    /// is out; `nil` when there is nothing to send.
    mutating func nextSegment(now: Instant) -> TcpSegment? {
        guard state == .established else { return nil }
        let sentUnacked = Int(nextToSend &- sendBase)
        let unsent = sendBuffer.count - sentUnacked
        let room = Int(peerWindow) - Int(nextToSend &- unacknowledged)
        if unsent > 0, room > 0 {
            let count = min(unsent, segmentSize, room)
            let segment = TcpSegment(sequence: nextToSend, acknowledgment: receiveNext, flags: [.ack, .psh],
                                     payload: Array(sendBuffer[sentUnacked..<(sentUnacked + count)]))
            nextToSend = nextToSend &+ UInt32(count)
            if retransmitAt == nil { retransmitAt = now + retransmissionInterval }
            return segment
        }
        guard unsent == 0, peerFinished, pendingAnswers == 0, finSequence == nil else { return nil }
        finSequence = nextToSend
        let segment = TcpSegment(sequence: nextToSend, acknowledgment: receiveNext, flags: [.fin, .ack])
        nextToSend = nextToSend &+ 1
        if retransmitAt == nil { retransmitAt = now + retransmissionInterval }
        return segment
    }

    /// Everything that can be sent now (see ``nextSegment(now:)``).
    mutating func segments(now: Instant) -> [TcpSegment] {
        var segments: [TcpSegment] = []
        while let segment = nextSegment(now: now) { segments.append(segment) }
        return segments
    }

    /// Go-back-N after a retransmission timeout: the SYN or SYN-ACK again while handshaking, otherwise
    /// everything from the oldest unacknowledged byte (and our FIN, which cannot have been acknowledged).
    mutating func retransmit(now: Instant) -> [TcpSegment] {
        retransmissions += 1
        retransmissionInterval = retransmissionInterval * 2
        retransmitAt = now + retransmissionInterval
        switch state {
        case .synSent: return [syn()]
        case .synReceived: return [synAck()]
        case .established:
            nextToSend = unacknowledged
            finSequence = nil
            return segments(now: now)
        }
    }

    /// `a` comes after `b` in sequence space (RFC 1982 serial arithmetic).
    static func isAfter(_ a: UInt32, _ b: UInt32) -> Bool {
        a != b && (a &- b) < 0x8000_0000
    }
}

/// A TCP DNS stream that cannot be read.
enum TcpDnsFramingError: Error {
    case emptyMessage
}
