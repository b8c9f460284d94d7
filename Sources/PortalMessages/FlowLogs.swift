import FoundationEssentials

/// `init.flow_logs` (spec §8): where and how often flow logs are uploaded. Uploads are off when the interval is 0.
/// Neither our client nor our gateway uploads flow logs; the gateway logs its flows instead.
public struct FlowLogsConfig: Hashable, Sendable, Codable {
    public var apiUrl: String
    public var uploadIntervalSecs: UInt64
    public var uploadBatchSize: UInt64

    public init(apiUrl: String, uploadIntervalSecs: UInt64, uploadBatchSize: UInt64) {
        self.apiUrl = apiUrl
        self.uploadIntervalSecs = uploadIntervalSecs
        self.uploadBatchSize = uploadBatchSize
    }

    public var uploadEnabled: Bool { uploadIntervalSecs > 0 }

    private enum CodingKeys: String, CodingKey {
        case apiUrl = "api_url", uploadIntervalSecs = "upload_interval_secs", uploadBatchSize = "upload_batch_size"
    }
}

/// A flow's ingest token (spec §8): an HS256 JWT the portal mints per authorization, the credential for
/// uploading that flow's logs. Checked for shape as Firezone checks it (three base64url segments, an `HS256`
/// header, a JSON object of claims, a signature) and otherwise kept opaque: only the portal holds the key.
public struct IngestToken: Hashable, Sendable, Codable, CustomStringConvertible {
    public let raw: String

    public init(_ raw: String) throws(IngestTokenError) {
        let segments = raw.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3 else { throw .notThreeSegments }
        guard let header = Base64Url.decode(segments[0]),
              (try? JSONDecoder().decode(Header.self, from: Data(header)))?.alg == "HS256"
        else { throw .notHS256 }
        guard let claims = Base64Url.decode(segments[1]), (try? JSONDecoder().decode(JsonObject.self, from: Data(claims))) != nil
        else { throw .claimsUnreadable }
        guard let signature = Base64Url.decode(segments[2]), !signature.isEmpty else { throw .noSignature }
        self.raw = raw
    }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(raw)
    }

    /// Never the token itself: it is a credential.
    public var description: String { "IngestToken(\(raw.count) bytes)" }

    private struct Header: Decodable { var alg: String }

    /// Any JSON object.
    private struct JsonObject: Decodable {
        init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: CandidateKey.self) }
    }
}

/// Why an ingest token was refused.
public enum IngestTokenError: Error, Hashable, Sendable, CustomStringConvertible {
    case notThreeSegments, notHS256, claimsUnreadable, noSignature

    public var description: String {
        switch self {
        case .notThreeSegments: "ingest token is not made of three JWT segments"
        case .notHS256: "ingest token header is not base64url JSON with alg HS256"
        case .claimsUnreadable: "ingest token claims are not a base64url JSON object"
        case .noSignature: "ingest token signature is empty or not base64url"
        }
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs use it.
public enum Base64Url {
    public static func decode(_ text: Substring) -> [UInt8]? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        guard standard.count % 4 != 1 else { return nil }
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { $0 == "=" ? nil : $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}
