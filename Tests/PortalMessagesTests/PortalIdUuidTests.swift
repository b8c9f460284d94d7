import Foundation
import PortalMessages
import Testing

/// The portal ids and Foundation's `UUID` convert both ways without loss.
@Suite struct PortalIdUuidTests {
    @Test func roundTripsThroughFoundationUuid() throws {
        for _ in 0..<50 {
            let uuid = UUID()
            let id = ResourceId(uuid)
            #expect(id.uuid == uuid)
            #expect(id.description == uuid.uuidString.lowercased())
            #expect(ResourceId(uuid.uuidString) == id)
        }
    }
}
