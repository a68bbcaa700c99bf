// The peer-link handshake's bytes and proofs (see peer_handshake.h), and the secret's file.
#include "actors/peer_handshake.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keyval {
namespace {

const char acceptor_label[] = "KVPEER02 acceptor";
const char dialer_label[] = "KVPEER02 dialer";

void put_u64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t get_u64(const uint8_t* data) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(data[i]) << (8 * i);
  return value;
}

std::optional<PeerLinkMode> mode_of(uint8_t byte) {
  if (byte == static_cast<uint8_t>(PeerLinkMode::open)) return PeerLinkMode::open;
  if (byte == static_cast<uint8_t>(PeerLinkMode::secret)) return PeerLinkMode::secret;
  return std::nullopt;
}

}  // namespace

std::vector<uint8_t> encode_peer_hello(const PeerHello& hello) {
  std::vector<uint8_t> out(peer_hello_magic, peer_hello_magic + peer_magic_bytes);
  put_u64(out, hello.dialer_id);
  put_u64(out, hello.acceptor_id);
  out.push_back(static_cast<uint8_t>(hello.mode));
  out.insert(out.end(), hello.dialer_nonce.begin(), hello.dialer_nonce.end());
  KV_ASSERT(out.size() == peer_hello_bytes);
  return out;
}

std::string peer_magic_refusal(const uint8_t* data) {
  if (std::memcmp(data, peer_hello_magic, peer_magic_bytes) == 0) return "";
  if (std::memcmp(data, peer_hello_magic_v1, peer_magic_bytes) == 0) {
    return "an old hello (KVPEER01): a node of an older version, without the handshake";
  }
  if (std::memcmp(data, peer_hello_magic_v2, peer_magic_bytes) == 0) {
    return "an old hello (KVPEER02): a node of an older version, whose raft entries carry no checksum";
  }
  if (std::memcmp(data, peer_hello_magic_v3, peer_magic_bytes) == 0) {
    return "an old hello (KVPEER03): a node of an older version, whose raft entries are not frames";
  }
  return "not a KeyVal peer hello (wrong magic)";
}

Result<PeerHello> decode_peer_hello(const uint8_t* data, size_t bytes) {
  if (bytes != peer_hello_bytes) return Status::invalid_argument("hello of " + std::to_string(bytes) + " bytes");
  const std::string refusal = peer_magic_refusal(data);
  if (!refusal.empty()) return Status::invalid_argument(refusal);
  PeerHello hello;
  hello.dialer_id = get_u64(data + 8);
  hello.acceptor_id = get_u64(data + 16);
  auto mode = mode_of(data[24]);
  if (!mode) return Status::invalid_argument("unknown link mode " + std::to_string(data[24]) + " in the hello");
  hello.mode = *mode;
  std::memcpy(hello.dialer_nonce.data(), data + 25, peer_nonce_bytes);
  if (hello.dialer_id == 0) return Status::invalid_argument("hello from node id 0 (no node has it)");
  return hello;
}

std::vector<uint8_t> encode_peer_reply(const PeerReply& reply) {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>(reply.mode));
  out.insert(out.end(), reply.acceptor_nonce.begin(), reply.acceptor_nonce.end());
  out.insert(out.end(), reply.acceptor_proof.begin(), reply.acceptor_proof.end());
  KV_ASSERT(out.size() == peer_reply_bytes);
  return out;
}

Result<PeerReply> decode_peer_reply(const uint8_t* data, size_t bytes) {
  if (bytes != peer_reply_bytes) return Status::invalid_argument("handshake reply of " + std::to_string(bytes) + " bytes");
  auto mode = mode_of(data[0]);
  if (!mode) return Status::invalid_argument("unknown link mode " + std::to_string(data[0]) + " in the handshake reply");
  PeerReply reply;
  reply.mode = *mode;
  std::memcpy(reply.acceptor_nonce.data(), data + 1, peer_nonce_bytes);
  std::memcpy(reply.acceptor_proof.data(), data + 1 + peer_nonce_bytes, peer_proof_bytes);
  return reply;
}

PeerNonce make_peer_nonce(PeerLinkMode mode) {
  PeerNonce nonce{};
  if (mode == PeerLinkMode::open) return nonce;
  // RAND_bytes fails only when OpenSSL cannot seed itself: a proof over a predictable nonce
  // could be replayed, so that is a stop, not a fallback.
  KV_ASSERT(RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) == 1);
  return nonce;
}

PeerProof peer_proof(const std::string& secret, PeerProofSide side, const PeerHello& hello,
                     const PeerNonce& acceptor_nonce) {
  const char* label = side == PeerProofSide::acceptor ? acceptor_label : dialer_label;
  std::vector<uint8_t> message(label, label + std::strlen(label));
  put_u64(message, hello.dialer_id);
  put_u64(message, hello.acceptor_id);
  message.insert(message.end(), hello.dialer_nonce.begin(), hello.dialer_nonce.end());
  message.insert(message.end(), acceptor_nonce.begin(), acceptor_nonce.end());
  PeerProof proof{};
  unsigned int length = 0;
  KV_ASSERT(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), message.data(), message.size(),
                 proof.data(), &length) != nullptr);
  KV_ASSERT(length == proof.size());
  return proof;
}

bool peer_proof_matches(const PeerProof& expected, const uint8_t* received) {
  return CRYPTO_memcmp(expected.data(), received, expected.size()) == 0;
}

const char* peer_link_mode_name(PeerLinkMode mode) { return mode == PeerLinkMode::open ? "open" : "cluster secret"; }

Result<std::string> read_cluster_secret(const std::string& path) {
  const std::string what = "cluster secret file " + path + ": ";
  int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) return Status::invalid_argument(what + "cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(descriptor, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(descriptor);
    return Status::invalid_argument(what + "not a regular file");
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(descriptor);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(info.st_mode & 0777));
    return Status::invalid_argument(what + "group or others may access it (mode " + mode + "): chmod 600 " + path);
  }
  std::string secret(cluster_secret_bytes_max + 3, '\0');
  size_t got = 0;
  while (got < secret.size()) {
    ssize_t n = ::read(descriptor, secret.data() + got, secret.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error_number = errno;
      ::close(descriptor);
      return Status::invalid_argument(what + "cannot read: " + std::strerror(error_number));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(descriptor);
  secret.resize(got);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) return Status::invalid_argument(what + "empty");
  if (secret.size() < cluster_secret_bytes_min) {
    return Status::invalid_argument(what + "holds " + std::to_string(secret.size()) + " bytes, fewer than " +
                                    std::to_string(cluster_secret_bytes_min) +
                                    " (make one with: head -c 32 /dev/urandom | base64 > FILE)");
  }
  if (secret.size() > cluster_secret_bytes_max) {
    return Status::invalid_argument(what + "holds more than " + std::to_string(cluster_secret_bytes_max) + " bytes");
  }
  return secret;
}

}  // namespace keyval
