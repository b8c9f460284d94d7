import Logging

/// Which log lines to keep, from a `RUST_LOG`-style filter (spec `portal-phoenix.md` §7.3): comma-separated
/// directives, each a level (`info`) or `target=level` (`firezone_tunnel=debug`). A target directive covers the
/// target and its children (`snownet` covers `snownet::ice`); the most specific one wins. Levels are `trace`,
/// `debug`, `info`, `warn`, `error` and `off`. Unreadable directives are skipped and reported in ``problems``,
/// as tracing's `EnvFilter` does, so a typo never silences the logs.
public struct LogFilter: Sendable, Equatable {
    /// The level for targets no directive names; `nil` is `off`.
    public private(set) var defaultLevel: Logger.Level? = .info
    /// Target directives, longest target first.
    public private(set) var directives: [(target: String, level: Logger.Level?)] = []
    /// Directives that were not understood, with the reason.
    public private(set) var problems: [String] = []

    public init(_ text: String = "info") {
        for directive in text.split(separator: ",").map({ String($0.filter { $0 != " " && $0 != "\t" }) }) where !directive.isEmpty {
            let parts = directive.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let level = Self.level(named: parts.last!) else {
                problems.append("'\(directive)': '\(parts.last!)' is not a level (trace, debug, info, warn, error, off)")
                continue
            }
            guard parts.count == 2 else {
                defaultLevel = level
                continue
            }
            guard !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" || $0 == "-" }) else {
                problems.append("'\(directive)': '\(parts[0])' is not a target")
                continue
            }
            directives.removeAll { $0.target == parts[0] }
            directives.append((parts[0], level))
        }
        directives.sort { $0.target.count > $1.target.count }
    }

    /// The most verbose level logged for `target`, or `nil` when the target is off.
    public func level(for target: String) -> Logger.Level? {
        for directive in directives where Self.covers(directive.target, target) { return directive.level }
        return defaultLevel
    }

    /// Whether a filter directive names `flow_logs=trace` exactly: Firezone tracks flows only then.
    public var flowLogsEnabled: Bool {
        directives.contains { $0.target == "flow_logs" && $0.level == .trace }
    }

    public static func == (lhs: LogFilter, rhs: LogFilter) -> Bool {
        lhs.defaultLevel == rhs.defaultLevel && lhs.problems == rhs.problems
            && lhs.directives.map(\.target) == rhs.directives.map(\.target) && lhs.directives.map(\.level) == rhs.directives.map(\.level)
    }

    private static func covers(_ directive: String, _ target: String) -> Bool {
        target == directive || target.hasPrefix(directive + "::")
    }

    /// `nil` for `off`; the outer `nil` for an unknown name.
    private static func level(named name: String) -> Logger.Level?? {
        switch name.lowercased() {
        case "trace": .some(.trace)
        case "debug": .some(.debug)
        case "info": .some(.info)
        case "warn", "warning": .some(.warning)
        case "error": .some(.error)
        case "off": .some(nil)
        default: nil
        }
    }
}
