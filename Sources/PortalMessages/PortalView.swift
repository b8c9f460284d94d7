import FoundationEssentials
import PhoenixChannel

/// How the portal renders its pushes for one connection (spec `portal-phoenix.md` §8): the API generation of
/// the socket, which names some events, and whether the client's version reads `sites`/`site_id` rather than
/// `gateway_groups`/`gateway_group_id`. Decoding accepts both spellings; only encoding needs a view.
public struct PortalView: Sendable, Hashable {
    public var api: PortalApi
    /// `sites` and `site_id` (headless clients from 1.5.6 on); `gateway_groups` and `gateway_group_id` before.
    public var sitesKey: Bool

    public init(api: PortalApi, sitesKey: Bool) {
        self.api = api
        self.sitesKey = sitesKey
    }

    /// The late-2025 portal's rendering, and what encoding without a view produces.
    public static let v1 = PortalView(api: .v1, sitesKey: false)
    /// Today's portal for today's clients.
    public static let v2 = PortalView(api: .v2, sitesKey: true)

    static let userInfoKey = CodingUserInfoKey(rawValue: "firezone.portalView")!

    /// The view an encoder was given, `.v1` when none.
    static func of(_ encoder: any Encoder) -> PortalView {
        encoder.userInfo[userInfoKey] as? PortalView ?? .v1
    }
}
