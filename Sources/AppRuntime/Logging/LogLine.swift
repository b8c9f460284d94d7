#if canImport(Glibc)
import Glibc
#endif
import Logging

/// How log lines look (spec `portal-phoenix.md` §7.3).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2025-11-30T14:17:24.123Z  INFO firezone_gateway: Goodbye! field=value`
    case human
    /// One JSON object per line: `timestamp` (microseconds), `level`, `message`, the fields, `target`.
    case json
}

/// One log event, formatted.
public struct LogLine: Sendable {
    public var secondsSinceEpoch: Int64
    public var nanoseconds: Int32
    public var level: Logger.Level
    public var target: String
    public var message: String
    public var fields: [(key: String, value: String)]

    public init(secondsSinceEpoch: Int64, nanoseconds: Int32, level: Logger.Level, target: String, message: String,
                fields: [(key: String, value: String)] = []) {
        self.secondsSinceEpoch = secondsSinceEpoch
        self.nanoseconds = nanoseconds
        self.level = level
        self.target = target
        self.message = message
        self.fields = fields
    }

    /// The level as tracing writes it: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`.
    public var levelName: String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    /// Timestamp, level right-aligned to five characters, target, message and `key=value` fields. With
    /// `colour` the level is coloured as tracing-subscriber colours it on a terminal.
    public func human(colour: Bool = false) -> String {
        let padded = String(repeating: " ", count: 5 - levelName.count) + levelName
        let level = colour ? "\u{1B}[\(colourCode)m\(padded)\u{1B}[0m" : padded
        var line = "\(timestamp(fractionDigits: 3)) \(level) \(target): \(message)"
        for (key, value) in fields { line += " \(key)=\(value)" }
        return line
    }

    /// The JSON object of tracing-subscriber's flattened JSON formatter.
    public func json() -> String {
        var line = "{\"timestamp\":\"\(timestamp(fractionDigits: 6))\",\"level\":\"\(levelName)\",\"message\":\(Self.quoted(message))"
        for (key, value) in fields where !["timestamp", "level", "message", "target"].contains(key) {
            line += ",\(Self.quoted(key)):\(Self.quoted(value))"
        }
        return line + ",\"target\":\(Self.quoted(target))}"
    }

    private var colourCode: String {
        switch level {
        case .trace: "35"
        case .debug: "34"
        case .info, .notice: "32"
        case .warning: "33"
        case .error, .critical: "31"
        }
    }

    private func timestamp(fractionDigits: Int) -> String {
        Self.timestamp(secondsSinceEpoch: secondsSinceEpoch, nanoseconds: nanoseconds, fractionDigits: fractionDigits)
    }

    /// RFC 3339 in UTC with `fractionDigits` digits of the second, as log lines write their timestamps.
    public static func timestamp(secondsSinceEpoch: Int64, nanoseconds: Int32, fractionDigits: Int) -> String {
        var time = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&time, &parts)
        func digits(_ value: Int, _ count: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, count - text.count)) + text
        }
        var divisor = 1
        for _ in fractionDigits..<9 { divisor *= 10 }
        return "\(digits(Int(parts.tm_year) + 1900, 4))-\(digits(Int(parts.tm_mon) + 1, 2))-\(digits(Int(parts.tm_mday), 2))"
            + "T\(digits(Int(parts.tm_hour), 2)):\(digits(Int(parts.tm_min), 2)):\(digits(Int(parts.tm_sec), 2))"
            + ".\(digits(Int(nanoseconds) / divisor, fractionDigits))Z"
    }

    /// A JSON string literal (RFC 8259 escaping).
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
