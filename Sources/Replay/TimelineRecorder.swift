/// Collects what a ``Timeline`` draws while a replay reads its capture: marks for the events of each
/// connection and per-second counts by category. Bounded: at most ``Timeline/rowLimit`` rows are kept in full
/// (later rows are counted into the last one), ``Timeline/marksPerRow`` marks per row, one bucket per second.
struct TimelineRecorder {
    private(set) var rows: [Timeline.Row] = []
    private var rowIndex: [String: Int] = [:]
    private(set) var start: Int64?
    private(set) var end: Int64 = 0
    /// Which endpoint pair each WireGuard session's data last used, to mark a path change.
    private var sessionPairs: [UInt32: String] = [:]

    static let otherRows = "(other connections)"

    mutating func mark(_ label: String, _ kind: Timeline.Kind, row: String, at nanoseconds: Int64) {
        let index = self.index(of: row, at: nanoseconds)
        guard rows[index].marks.count < Timeline.marksPerRow else {
            rows[index].marksLeftOut += 1
            return
        }
        rows[index].marks.append(Timeline.Mark(nanoseconds: nanoseconds - (start ?? nanoseconds), label: label, kind: kind))
    }

    mutating func count(_ category: String, row: String, at nanoseconds: Int64, amount: Int = 1) {
        let index = self.index(of: row, at: nanoseconds)
        let second = Int((nanoseconds - (start ?? nanoseconds)) / 1_000_000_000)
        rows[index].perSecond[second, default: [:]][category, default: 0] += amount
    }

    /// A classified underlay datagram on the row of its endpoint pair: STUN and TURN exchanges, handshakes and
    /// malformed messages as marks, every datagram counted by kind, and a path change when a session's data
    /// moves to another pair.
    mutating func add(_ datagram: DissectedDatagram, pair: String, at nanoseconds: Int64) {
        count(datagram.wireGuardType == .data ? "WireGuard data" : datagram.kind.rawValue, row: pair, at: nanoseconds)
        switch datagram.kind {
        case .stun:
            let name = datagram.stunType.map(StunAttributeNames.messageName) ?? "STUN"
            let isTurn = ["allocate", "refresh", "channel-bind", "create-permission"].contains { name.hasPrefix($0) }
            if !name.hasPrefix("binding") || !name.contains("indication") {
                mark(name, isTurn ? .turn : .stun, row: pair, at: nanoseconds)
            }
        case .wireGuard where datagram.wireGuardType != .data:
            mark(datagram.summary, .handshake, row: pair, at: nanoseconds)
        case .malformed:
            mark(datagram.summary, .malformed, row: pair, at: nanoseconds)
        default:
            break
        }
        if let receiver = datagram.receiverIndex, datagram.wireGuardType == .data {
            if let previous = sessionPairs[receiver], previous != pair {
                mark("session \(receiver) moved from \(previous)", .path, row: pair, at: nanoseconds)
            }
            sessionPairs[receiver] = pair
        }
    }

    func timeline(title: String, subtitle: String) -> Timeline {
        let first = start ?? 0
        return Timeline(title: title, subtitle: subtitle, startNanoseconds: first, durationNanoseconds: max(0, end - first),
                        rows: rows)
    }

    private mutating func index(of row: String, at nanoseconds: Int64) -> Int {
        if start == nil { start = nanoseconds }
        end = max(end, nanoseconds)
        if let index = rowIndex[row] { return index }
        let name = rows.count < Timeline.rowLimit - 1 ? row : Self.otherRows
        if let index = rowIndex[name] { return index }
        rows.append(Timeline.Row(name: name))
        rowIndex[name] = rows.count - 1
        return rows.count - 1
    }
}
