import Foundation
import SansIO
import Testing

/// `PortalId`: the portal's UUIDs as two words, parsed and printed without Foundation.
@Suite struct PortalIdTests {
    @Test func parsesEitherCaseAndPrintsLowercase() throws {
        let id = try #require(ResourceId("F16ECFA0-a94f-4BFD-A2EF-1cc1f2ef3da3"))
        #expect(id.description == "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3")
        #expect(id.high == 0xF16E_CFA0_A94F_4BFD && id.low == 0xA2EF_1CC1_F2EF_3DA3)
        #expect(ResourceId("00000000-0000-0000-0000-000000000065")?.description == "00000000-0000-0000-0000-000000000065")
    }

    @Test(arguments: [
        "", "f16ecfa0a94f4bfda2ef1cc1f2ef3da3", "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da", "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3a",
        "f16ecfa0-a94f-4bfd-a2ef1-cc1f2ef3da3", "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3dg3", " f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3",
        "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3\n", "f16ecfa0+a94f-4bfd-a2ef-1cc1f2ef3da3", "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3dä",
    ])
    func refusesAnythingElse(_ text: String) {
        #expect(ResourceId(text) == nil)
    }

    @Test func orderIsTheTextsOrder() throws {
        let texts = ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-00000000000a", "0000000a-0000-4000-8000-000000000001",
                     "ffffffff-0000-4000-8000-000000000000"]
        let ids = texts.compactMap { GatewayId($0) }
        #expect(ids.sorted().map(\.description) == texts.sorted())
    }

    @Test func jsonCarriesTheText() throws {
        let id = try #require(SiteId("ABCDEF01-2345-4678-9abc-def012345678"))
        let json = try JSONEncoder().encode([id])
        #expect(String(decoding: json, as: UTF8.self) == #"["abcdef01-2345-4678-9abc-def012345678"]"#)
        #expect(try JSONDecoder().decode([SiteId].self, from: json) == [id])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([SiteId].self, from: Data(#"["not-a-uuid"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([SiteId].self, from: Data("[7]".utf8)) }
    }

    @Test func randomIdsAreVersionFourAndParseBack() {
        var generator = SplitMix64(seed: 9)
        for _ in 0..<100 {
            let id = ClientId.random(using: &generator)
            let text = id.description
            #expect(Array(text)[14] == "4")
            #expect("89ab".contains(Array(text)[19]))
            #expect(ClientId(text) == id)
            #expect(UUID(uuidString: text) != nil, "Foundation reads it as a UUID")
        }
    }
}
