#if canImport(Glibc)
import Glibc
#endif
import CPcap

/// Reads a capture file (pcap or pcapng) record by record, with nanosecond timestamps: pcap through
/// libpcap, pcapng with the toolkit's own reader, since libpcap refuses a pcapng file whose interfaces have
/// different link types. Each record carries its interface's link type.
///
/// ```swift
/// let reader = try PcapReader(path: "capture.pcap")
/// while let record = try reader.next() {
///     guard let ip = LinkLayer.ipPacket(in: record.data, linkType: record.linkType) else { continue }
///     …
/// }
/// ```
public final class PcapReader {
    /// The capture's link-layer type: in pcapng, the first interface's (records carry their own).
    public let linkType: LinkType
    /// The file being read.
    public let path: String
    /// How many records `next()` has returned.
    public private(set) var recordsRead = 0

    /// The file's size in bytes, for progress (0 when it cannot be known, as for a pipe).
    public let fileSize: Int64

    private enum Source {
        case libpcap(OpaquePointer)
        case pcapng(PcapngReader)
    }

    private let source: Source

    public init(path: String) throws(PcapError) {
        self.path = path
        var status = stat()
        fileSize = stat(path, &status) == 0 ? Int64(status.st_size) : 0
        if PcapngReader.looksLikePcapng(path) {
            let reader = try PcapngReader(path: path)
            source = .pcapng(reader)
            linkType = reader.linkType
            return
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let opened = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), buffer.baseAddress)
        }
        guard let opened else {
            throw PcapError(path: path, message: errorBuffer.withUnsafeBufferPointer { cString($0) })
        }
        source = .libpcap(opened)
        linkType = LinkType(rawValue: pcap_datalink(opened))
    }

    deinit {
        if case .libpcap(let handle) = source { pcap_close(handle) }
    }

    /// How far into the file the reader is, in bytes.
    public var bytesRead: Int64 {
        switch source {
        case .pcapng(let reader):
            return reader.bytesRead
        case .libpcap(let handle):
            guard let file = pcap_file(handle) else { return 0 }
            return Int64(ftell(file))
        }
    }

    /// The next record, or `nil` at the end of the file. The record's bytes stay valid until the next call.
    public func next() throws(PcapError) -> PcapRecord? {
        switch source {
        case .libpcap(let handle):
            return try nextFromLibpcap(handle)
        case .pcapng(let reader):
            let packet: PcapngReader.Packet?
            do {
                packet = try reader.next()
            } catch {
                throw PcapError(path: path, message: "record \(recordsRead + 1): " + error.message)
            }
            guard let packet else { return nil }
            recordsRead += 1
            return PcapRecord(number: recordsRead, timestampNanoseconds: packet.timestampNanoseconds,
                              originalLength: packet.originalLength, linkType: packet.linkType, data: packet.data)
        }
    }

    private func nextFromLibpcap(_ handle: OpaquePointer) throws(PcapError) -> PcapRecord? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let result = pcap_next_ex(handle, &header, &data)
        switch result {
        case 1:
            guard let header, let data else { return nil }
            let info = header.pointee
            guard let timestamp = Self.nanosecondsSinceEpoch(seconds: Int64(info.ts.tv_sec), fraction: Int64(info.ts.tv_usec)) else {
                throw PcapError(path: path, message: "record \(recordsRead + 1): its timestamp (\(info.ts.tv_sec) s) is "
                                + "before 1970 or beyond what nanoseconds since 1970 can count in 64 bits")
            }
            recordsRead += 1
            return PcapRecord(
                number: recordsRead,
                timestampNanoseconds: timestamp,
                originalLength: Int(info.len),
                linkType: linkType,
                data: UnsafeRawBufferPointer(start: data, count: Int(info.caplen)))
        case PCAP_ERROR_BREAK:
            return nil
        default:
            throw PcapError(path: path, message: "record \(recordsRead + 1): " + cString(pcap_geterr(handle)))
        }
    }
}

/// One captured frame. `data` is borrowed from the reader and valid until its next `next()`.
public struct PcapRecord {
    /// 1-based position in the file, as tshark numbers frames.
    public var number: Int
    /// Capture time since the Unix epoch.
    public var timestampNanoseconds: Int64
    /// The frame's length on the wire; larger than `data.count` when the capture was truncated.
    public var originalLength: Int
    /// The link type of the interface the frame was captured on.
    public var linkType: LinkType
    public var data: UnsafeRawBufferPointer

    public init(number: Int, timestampNanoseconds: Int64, originalLength: Int, linkType: LinkType, data: UnsafeRawBufferPointer) {
        self.number = number
        self.timestampNanoseconds = timestampNanoseconds
        self.originalLength = originalLength
        self.linkType = linkType
        self.data = data
    }

    /// Whether the capture kept only part of the frame (snaplen).
    public var isTruncated: Bool { data.count < originalLength }
}

/// A capture file could not be opened, read or written.
public struct PcapError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension PcapReader {
    /// pcapng keeps 64-bit counts of its interface's time unit, so libpcap can hand over seconds that wrap
    /// negative or overflow nanoseconds; those are refused rather than trapped on.
    static func nanosecondsSinceEpoch(seconds: Int64, fraction nanoseconds: Int64) -> Int64? {
        guard seconds >= 0, (0..<1_000_000_000).contains(nanoseconds) else { return nil }
        let (whole, overflowed) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflowed else { return nil }
        let (total, overflowedAgain) = whole.addingReportingOverflow(nanoseconds)
        return overflowedAgain ? nil : total
    }
}

func cString(_ pointer: UnsafePointer<CChar>?) -> String {
    guard let pointer else { return "unknown libpcap error" }
    let length = strlen(pointer)
    return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
}

func cString(_ buffer: UnsafeBufferPointer<CChar>) -> String {
    cString(buffer.baseAddress)
}
