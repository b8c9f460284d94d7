import CPcap
import Testing

@Suite struct PcapLibraryTests {
    /// libpcap opens the committed kernel capture and reports its link type and every record.
    @Test func opensCommittedCapture() throws {
        let path = fixturePath("captures/kernel-traffic.pcap")
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let handle = try #require(pcap_open_offline(path, &errorBuffer))
        defer { pcap_close(handle) }
        #expect(pcap_datalink(handle) == DLT_EN10MB)
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        var records = 0
        while pcap_next_ex(handle, &header, &data) == 1 {
            records += 1
            #expect(header?.pointee.caplen ?? 0 > 14)
        }
        #expect(records > 20)
    }
}

func fixturePath(_ relative: String) -> String {
    let testFile = "\(#filePath)"
    let repository = testFile.split(separator: "/").dropLast(3).joined(separator: "/")
    return "/" + repository + "/Fixtures/" + relative
}
