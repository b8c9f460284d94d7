import Ice

/// The candidates one round of node events signals, as few portal messages as possible: one per peer and kind,
/// highest priority first (spec `snownet.md` §2.5, seed #10063), so the peer tries the best pairs first and the
/// portal sees one message instead of one per candidate. A candidate invalidated after it was signalled (or the
/// other way round) starts a new message for that peer, so the order of the two stays as the node meant it.
struct CandidateRound<PeerId: Hashable> {
    struct Message {
        var peer: PeerId
        var invalidated: Bool
        var candidates: [IceCandidate]
    }

    private(set) var messages: [Message] = []

    mutating func add(_ candidate: IceCandidate, for peer: PeerId, invalidated: Bool) {
        if let last = messages.lastIndex(where: { $0.peer == peer }), messages[last].invalidated == invalidated {
            guard !messages[last].candidates.contains(candidate) else { return }
            let position = messages[last].candidates.firstIndex { $0.priority < candidate.priority } ?? messages[last].candidates.endIndex
            messages[last].candidates.insert(candidate, at: position)
            return
        }
        messages.append(Message(peer: peer, invalidated: invalidated, candidates: [candidate]))
    }
}
