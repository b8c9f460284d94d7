#if canImport(Glibc)
import CLibssl
import Glibc
import SansIO

/// What TLS sessions share: the role, and the server's certificate or the client's trust (OpenSSL's `SSL_CTX`).
public final class TlsContext: @unchecked Sendable {
    let context: OpaquePointer
    let isServer: Bool

    /// A server presenting the PEM certificate chain and private key in these files (TLS 1.2 and later).
    public static func server(certificateFile: String, privateKeyFile: String) throws(TlsError) -> TlsContext {
        let context = try TlsContext(server: true)
        guard SSL_CTX_use_certificate_chain_file(context.context, certificateFile) == 1 else {
            throw .configuration("cannot use the certificate in \(certificateFile): \(TlsError.queue())")
        }
        guard SSL_CTX_use_PrivateKey_file(context.context, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw .configuration("cannot use the private key in \(privateKeyFile): \(TlsError.queue())")
        }
        guard SSL_CTX_check_private_key(context.context) == 1 else {
            throw .configuration("the private key in \(privateKeyFile) does not match the certificate: \(TlsError.queue())")
        }
        return context
    }

    /// A client that trusts the system's certificate authorities, or only those in `trustedCertificatesFile`.
    public static func client(trustedCertificatesFile: String? = nil) throws(TlsError) -> TlsContext {
        let context = try TlsContext(server: false)
        let loaded = trustedCertificatesFile.map { SSL_CTX_load_verify_locations(context.context, $0, nil) }
            ?? SSL_CTX_set_default_verify_paths(context.context)
        guard loaded == 1 else { throw .configuration("cannot load trusted certificates: \(TlsError.queue())") }
        SSL_CTX_set_verify(context.context, SSL_VERIFY_PEER, nil)
        return context
    }

    private init(server: Bool) throws(TlsError) {
        guard let context = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw .configuration("SSL_CTX_new: \(TlsError.queue())")
        }
        _ = ctls_set_min_tls12(context)
        self.context = context
        isServer = server
    }

    deinit { SSL_CTX_free(context) }
}

/// One TLS connection over memory buffers: the owner moves ciphertext between the socket and the session, and
/// plaintext in and out of it. No IO here, so it fits any event loop.
///
/// ```swift
/// session.receive(bytesFromSocket)                 // ciphertext in (the handshake included)
/// let n = try session.read(into: plaintextBuffer)  // plaintext out, 0 when none yet
/// try session.write(frame)                         // plaintext in
/// session.takeOutput { socket.write($0) }          // ciphertext out
/// ```
public final class TlsSession {
    private let ssl: OpaquePointer
    private let incoming: OpaquePointer
    private let outgoing: OpaquePointer
    /// Plaintext written before the handshake completed.
    private var unsent: [UInt8] = []
    private var failure: TlsError?

    /// A session in the context's role; a client names the server (SNI) and checks the certificate against `serverName`.
    public init(context: TlsContext, serverName: String? = nil) throws(TlsError) {
        guard let ssl = SSL_new(context.context), let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            throw .configuration("SSL_new: \(TlsError.queue())")
        }
        SSL_set_bio(ssl, incoming, outgoing)  // the session owns both BIOs from here
        (self.ssl, self.incoming, self.outgoing) = (ssl, incoming, outgoing)
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            if let serverName {
                // SNI names hosts, never addresses (RFC 6066 §3); OpenSSL 3 checks either against the certificate.
                if IpAddress(serverName) == nil { _ = ctls_set_server_name(ssl, serverName) }
                _ = SSL_set1_host(ssl, serverName)
            }
            SSL_set_connect_state(ssl)
            _ = SSL_do_handshake(ssl)  // the ClientHello, ready in the output
        }
    }

    deinit { SSL_free(ssl) }

    /// Whether the handshake completed.
    public var isEstablished: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Ciphertext that arrived from the socket.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        _ = BIO_write(incoming, bytes.baseAddress, Int32(bytes.count))
    }

    /// Decrypted bytes into `buffer`: their count, 0 when nothing more is readable yet. Throws once the peer closed the
    /// session or sent something TLS refuses (the connection is then to be closed).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TlsError) -> Int {
        if let failure { throw failure }
        guard !buffer.isEmpty else { return 0 }
        let count = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if count > 0 {
            try flushUnsent()
            return Int(count)
        }
        switch SSL_get_error(ssl, count) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            try flushUnsent()
            return 0
        case SSL_ERROR_ZERO_RETURN:
            throw fail(.closed)
        default:
            throw fail(.protocolError(TlsError.queue()))
        }
    }

    /// Plaintext to send; held until the handshake completes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(TlsError) {
        if let failure { throw failure }
        guard unsent.isEmpty, isEstablished else {
            unsent.append(contentsOf: bytes)
            return
        }
        try writeNow(bytes)
    }

    /// Bytes waiting to go to the socket.
    public var pendingOutput: Int { Int(BIO_ctrl_pending(outgoing)) }

    /// Hands the ciphertext waiting for the socket to `body`, in chunks of at most `buffer.count` bytes, and forgets it.
    public func takeOutput(using buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        while pendingOutput > 0 {
            let count = BIO_read(outgoing, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
            guard count > 0 else { return }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(count)]))
        }
    }

    private func flushUnsent() throws(TlsError) {
        guard !unsent.isEmpty, isEstablished else { return }
        let pending = unsent
        unsent = []
        let written = pending.withUnsafeBytes { raw in Result { () throws(TlsError) in try writeNow(raw) } }
        try written.get()
    }

    private func writeNow(_ bytes: UnsafeRawBufferPointer) throws(TlsError) {
        guard !bytes.isEmpty else { return }
        let written = SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
        guard written == Int32(bytes.count) else { throw fail(.protocolError(TlsError.queue())) }
    }

    private func fail(_ error: TlsError) -> TlsError {
        failure = error
        return error
    }
}

/// Why TLS could not be set up or went wrong.
public enum TlsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A certificate, key or trust store that cannot be used.
    case configuration(String)
    /// The peer closed the session (close_notify).
    case closed
    /// The peer sent what TLS refuses: not TLS, a failed handshake, a certificate that does not verify.
    case protocolError(String)

    public var description: String {
        switch self {
        case .configuration(let reason): "TLS configuration: \(reason)"
        case .closed: "the TLS session was closed by the peer"
        case .protocolError(let reason): "TLS: \(reason)"
        }
    }

    /// OpenSSL's error queue as text, emptied.
    static func queue() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? "no detail from OpenSSL" : reasons.joined(separator: "; ")
    }
}
#endif
