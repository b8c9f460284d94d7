/// A configuration the binaries refuse, with the message they print before exiting 1 (spec
/// `portal-phoenix.md` §7.1, §7.2).
public enum OptionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An environment variable that must be `true` or `false`.
    case notABoolean(variable: String, value: String)
    /// An option or variable whose value is not one of those allowed.
    case invalidValue(name: String, value: String, expected: String)
    /// The gateway found no token: no argument, no `FIREZONE_TOKEN`, no systemd credential.
    case gatewayTokenMissing
    /// The headless client found no token: no `FIREZONE_TOKEN`, no token file.
    case clientTokenMissing(path: String)
    /// The token file exists but may not be used (owner, mode, encoding).
    case tokenFileRefused(String)
    /// A setting without which the program cannot run, named with its flags and variables.
    case missing(String)

    public var description: String {
        switch self {
        case let .notABoolean(variable, value): "\(variable)=\(value): expected true or false"
        case let .invalidValue(name, value, expected): "invalid value '\(value)' for \(name): expected \(expected)"
        case .gatewayTokenMissing: "Failed to read `FIREZONE_TOKEN` systemd credential"
        case .clientTokenMissing(let path): "Can't find the Firezone token in $FIREZONE_TOKEN or in `\(path)`"
        case .tokenFileRefused(let reason): reason
        case .missing(let what): "missing \(what)"
        }
    }
}
