import FoundationEssentials
import GRDB
import PortalMessages
import SansIO

/// A client or gateway the portal has seen, by its `external_id`: stable ids and tunnel addresses survive
/// restarts (SQLite through GRDB).
public struct DeviceRecord: Sendable, Equatable {
    public enum Kind: String, Sendable { case client, gateway }

    public var kind: Kind
    public var externalId: String
    public var id: PortalId<DeviceTag>
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    /// The per-device secret of the preshared-key derivation (§6).
    public var pskBase: [UInt8]
}

public enum DeviceTag {}

public final class DeviceStore: Sendable {
    /// Tunnel addresses are allocated from these (spec §6).
    public static let ipv4Network = IpNetwork("100.64.0.0/11")!
    public static let ipv6Network = IpNetwork("fd00:2021:1111::/107")!
    private static let hostCount: UInt32 = 1 << 21

    private let database: DatabaseQueue

    /// Opens (creating if needed) the database at `path`; `nil` keeps it in memory.
    public init(path: String?) throws {
        database = try path.map { try DatabaseQueue(path: $0) } ?? DatabaseQueue()
        try database.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS devices (
                    kind TEXT NOT NULL, external_id TEXT NOT NULL, id TEXT NOT NULL UNIQUE,
                    ipv4 INTEGER NOT NULL UNIQUE, ipv6_offset INTEGER NOT NULL UNIQUE, psk_base BLOB NOT NULL,
                    PRIMARY KEY (kind, external_id))
                """)
        }
    }

    /// The device with this external id, created with fresh addresses (random start, first free) if new.
    public func device(kind: DeviceRecord.Kind, externalId: String) throws -> DeviceRecord {
        try database.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM devices WHERE kind = ? AND external_id = ?",
                                          arguments: [kind.rawValue, externalId]) {
                return Self.record(row, kind: kind, externalId: externalId)
            }
            let takenV4 = Set(try UInt32.fetchAll(db, sql: "SELECT ipv4 FROM devices"))
            let takenV6 = Set(try UInt32.fetchAll(db, sql: "SELECT ipv6_offset FROM devices"))
            let base4 = Self.ipv4Network.firstV4
            let v4 = base4 + Self.freeOffset(taken: Set(takenV4.map { $0 &- base4 }))
            let v6 = Self.freeOffset(taken: takenV6)
            let id = UUID()
            let pskBase = (0..<32).map { _ in UInt8.random(in: 0...255) }
            try db.execute(sql: "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [kind.rawValue, externalId, id.uuidString.lowercased(), v4, v6, Data(pskBase)])
            return DeviceRecord(kind: kind, externalId: externalId, id: PortalId(id), ipv4: IPv4Address(v4),
                                ipv6: Self.ipv6(offset: v6), pskBase: pskBase)
        }
    }

    private static func record(_ row: Row, kind: DeviceRecord.Kind, externalId: String) -> DeviceRecord {
        let id: String = row["id"]
        let pskBase: Data = row["psk_base"]
        return DeviceRecord(kind: kind, externalId: externalId, id: PortalId(id) ?? PortalId(UUID()),
                            ipv4: IPv4Address(row["ipv4"] as UInt32), ipv6: ipv6(offset: row["ipv6_offset"]),
                            pskBase: Array(pskBase))
    }

    /// A host offset in 1..<2^21-1 not in `taken`, probing upwards from a random start.
    private static func freeOffset(taken: Set<UInt32>) -> UInt32 {
        var offset = UInt32.random(in: 1..<(hostCount - 1))
        while taken.contains(offset) { offset = offset % (hostCount - 2) + 1 }
        return offset
    }

    private static func ipv6(offset: UInt32) -> IPv6Address {
        guard case .v6(let base) = ipv6Network.address else { return .unspecified }
        return IPv6Address(high: base.high, low: base.low | UInt64(offset))
    }
}

extension IpNetwork {
    fileprivate var firstV4: UInt32 {
        guard case .v4(let address) = address else { return 0 }
        return address.value
    }
}
