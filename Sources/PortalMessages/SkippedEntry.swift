import FoundationEssentials
import Synchronization

/// A list entry left out because it did not decode, while the rest of the message was used: a malformed
/// client resource or ICE candidate (spec §2, §2.4). Callers count these and log them.
public struct SkippedEntry: Hashable, Sendable, CustomStringConvertible {
    /// The JSON path of the list, e.g. `resources` or `candidates`.
    public var list: String
    public var index: Int
    public var reason: String

    public var description: String { "skipped \(list)[\(index)]: \(reason)" }
}

/// Collects skipped entries while one message decodes: bound around the decode as ``current``.
final class SkippedEntries: Sendable {
    @TaskLocal static var current: SkippedEntries?
    private let entries = Mutex<[SkippedEntry]>([])

    func append(_ entry: SkippedEntry) { entries.withLock { $0.append(entry) } }
    var all: [SkippedEntry] { entries.withLock { $0 } }
}

extension KeyedDecodingContainer {
    /// Decodes a list, leaving out (and recording) each entry that fails on its own. `nil` when the key is
    /// absent or null.
    func decodeSkippingMalformed<Element>(
        forKey key: Key, element: (any Decoder) throws -> Element
    ) throws -> [Element]? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        var list = try nestedUnkeyedContainer(forKey: key)
        var elements: [Element] = []
        var index = 0
        while !list.isAtEnd {
            let entryDecoder = try list.superDecoder()
            do {
                elements.append(try element(entryDecoder))
            } catch {
                SkippedEntries.current?.append(SkippedEntry(list: key.stringValue, index: index, reason: PortalJson.describe(error)))
            }
            index += 1
        }
        return elements
    }
}
