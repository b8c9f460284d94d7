import AppRuntime

/// A flag's value or, when the flag is absent, its environment variable's (spec §7.1: "A flag with an env var
/// reads it when the flag is absent").
struct Settings {
    let environment: [String: String]

    func string(_ flag: String?, _ variable: String) -> String? {
        flag ?? environment[variable]
    }

    /// A boolean flag: set on the command line, or `true`/`false` in the variable.
    func bool(_ flag: Bool, _ variable: String) throws(OptionError) -> Bool {
        guard !flag else { return true }
        guard let value = environment[variable] else { return false }
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default: throw .notABoolean(variable: variable, value: value)
        }
    }

    func oneOf<Value: RawRepresentable>(_ flag: String?, _ variable: String, name: String, default fallback: Value)
        throws(OptionError) -> Value where Value.RawValue == String, Value: CaseIterable {
        guard let text = string(flag, variable) else { return fallback }
        guard let value = Value(rawValue: text) else {
            throw .invalidValue(name: name, value: text, expected: Value.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return value
    }

    /// A byte count from a variable only (Firezone has no flag for it): a positive integer.
    func byteCount(_ variable: String, default fallback: Int) throws(OptionError) -> Int {
        guard let text = environment[variable] else { return fallback }
        guard let value = Int(text), value > 0 else {
            throw .invalidValue(name: variable, value: text, expected: "a positive number of bytes")
        }
        return value
    }

    /// `FIREZONE_UDP_SEND_BUFFER_SIZE` and `FIREZONE_UDP_RECV_BUFFER_SIZE` over Firezone's defaults.
    func socketBuffers() throws(OptionError) -> SocketBufferSizes {
        let defaults = SocketBufferSizes()
        return SocketBufferSizes(send: try byteCount("FIREZONE_UDP_SEND_BUFFER_SIZE", default: defaults.send),
                                 receive: try byteCount("FIREZONE_UDP_RECV_BUFFER_SIZE", default: defaults.receive))
    }

    /// A UDP port from a flag or its variable: 1 to 65535.
    func port(_ flag: String?, _ variable: String, name: String, default fallback: UInt16) throws(OptionError) -> UInt16 {
        guard let text = string(flag, variable) else { return fallback }
        guard let port = UInt16(text), port > 0 else { throw .invalidValue(name: name, value: text, expected: "a port from 1 to 65535") }
        return port
    }
}
