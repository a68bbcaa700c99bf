// TLS with OpenSSL (libssl) for KeyVal's links (docs/SECURITY.md). CAF 0.17's OpenSSL module
// wraps only CAF's own remoting, not brokers, so a broker runs TLS itself: TlsStream keeps one
// connection's TLS state over memory BIOs. The broker hands it the bytes it read from the socket
// (receive) and gets plaintext back; it hands it plaintext (send) and writes the ciphertext that
// take_output gives. No call blocks or touches a socket, so it is safe on the multiplexer thread.
//
// Certificates (scripts/make-certs.sh makes a set): a node's certificate names the node by its
// subject common name "keyval-node-ID" (tls_node_name); clients' certificates may name anything.
// Verification is the chain to the given CA; the node id is checked by the caller against the
// name (tls_peer_name), since the id a peer claims is known only from its hello.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace keyval {

// The files of one side of a TLS link.
struct TlsFiles {
  std::string certificate;  // PEM; may hold the chain
  std::string key;          // PEM private key
  std::string ca;           // PEM CA certificate(s) the other side's certificate must chain to
};

enum class TlsRole { server, client };

// A configured SSL_CTX, shared by the connections of one listener or dialer. TLS 1.2 or above.
class TlsContext {
 public:
  // server: certificate and key required; with ca, a client must present a certificate signed by it.
  // client: ca required (the server's certificate is verified); certificate and key optional.
  // invalid_argument naming the file and OpenSSL's reason when one cannot be loaded.
  static Result<std::shared_ptr<TlsContext>> create(TlsRole role, const TlsFiles& files);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  TlsRole role() const { return role_; }
  SSL_CTX* native() const { return context_; }

 private:
  TlsContext(TlsRole role, SSL_CTX* context) : role_(role), context_(context) {}
  TlsRole role_;
  SSL_CTX* context_;
};

// One connection's TLS over memory BIOs (see the top of this file). Plaintext sent before the
// handshake completes waits inside and goes out once it has.
class TlsStream {
 public:
  explicit TlsStream(std::shared_ptr<TlsContext> context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Ciphertext read from the socket; plaintext now readable is appended to *plain. An error
  // (a failed handshake, a certificate refused, a bad record) names the reason: close the link.
  Status receive(const uint8_t* data, size_t bytes, std::vector<uint8_t>* plain);
  Status send(const uint8_t* data, size_t bytes);
  // Ciphertext to write to the socket (handshake messages, records); empty when none.
  std::vector<uint8_t> take_output();
  bool handshake_done() const { return handshake_done_; }
  // The other side's certificate's common name ("" when it presented none).
  std::string peer_name() const;

 private:
  Status advance(std::vector<uint8_t>* plain);  // drives the handshake, reads what is readable
  Status flush_pending();

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  bool handshake_done_ = false;
  std::vector<uint8_t> pending_;  // plaintext sent before the handshake completed
};

// "keyval-node-7": the common name of node 7's certificate.
std::string tls_node_name(uint64_t node_id);

// OpenSSL's error queue as text (emptied), for messages.
std::string tls_error_text();

}  // namespace keyval
