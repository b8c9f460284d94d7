import CPcap

/// Writes a classic pcap file with nanosecond timestamps through libpcap.
///
/// ```swift
/// let writer = try PcapWriter(path: "out.pcap", linkType: .raw)
/// try writer.write(packetBytes, timestampNanoseconds: 0)
/// writer.close()
/// ```
public final class PcapWriter {
    public let path: String
    public let linkType: LinkType
    private let dead: OpaquePointer
    private var dumper: OpaquePointer?

    public init(path: String, linkType: LinkType, snapLength: Int32 = 65_535) throws(PcapError) {
        guard let dead = pcap_open_dead_with_tstamp_precision(
            linkType.rawValue, snapLength, UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else { throw PcapError(path: path, message: "libpcap cannot write link type \(linkType.rawValue)") }
        guard let dumper = pcap_dump_open(dead, path) else {
            let message = cString(pcap_geterr(dead))
            pcap_close(dead)
            throw PcapError(path: path, message: message)
        }
        self.dead = dead
        self.dumper = dumper
        self.path = path
        self.linkType = linkType
    }

    deinit {
        close()
        pcap_close(dead)
    }

    /// Appends one frame.
    public func write(_ bytes: UnsafeRawBufferPointer, timestampNanoseconds: Int64) throws(PcapError) {
        guard let dumper else { throw PcapError(path: path, message: "write after close") }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(timestampNanoseconds / 1_000_000_000)
        // With nanosecond precision libpcap stores nanoseconds in tv_usec.
        header.ts.tv_usec = Int(timestampNanoseconds % 1_000_000_000)
        header.caplen = UInt32(bytes.count)
        header.len = UInt32(bytes.count)
        guard let base = bytes.baseAddress else { return }
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header,
                  base.assumingMemoryBound(to: UInt8.self))
    }

    /// Appends one frame from an array.
    public func write(_ bytes: [UInt8], timestampNanoseconds: Int64) throws(PcapError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(PcapError) in try write(raw, timestampNanoseconds: timestampNanoseconds) }
        }
        try result.get()
    }

    /// Flushes and closes the file; later writes fail.
    public func close() {
        guard let dumper else { return }
        pcap_dump_close(dumper)
        self.dumper = nil
    }
}
