#pragma once
// OpenSSL's TLS (libssl) for TURN over TLS: sessions over memory BIOs, so the event loop owns the sockets.
// Functions here stand in for OpenSSL's macros, which Swift cannot call.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline long ctls_set_min_tls12(SSL_CTX *context) {
    return SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
}

static inline long ctls_set_server_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
