import Ice

/// ICE candidate strings (spec §2): each unparsable candidate is skipped on its own.
enum IceCandidateList {
    static func decode<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, forKey key: Key) throws -> [IceCandidate] {
        let candidates = try container.decodeSkippingMalformed(forKey: key) { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            do {
                return try IceCandidateString.parse(text)
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
            }
        }
        guard let candidates else {
            throw DecodingError.keyNotFound(key, .init(codingPath: container.codingPath, debugDescription: "missing"))
        }
        return candidates
    }

    static func encode<Key: CodingKey>(_ candidates: [IceCandidate], _ container: inout KeyedEncodingContainer<Key>,
                                       forKey key: Key) throws {
        try container.encode(candidates.map { IceCandidateString.format($0) }, forKey: key)
    }
}
