import AppRuntime
import CLinuxIO
import Foundation
import SansIO
import Testing
import TestSupport

/// Batched UDP against the kernel itself, in a namespace with only a loopback device: what segmentation offload
/// sends arrives as the datagrams it stands for, receive offload hands a run back as one buffer with its segment
/// size, and a refused destination does not stop the rest of a batch.
@Suite("AppRuntime: UDP sockets with batched reads and writes, GRO and GSO (root)")
struct UdpSocketTests {
    /// `count` datagrams of `size` bytes, each filled with its own index.
    static func payloads(_ count: Int, size: Int) -> [[UInt8]] {
        (0..<count).map { [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: size) }
    }

    /// Reads until `expected` segments arrived; the datagrams as read (bytes, segment size, source).
    static func drain(_ socket: AppRuntime.UdpSocket, expecting expected: Int) throws
        -> [(bytes: [UInt8], segmentSize: Int, source: SocketAddress?, destination: IpAddress?)] {
        let batch = ReceiveBatch(capacity: 16)
        var read: [(bytes: [UInt8], segmentSize: Int, source: SocketAddress?, destination: IpAddress?)] = []
        var segments = 0
        var descriptor = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while segments < expected, poll(&descriptor, 1, 2_000) > 0 {
            for index in 0..<(try socket.receive(into: batch)) {
                let bytes = Array(batch.bytes(at: index)), size = batch.segmentSize(at: index)
                read.append((bytes, size, batch.source(at: index), batch.destination(at: index)))
                segments += (bytes.count + size - 1) / size
            }
        }
        return read
    }

    @Test("GSO: a run of equal datagrams goes as one buffer and arrives as the datagrams, in order")
    func segmentationOffload() async throws {
        let received = try await TestNamespace.with("gso") { namespace in try namespace.inside { () throws -> [[UInt8]] in
            var plain = UdpSocket.Options()
            plain.receiveOffload = false
            let receiver = try UdpSocket(bind: SocketAddress("0.0.0.0:0")!, options: plain)
            let sender = try UdpSocket(bind: SocketAddress("127.0.0.1:0")!)
            #expect(sender.sendOffload)
            let batch = SendBatch(coalescing: sender.sendOffload)
            let destination = SocketAddress(ip: IpAddress("127.0.0.1")!, port: receiver.localAddress.port)
            for payload in Self.payloads(20, size: 1200) + [[UInt8](repeating: 0xEE, count: 300)] {
                #expect(payload.withUnsafeBytes { batch.append($0, to: destination) })
            }
            let result = sender.send(batch)
            #expect(result.sent == 21 && result.refused.isEmpty)
            let read = try Self.drain(receiver, expecting: 21)
            #expect(read.allSatisfy { $0.source == sender.localAddress && $0.segmentSize == $0.bytes.count })
            #expect(read.allSatisfy { $0.destination == IpAddress("127.0.0.1")! }, "the wildcard socket learns which address was reached")
            return read.map(\.bytes)
        } }
        #expect(received == Self.payloads(20, size: 1200) + [[UInt8](repeating: 0xEE, count: 300)])
    }

    @Test("GRO: the receiver gets a segmented send back as one buffer and its segment size")
    func receiveOffload() async throws {
        let read = try await TestNamespace.with("gro") { namespace in try namespace.inside { () throws -> [(bytes: [UInt8], segmentSize: Int)] in
            let receiver = try UdpSocket(bind: SocketAddress("[::1]:0")!)
            let sender = try UdpSocket(bind: SocketAddress("[::1]:0")!)
            #expect(receiver.receiveOffload)
            let batch = SendBatch(coalescing: true)
            for payload in Self.payloads(10, size: 1000) { _ = payload.withUnsafeBytes { batch.append($0, to: receiver.localAddress) } }
            #expect(sender.send(batch).sent == 10)
            return try Self.drain(receiver, expecting: 10).map { ($0.bytes, $0.segmentSize) }
        } }
        #expect(read.count == 1, "one coalesced buffer, not \(read.count)")
        #expect(read.first?.segmentSize == 1000)
        #expect(read.first?.bytes == Self.payloads(10, size: 1000).flatMap { $0 })
    }

    @Test("batches group runs per destination and size, up to the kernel's segment limit")
    func grouping() throws {
        let batch = SendBatch(capacity: 4, coalescing: true)
        let a = SocketAddress("127.0.0.1:1000")!, b = SocketAddress("127.0.0.1:2000")!
        let full = [UInt8](repeating: 1, count: 100), short = [UInt8](repeating: 2, count: 40)
        for _ in 0..<65 { #expect(full.withUnsafeBytes { batch.append($0, to: a) }) }
        #expect(short.withUnsafeBytes { batch.append($0, to: a) })
        #expect(full.withUnsafeBytes { batch.append($0, to: a) }, "after a short segment a new group starts")
        #expect(batch.datagramCount == 67)
        #expect(full.withUnsafeBytes { batch.append($0, to: b) }, "groups: 64 segments, then one and the short, then one, then b")
        #expect(!full.withUnsafeBytes { batch.append($0, to: a) }, "a batch of four groups is full")
    }

    @Test("a refused destination is reported and skipped; the firewall mark and large buffers are set")
    func refusalsAndOptions() async throws {
        let outcome = try await TestNamespace.with("udp") { namespace in try namespace.inside { () throws -> String in
            let receiver = try UdpSocket(bind: SocketAddress("127.0.0.1:0")!)
            let sender = try UdpSocket(bind: SocketAddress("0.0.0.0:0")!, options: UdpSocket.Options(firewallMark: 0xFD00_2021))
            var mark: UInt32 = 0
            var length = socklen_t(4)
            getsockopt(sender.fileDescriptor, SOL_SOCKET, CUDP_SO_MARK, &mark, &length)
            let batch = SendBatch(coalescing: false)
            let payload: [UInt8] = [1, 2, 3]
            for destination in [receiver.localAddress, SocketAddress("192.0.2.1:9")!, receiver.localAddress] {
                _ = payload.withUnsafeBytes { batch.append($0, to: destination) }
            }
            let result = sender.send(batch)
            let arrived = try Self.drain(receiver, expecting: 2).count
            return "mark \(String(mark, radix: 16)) sent \(result.sent) arrived \(arrived) refused \(result.refused.map(\.description))"
                + " buffers \(sender.bufferSizes.receive >= 16 << 20 && sender.bufferSizes.send >= 16 << 20)"
        } }
        #expect(outcome == "mark fd002021 sent 2 arrived 2 refused [\"sendmmsg to 192.0.2.1:9: Network is unreachable\"] buffers true")
    }

    /// Firezone #10279: a kernel refuses a segmented send the egress path cannot offload: EIO from a device
    /// without transmit checksum offload (`ethtool -K <dev> tx off`, as eBPF setups do) on kernels before 6.11,
    /// which checksum in software since; EINVAL for a socket without UDP checksums (`SO_NO_CHECK`), the refusal
    /// provoked here. The message's datagrams go again one by one, and the socket segments no more.
    @Test("GSO refused by the kernel: the datagrams go one by one, in order, and segmentation stays off")
    func segmentationRefused() async throws {
        let outcome = try await TestNamespace.with("gsoeio") { namespace in
            return try namespace.inside { () throws -> String in
                var plain = UdpSocket.Options()
                plain.receiveOffload = false
                let receiver = try UdpSocket(bind: SocketAddress("127.0.0.1:0")!, options: plain)
                let sender = try UdpSocket(bind: SocketAddress("127.0.0.1:0")!)
                var noChecksum: Int32 = 1
                setsockopt(sender.fileDescriptor, SOL_SOCKET, SO_NO_CHECK, &noChecksum, socklen_t(MemoryLayout<Int32>.size))
                let offloadBefore = sender.sendOffload
                let batch = SendBatch(coalescing: sender.sendOffload)
                for payload in Self.payloads(10, size: 1000) + [[UInt8](repeating: 0xEE, count: 100)] + Self.payloads(5, size: 500) {
                    _ = payload.withUnsafeBytes { batch.append($0, to: receiver.localAddress) }
                }
                let first = sender.send(batch)
                let firstRead = try Self.drain(receiver, expecting: 16)
                for payload in Self.payloads(8, size: 1000) { _ = payload.withUnsafeBytes { batch.append($0, to: receiver.localAddress) } }
                let second = sender.send(batch)
                let secondRead = try Self.drain(receiver, expecting: 8)
                return "offload \(offloadBefore)->\(sender.sendOffload) coalescing \(batch.coalescing)"
                    + " first sent \(first.sent) refused \(first.refused.count) fell back \(first.segmentationRefused) arrived \(firstRead.count)"
                    + " in order \(firstRead.map(\.bytes) == Self.payloads(10, size: 1000) + [[UInt8](repeating: 0xEE, count: 100)] + Self.payloads(5, size: 500))"
                    + " second sent \(second.sent) fell back \(second.segmentationRefused) arrived \(secondRead.count)"
            }
        }
        #expect(outcome == "offload true->false coalescing false first sent 16 refused 0 fell back true arrived 16 in order true"
                + " second sent 8 fell back false arrived 8")
    }

    @Test("a preferred port is taken when free; when another socket has it, the kernel picks one and says why")
    func preferredPort() async throws {
        let outcome = try await TestNamespace.with("port") { namespace in try namespace.inside { () throws -> String in
            let holder = try UdpSocket(bind: SocketAddress("127.0.0.1:0")!)
            let port = holder.localAddress.port
            let busy = try UdpSocket.bind(IpAddress("127.0.0.1")!, preferringPort: port)
            let free = try UdpSocket.bind(IpAddress("127.0.0.1")!, preferringPort: 52625)
            return "busy: other port \(busy.socket.localAddress.port != port) \(busy.unavailable?.errno == EADDRINUSE)"
                + " free: \(free.socket.localAddress.port) \(free.unavailable == nil)"
        } }
        #expect(outcome == "busy: other port true true free: 52625 true")
    }
}
