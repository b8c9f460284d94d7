import Foundation
@_exported import TestSupport
import Testing

enum Fixtures {
    static var directory: String {
        let testFile = "\(#filePath)"
        let repository = testFile.split(separator: "/").dropLast(4).joined(separator: "/")
        return "/" + repository + "/Fixtures"
    }

    static let kernelTraffic = directory + "/captures/kernel-traffic.pcap"

    /// A fresh path in the temporary directory for a capture a test writes.
    static func temporaryCapture(_ name: String) -> String {
        NSTemporaryDirectory() + "swift-firezone-\(name)-\(UUID().uuidString).pcap"
    }
}

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { index in
        UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) ?? 0
    }
}

/// Parses tshark's decimal or 0x-prefixed hexadecimal numbers.
func number(_ text: String) -> UInt64? {
    if text.hasPrefix("0x") { return UInt64(text.dropFirst(2), radix: 16) }
    return UInt64(text)
}

import IpPacket

extension IpPacket {
    /// The context the library attaches to errors about this packet after a successful parse.
    var errorContextForTest: IpPacketError.Context {
        IpPacketError.Context(version: version, source: source, destination: destination, nextHeader: nextHeader)
    }
}
