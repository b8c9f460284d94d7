import ArgumentParser

/// The command line of `firezone-gateway status` and `firezone-client status`.
public struct StatusArguments: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    public var json = false
    @Option(help: "The running process's status socket (FIREZONE_STATUS_SOCKET; default /run/<tool>/status.sock).")
    public var statusSocket: String?

    public init() {}

    /// The socket to read: the flag, else the variable, else the tool's default.
    public func socketPath(environment: [String: String], defaultPath: String) -> String {
        statusSocket ?? environment["FIREZONE_STATUS_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultPath
    }
}
