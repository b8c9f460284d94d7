import SansIO
extension WireGuardTunnel {
    /// Encrypts an IP packet for the peer into `output`, which needs `packet.count + 32` bytes. The packet may
    /// already sit at `output + 16`: it is then encrypted in place.
    ///
    /// Without a usable session the packet is queued (up to 256) and, unless one is in progress, a handshake
    /// initiation is written to `output` instead.
    public func encapsulate(
        _ packet: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, now: Instant
    ) -> TunnelOutput {
        let needed = max(packet.count + WireGuardMessage.dataOverhead, WireGuardMessage.initiationLength)
        guard output.count >= needed else { return fail(.outputTooSmall(needed: needed, available: output.count)) }
        if let slot = currentSlot, let session = sessions[slot], session.canSend(at: now) {
            let count = encrypt(packet, with: session, into: output, now: now)
            if firstUnansweredSend == nil { firstUnansweredSend = now }
            statistics.packetsSent += 1
            statistics.bytesSent += count
            if session.isInitiator, handshake == nil, scheduledHandshake == nil,
               session.age(at: now) >= WireGuardLimits.rekeyAfterTime
                || session.sendingCounter >= WireGuardLimits.rekeyAfterMessages {
                scheduledHandshake = now + jitter()
            }
            return .writeToNetwork(count: count)
        }
        guard queue.count < WireGuardLimits.maxQueuedPackets else { return fail(.queueFull) }
        queue.append(Array(packet))
        statistics.packetsQueued += 1
        guard handshake == nil else { return .done }
        let count = writeInitiation(into: output, now: now)
        return count > 0 ? .writeToNetwork(count: count) : .done
    }

    /// Handles a datagram from the peer. `output` receives the decrypted packet (at offset 16, see
    /// ``TunnelOutput/writeToTunnel(offset:count:)``) or the reply to send; it needs as many bytes as the
    /// datagram (at least 148) and may be the datagram's own memory, which makes decryption exactly in place.
    ///
    /// - Parameter source: where the datagram came from, for cookies under load.
    public func decapsulate(
        _ datagram: UnsafeRawBufferPointer, from source: EndpointKey = .unknown,
        into output: UnsafeMutableRawBufferPointer, now: Instant
    ) -> TunnelOutput {
        guard let message = WireGuardMessage.peek(datagram) else {
            return fail(.invalidMessage(length: datagram.count))
        }
        let needed = max(datagram.count, WireGuardMessage.initiationLength)
        guard output.count >= needed else { return fail(.outputTooSmall(needed: needed, available: output.count)) }
        switch message {
        case .initiation:
            return handleInitiation(datagram, source: source, into: output, now: now)
        case .response(_, let receiverIndex):
            return handleResponse(datagram, receiverIndex: receiverIndex, source: source, into: output, now: now)
        case .cookieReply(let receiverIndex):
            return handleCookieReply(datagram, receiverIndex: receiverIndex)
        case let .data(receiverIndex, counter):
            return handleData(datagram, receiverIndex: receiverIndex, counter: counter, into: output, now: now)
        }
    }

    /// The next message to send that no input asked for: handshake initiations and keepalives from timers,
    /// then packets queued while there was no session. Writes it to `output` (at least 1316 bytes for a
    /// queued packet) and returns its length, or `nil` when there is nothing to send.
    public func pollTransmit(into output: UnsafeMutableRawBufferPointer, now: Instant) -> Int? {
        if !outbox.isEmpty {
            let message = outbox.removeFirst()
            guard output.count >= message.count else {
                outbox.insert(message, at: 0)
                return nil
            }
            output.copyBytes(from: message)
            return message.count
        }
        guard !queue.isEmpty, let slot = currentSlot, let session = sessions[slot], session.canSend(at: now),
              output.count >= queue[0].count + WireGuardMessage.dataOverhead
        else { return nil }
        let packet = queue.removeFirst()
        let count = packet.withUnsafeBytes { encrypt($0, with: session, into: output, now: now) }
        statistics.packetsSent += 1
        statistics.bytesSent += count
        return count
    }

    /// The number of packets waiting for a session.
    public var queuedPacketCount: Int { queue.count }

    // MARK: Details

    func handleData(
        _ datagram: UnsafeRawBufferPointer, receiverIndex: UInt32, counter: UInt64,
        into output: UnsafeMutableRawBufferPointer, now: Instant
    ) -> TunnelOutput {
        let slot = Int(receiverIndex) % WireGuardLimits.sessionSlots
        guard let session = sessions[slot], session.localIndex == receiverIndex else {
            return fail(.unknownSession(receiverIndex: receiverIndex))
        }
        guard session.canReceive(at: now) else { return fail(.expiredSession(receiverIndex: receiverIndex)) }
        guard session.replayWindow.mayAccept(counter) else {
            return fail(.duplicateCounter(receiverIndex: receiverIndex, counter: counter))
        }
        let ciphertext = UnsafeRawBufferPointer(rebasing: datagram[WireGuardMessage.dataHeaderLength...])
        let plaintext = UnsafeMutableRawBufferPointer(rebasing: output[WireGuardMessage.dataHeaderLength...])
        let opened = session.opener.open(counter: counter, ciphertext: ciphertext, into: plaintext)
        guard opened else { return fail(.decryptionFailed(receiverIndex: receiverIndex)) }
        guard session.replayWindow.accept(counter) else {
            return fail(.duplicateCounter(receiverIndex: receiverIndex, counter: counter))
        }
        firstUnansweredSend = nil
        if currentSlot != slot, !session.isInitiator {
            // The initiator's first data message confirms a session we responded to.
            makeCurrentSession(slot: slot, now: now)
        }
        if session.isInitiator, handshake == nil, scheduledHandshake == nil,
           session.age(at: now) >= WireGuardLimits.rekeyOnReceiveAfterTime {
            scheduledHandshake = now + jitter()
        }
        let plaintextCount = ciphertext.count - Aead.tagLength
        guard plaintextCount > 0 else {
            statistics.keepalivesReceived += 1
            return .done
        }
        lastDataReceived = now
        statistics.packetsReceived += 1
        statistics.bytesReceived += datagram.count
        return .writeToTunnel(offset: WireGuardMessage.dataHeaderLength, count: plaintextCount)
    }

    /// Writes a data message carrying `packet` on `session` into `output`; returns its length.
    func encrypt(
        _ packet: UnsafeRawBufferPointer, with session: Session, into output: UnsafeMutableRawBufferPointer,
        now: Instant
    ) -> Int {
        let counter = session.sendingCounter
        session.sendingCounter += 1
        // Encrypt first: `packet` may live at output + 16, and the header must not be written over it before.
        _ = session.sealer.seal(counter: counter, plaintext: packet,
                                into: UnsafeMutableRawBufferPointer(rebasing: output[WireGuardMessage.dataHeaderLength...]))
        output.storeUInt32LE(4, at: 0)
        output.storeUInt32LE(session.remoteIndex, at: Layout.Data.receiver)
        output.storeUInt64LE(counter, at: Layout.Data.counter)
        lastPacketSent = now
        return packet.count + WireGuardMessage.dataOverhead
    }

    func encryptKeepalive(into output: UnsafeMutableRawBufferPointer, now: Instant) -> TunnelOutput {
        guard let slot = currentSlot, let session = sessions[slot], session.canSend(at: now) else { return .done }
        statistics.keepalivesSent += 1
        return .writeToNetwork(count: encrypt(UnsafeRawBufferPointer(start: nil, count: 0), with: session, into: output, now: now))
    }
}
