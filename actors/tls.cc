// TLS contexts and memory-BIO streams (see tls.h).
#include "actors/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace keyval {

std::string tls_error_text() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += (text.empty() ? "" : "; ") + std::string(buffer);
  }
  return text.empty() ? "no detail from OpenSSL" : text;
}

std::string tls_node_name(uint64_t node_id) { return "keyval-node-" + std::to_string(node_id); }

Result<std::shared_ptr<TlsContext>> TlsContext::create(TlsRole role, const TlsFiles& files) {
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(role == TlsRole::server ? TLS_server_method() : TLS_client_method());
  if (context == nullptr) return Status::io_error("SSL_CTX_new: " + tls_error_text());
  std::shared_ptr<TlsContext> owned(new TlsContext(role, context));
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  // The brokers write what SSL_write produced at once; memory BIOs never need a retry.
  SSL_CTX_set_mode(context, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (role == TlsRole::server && (files.certificate.empty() || files.key.empty())) {
    return Status::invalid_argument("a TLS listener needs a certificate and a key");
  }
  if (role == TlsRole::client && files.ca.empty()) {
    return Status::invalid_argument("a TLS client needs the CA certificate that signed the nodes' certificates");
  }
  if (files.certificate.empty() != files.key.empty()) {
    return Status::invalid_argument("a TLS certificate and its key go together (one of them is missing)");
  }
  if (!files.certificate.empty()) {
    if (SSL_CTX_use_certificate_chain_file(context, files.certificate.c_str()) != 1) {
      return Status::invalid_argument("TLS certificate " + files.certificate + ": " + tls_error_text());
    }
    if (SSL_CTX_use_PrivateKey_file(context, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Status::invalid_argument("TLS key " + files.key + ": " + tls_error_text());
    }
    if (SSL_CTX_check_private_key(context) != 1) {
      return Status::invalid_argument("TLS key " + files.key + " does not match certificate " + files.certificate);
    }
  }
  if (!files.ca.empty()) {
    if (SSL_CTX_load_verify_locations(context, files.ca.c_str(), nullptr) != 1) {
      return Status::invalid_argument("TLS CA " + files.ca + ": " + tls_error_text());
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (role == TlsRole::server) {
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str())) SSL_CTX_set_client_CA_list(context, names);
    }
  }
  return owned;
}

TlsContext::~TlsContext() { SSL_CTX_free(context_); }

TlsStream::TlsStream(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->native());
  KV_ASSERT(ssl_ != nullptr);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  KV_ASSERT(in != nullptr && out != nullptr);
  SSL_set_bio(ssl_, in, out);  // ssl_ owns both
  if (context_->role() == TlsRole::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

std::vector<uint8_t> TlsStream::take_output() {
  std::vector<uint8_t> out;
  BIO* bio = SSL_get_wbio(ssl_);
  size_t pending = BIO_ctrl_pending(bio);
  if (pending == 0) return out;
  out.resize(pending);
  int got = BIO_read(bio, out.data(), static_cast<int>(pending));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

Status TlsStream::advance(std::vector<uint8_t>* plain) {
  ERR_clear_error();
  if (!handshake_done_) {
    int result = SSL_do_handshake(ssl_);
    if (result != 1) {
      int error = SSL_get_error(ssl_, result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return Status::ok();
      long verify = SSL_get_verify_result(ssl_);
      std::string why = verify != X509_V_OK ? std::string("certificate refused: ") + X509_verify_cert_error_string(verify)
                                            : tls_error_text();
      return Status::io_error("TLS handshake failed: " + why);
    }
    handshake_done_ = true;
    KV_RETURN_IF_ERROR(flush_pending());
  }
  uint8_t buffer[16384];
  while (true) {
    int got = SSL_read(ssl_, buffer, sizeof buffer);
    if (got > 0) {
      if (plain != nullptr) plain->insert(plain->end(), buffer, buffer + got);
      continue;
    }
    int error = SSL_get_error(ssl_, got);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return Status::ok();
    if (error == SSL_ERROR_ZERO_RETURN) return Status::io_error("TLS closed by the other side");
    return Status::io_error("TLS: " + tls_error_text());
  }
}

Status TlsStream::receive(const uint8_t* data, size_t bytes, std::vector<uint8_t>* plain) {
  if (bytes > 0 && BIO_write(SSL_get_rbio(ssl_), data, static_cast<int>(bytes)) != static_cast<int>(bytes)) {
    return Status::io_error("TLS: cannot buffer " + std::to_string(bytes) + " bytes");
  }
  return advance(plain);
}

Status TlsStream::flush_pending() {
  if (pending_.empty()) return Status::ok();
  std::vector<uint8_t> pending;
  pending.swap(pending_);
  return send(pending.data(), pending.size());
}

Status TlsStream::send(const uint8_t* data, size_t bytes) {
  if (!handshake_done_) {
    pending_.insert(pending_.end(), data, data + bytes);
    return advance(nullptr);  // starts the handshake (a client's first flight)
  }
  ERR_clear_error();
  size_t done = 0;
  while (done < bytes) {
    int wrote = SSL_write(ssl_, data + done, static_cast<int>(std::min<size_t>(bytes - done, 1u << 30)));
    if (wrote <= 0) return Status::io_error("TLS write: " + tls_error_text());
    done += static_cast<size_t>(wrote);
  }
  return Status::ok();
}

std::string TlsStream::peer_name() const {
  X509* certificate = SSL_get1_peer_certificate(ssl_);
  if (certificate == nullptr) return "";
  char name[256] = {0};
  int length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
  X509_free(certificate);
  return length > 0 ? std::string(name, static_cast<size_t>(length)) : std::string();
}

}  // namespace keyval
