/// The anti-replay sliding window of RFC 6479: a bitmap of the last 8192 counters, checked before
/// decryption and updated only after the packet authenticated.
struct ReplayWindow {
    /// Counters this far behind the highest one are still accepted once.
    static let windowSize: UInt64 = 8192 - 64
    private static let words = 128  // 8192 bits
    private static let wordMask = UInt64(words - 1)

    private var bitmap = [UInt64](repeating: 0, count: words)
    private(set) var highest: UInt64 = 0
    private var hasReceived = false

    /// Whether `counter` might be new: not too old and not marked. Cheap; no state changes.
    func mayAccept(_ counter: UInt64) -> Bool {
        guard counter < WireGuardLimits.rejectAfterMessages else { return false }
        guard hasReceived else { return true }
        if counter > highest { return true }
        guard highest - counter < Self.windowSize else { return false }
        return !isMarked(counter)
    }

    /// Records an authenticated `counter`; `false` if it was already seen or is too old (a race with
    /// `mayAccept` cannot happen in a single-owner state machine, but the check is the source of truth).
    mutating func accept(_ counter: UInt64) -> Bool {
        guard mayAccept(counter) else { return false }
        if !hasReceived || counter > highest {
            clearWords(from: hasReceived ? highest : 0, to: counter, fresh: !hasReceived)
            highest = counter
            hasReceived = true
        }
        bitmap[Int((counter >> 6) & Self.wordMask)] |= 1 << (counter & 63)
        return true
    }

    private func isMarked(_ counter: UInt64) -> Bool {
        bitmap[Int((counter >> 6) & Self.wordMask)] & (1 << (counter & 63)) != 0
    }

    /// Clears the words that the window slides over when the highest counter moves forward.
    private mutating func clearWords(from oldHighest: UInt64, to newHighest: UInt64, fresh: Bool) {
        let oldWord = oldHighest >> 6
        let newWord = newHighest >> 6
        if fresh {
            return
        }
        let steps = min(newWord - oldWord, UInt64(Self.words))
        var step: UInt64 = 1
        while step <= steps {
            bitmap[Int((oldWord + step) & Self.wordMask)] = 0
            step += 1
        }
    }
}
