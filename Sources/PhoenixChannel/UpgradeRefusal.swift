import FoundationEssentials

/// The portal answered the WebSocket upgrade with an HTTP status instead of 101 (spec `portal-phoenix.md` §8):
/// the status, when to try again if it said so, and the RFC 9457 problem details of its body.
public struct UpgradeRefusal: Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    /// From `Retry-After`; honoured instead of the backoff.
    public var retryAfter: Duration?
    /// Present when the body is `application/problem+json` and parses.
    public var problem: ProblemDetails?

    public init(status: Int, retryAfter: Duration? = nil, problem: ProblemDetails? = nil) {
        self.status = status
        self.retryAfter = retryAfter
        self.problem = problem
    }

    /// Reads what the channel acts on from the response: `Retry-After` as seconds or an HTTP date (relative to
    /// `unixTime`), the problem details of a `application/problem+json` body.
    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8], unixTime: Int64) {
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name }?.value
        }
        self.status = status
        retryAfter = header("retry-after").flatMap { RetryAfter.parse($0, unixTime: unixTime) }
        problem = ProblemDetails(contentType: header("content-type"), body: body)
    }

    public var description: String {
        let detail = problem?.detail.map { ": \($0)" } ?? ""
        return "the portal answered HTTP \(status)\(detail)"
    }
}

/// RFC 9457 problem details: the members the channel acts on (the portal sends more).
public struct ProblemDetails: Sendable, Hashable, Decodable {
    /// A machine-readable identifier (`invalid_token`, `missing_token`, `limits_exceeded`, ...); older portals omit it.
    public var code: String?
    /// A human-readable explanation.
    public var detail: String?

    public init(code: String? = nil, detail: String? = nil) {
        self.code = code
        self.detail = detail
    }

    /// `nil` unless the media type is `application/problem+json` (any case, parameters allowed) and the body
    /// is a JSON object; an intermediary's error page is not problem details.
    public init?(contentType: String?, body: [UInt8]) {
        guard let contentType else { return nil }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? contentType
        guard mediaType.trimmingWhitespace.lowercased() == "application/problem+json",
              let parsed = try? JSONDecoder().decode(ProblemDetails.self, from: Data(body))
        else { return nil }
        self = parsed
    }

    private enum CodingKeys: String, CodingKey { case code, detail }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        code = try? container.decodeIfPresent(String.self, forKey: .code)
        detail = try? container.decodeIfPresent(String.self, forKey: .detail)
    }
}

/// The `Retry-After` header (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (IMF-fixdate, or the RFC 2822
/// forms with a numeric zone) turned into the time left until it; a date in the past is zero.
public enum RetryAfter {
    public static func parse(_ value: String, unixTime: Int64) -> Duration? {
        let text = value.trimmingWhitespace
        if let seconds = UInt64(text) { return .seconds(Int64(clamping: seconds)) }
        guard let date = httpDate(text) else { return nil }
        return .seconds(max(0, date - unixTime))
    }

    /// Unix seconds of `Wed, 21 Oct 2015 07:28:00 GMT` (the weekday is optional; the zone is GMT, UT, UTC, Z or ±hhmm).
    static func httpDate(_ text: String) -> Int64? {
        var words = text.split(separator: " ").map(String.init)
        if let first = words.first, first.hasSuffix(",") { words.removeFirst() }
        guard words.count == 5,
              let day = Int(words[0]), (1...31).contains(day),
              let month = months.firstIndex(of: words[1].lowercased()),
              let year = Int(words[2]), year >= 1970
        else { return nil }
        let clock = words[3].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 || clock.count == 2, clock[0] < 24, clock[1] < 60, clock.count == 2 || clock[2] < 61,
              let offset = zoneOffset(words[4])
        else { return nil }
        let seconds = Int64(clock[0] * 3600 + clock[1] * 60 + (clock.count == 3 ? clock[2] : 0))
        return daysSinceEpoch(year: year, month: month + 1, day: day) * 86_400 + seconds - offset
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    private static func zoneOffset(_ zone: String) -> Int64? {
        switch zone.uppercased() {
        case "GMT", "UT", "UTC", "Z": return 0
        default:
            guard zone.count == 5, let sign = zone.first, sign == "+" || sign == "-",
                  let digits = Int(zone.dropFirst()), zone.dropFirst().allSatisfy(\.isASCII)
            else { return nil }
            let seconds = Int64(digits / 100 * 3600 + digits % 100 * 60)
            return sign == "+" ? seconds : -seconds
        }
    }

    /// Howard Hinnant's days-from-civil.
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * monthIndex + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
