/// Something a person reading the client's or gateway's log should learn: a connection created, its path, its
/// end, a relay added or removed. The sans-IO layers queue these (never one per packet); the app logs each one's
/// `message` at `level` with `fields` as metadata, under Firezone's field names: `cid` for a client, `gid` for a
/// gateway, `rid` for a relay, `path` for a connection's path.
public struct TunnelReport: Hashable, Sendable, CustomStringConvertible {
    public enum Level: Hashable, Sendable {
        case debug
        case info
    }

    public var level: Level
    public var message: String
    public var fields: [String: String]

    public init(_ level: Level, _ message: String, _ fields: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.fields = fields
    }

    /// The message followed by its fields, sorted by name: for tests and plain output.
    public var description: String {
        ([message] + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }
}
