import Foundation
import PortalMessages
@testable import PortalServer
import TestSupport
import Testing

/// §6's derivations against Python's hashlib, hmac, base64 and pbkdf2: an independent implementation of each.
@Suite(.offPool) struct CredentialsTests {
    let clientId = ClientId("3abd725a-733b-4801-ac16-72f26cd98a24")!
    let gatewayId = GatewayId("d263d490-a0bb-452a-8990-01d27a1f1144")!
    let clientKey = WireGuardKey(base64: "fiAjSBWDgQfD1CFJkTwOf4zg+1QhH0eTT+oLaVIMpH8=")!
    let gatewayKey = WireGuardKey(base64: "uMBCkAxTewfSgypIyxdQ18uCi84HLtKmQJy0wvQrYWY=")!

    @Test func matchPython() throws {
        let script = """
            import base64, hashlib, hmac, json, sys
            cid, cpk, gid, gpk = sys.argv[1:5]
            h = base64.b32encode(hashlib.sha256(f"{cid}:{cpk}:{gid}:{gpk}".encode()).digest()).decode().lower().rstrip("=")
            salt = f"WG_PSK|C_ID:{cid}|G_ID:{gid}|C_PK:{cpk}|G_PK:{gpk}".encode()
            psk = base64.b64encode(hashlib.pbkdf2_hmac("sha256", bytes(range(32)) + bytes(range(32, 64)), salt, 1, 32)).decode()
            turn_salt = base64.b64encode(hashlib.sha256(cpk.encode()).digest()).decode().rstrip("=")
            stamp = base64.b64encode(hashlib.sha256(f"1719367575:stamp-secret:{turn_salt}".encode()).digest()).decode().rstrip("=")
            coturn = base64.b64encode(hmac.new(b"coturn-secret", f"1719367575:{turn_salt}".encode(), hashlib.sha1).digest()).decode()
            print(json.dumps({"ice": [h[0:4], h[4:26], h[26:30], h[30:52]], "psk": psk, "salt": turn_salt, "stamp": stamp, "coturn": coturn}))
            """
        let output = try Shell.run("python3", "-c", script, clientId.description, clientKey.base64, gatewayId.description,
                                   gatewayKey.base64).output
        let python = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]

        let ice = Credentials.ice(clientId: clientId, clientKey: clientKey, gatewayId: gatewayId, gatewayKey: gatewayKey)
        #expect([ice.client.ufrag, ice.client.password, ice.gateway.ufrag, ice.gateway.password] == python["ice"] as? [String])
        let psk = Credentials.presharedKey(clientId: clientId, clientKey: clientKey, clientPskBase: Array(0..<32),
                                           gatewayId: gatewayId, gatewayKey: gatewayKey, gatewayPskBase: Array(32..<64))
        #expect(psk.key.base64 == python["psk"] as? String)
        let stamp = Credentials.turn(secret: .stamp("stamp-secret"), publicKey: clientKey, expiresAt: 1_719_367_575)
        #expect(stamp.username == "1719367575:\(python["salt"] as? String ?? "")")
        #expect(stamp.password == python["stamp"] as? String)
        let coturn = Credentials.turn(secret: .coturn("coturn-secret"), publicKey: clientKey, expiresAt: 1_719_367_575)
        #expect(coturn.password == python["coturn"] as? String)
    }

    /// `Portal.Relay.generate_id` in Python, written after its Elixir bit syntax rather than our byte masks.
    @Test func relayIdsMatchThePortalsDerivation() throws {
        let script = """
            import hashlib, sys, uuid
            n = int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:16], "big")
            a, b, c, d = n >> 96, (n >> 80) & 0xFFFF, (n >> 64) & 0xFFF, n & ((1 << 62) - 1)
            print(uuid.UUID(int=(a << 96) | (b << 80) | (4 << 76) | (c << 64) | (2 << 62) | d))
            """
        for secret in ["stamp-secret", String(repeating: "ab", count: 32)] {
            let python = try Shell.run("python3", "-c", script, secret).output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Credentials.relayId(stampSecret: secret).description == python, "\(secret)")
        }
    }
}
