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
}
