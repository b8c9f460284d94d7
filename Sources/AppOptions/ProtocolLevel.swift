/// The Firezone releases whose protocol our apps implement, and announce in their User-Agent. The portal decides
/// by this version what to send (spec `portal-phoenix.md` §8): the Internet resource (from 1.3), the modern
/// wildcard syntax (from 1.2), `sites` instead of `gateway_groups` (headless from 1.5.6), client-to-client
/// access and device pools (headless from 1.5.7 and 1.5.9; our client ignores them), and which gateways may
/// serve which clients (a gateway within one minor version below and two above the client's). The newest
/// published releases keep our client and gateway inside the window of every current Firezone client and
/// gateway.
public enum ProtocolLevel {
    /// Our own version, in logs and `--version`.
    public static let toolkit = "0.2.0"
    /// `headless-client/1.5.11`, published 2026-08-09.
    public static let headlessClient = "1.5.11"
    /// `gateway/1.6.0`, published 2026-08-09.
    public static let gateway = "1.6.0"

    /// `0.2.0 (Firezone gateway 1.6.0 protocol)`, for `--version`.
    public static func versionText(firezoneComponent: String, firezoneVersion: String) -> String {
        "\(toolkit) (Firezone \(firezoneComponent) \(firezoneVersion) protocol)"
    }
}
