// The peer-link handshake: who is talking, and (with a cluster secret) proof on both sides that
// the other knows the secret, before any Raft frame crosses the link (docs/SECURITY.md).
//
// Bytes on a new peer connection, before the length-prefixed frames of actors/framing.h:
//
//   hello, dialer -> acceptor, peer_hello_bytes (57):
//      0   8  magic "KVPEER04"
//      8   8  the dialer's node id, little-endian (not 0)
//     16   8  the node id the dialer means to reach, little-endian
//     24   1  mode: 0 open (no secret), 1 cluster secret (HMAC-SHA256)
//     25  32  the dialer's nonce (random; zeros in open mode)
//   reply, acceptor -> dialer, peer_reply_bytes (65), sent only when the acceptor accepts the hello:
//      0   1  mode, the same as the hello's
//      1  32  the acceptor's nonce (random; zeros in open mode)
//     33  32  the acceptor's proof: HMAC-SHA256(secret, "KVPEER02 acceptor" | transcript) (zeros: open)
//   proof, dialer -> acceptor, peer_proof_bytes (32), secret mode only, sent once the dialer has
//   checked the acceptor's proof:
//      0  32  HMAC-SHA256(secret, "KVPEER02 dialer" | transcript)
//   transcript = dialer id (8, LE) | acceptor id (8, LE) | dialer nonce (32) | acceptor nonce (32)
//
// Both nonces and both ids are in both proofs, and the two proofs carry different labels, so a
// proof is good for one connection and one direction only: replaying an old one, or reflecting
// the acceptor's proof back to it, fails. The secret itself never crosses the link. The dialer
// sends no frame before it has checked the acceptor's proof; the acceptor delivers no frame
// before it has checked the dialer's. The handshake is not encryption: with a secret but without
// TLS, what follows is authenticated only at the start of the connection (see docs/SECURITY.md).
//
// A hello whose magic is KVPEER01 (16-byte hello, no handshake), KVPEER02 (raft entries
// without their checksum, schema/raft.capnp RaftEntry) or KVPEER03 (entries as RaftEntry
// structs, not frames) comes from a node of an older version: it is refused by name. The proofs' labels kept the "KVPEER02" of the version that made them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

constexpr char peer_hello_magic[8] = {'K', 'V', 'P', 'E', 'E', 'R', '0', '4'};
constexpr char peer_hello_magic_v1[8] = {'K', 'V', 'P', 'E', 'E', 'R', '0', '1'};
constexpr char peer_hello_magic_v2[8] = {'K', 'V', 'P', 'E', 'E', 'R', '0', '2'};
constexpr char peer_hello_magic_v3[8] = {'K', 'V', 'P', 'E', 'E', 'R', '0', '3'};
constexpr size_t peer_magic_bytes = 8;
constexpr size_t peer_nonce_bytes = 32;
constexpr size_t peer_proof_bytes = 32;  // SHA-256
constexpr size_t peer_hello_bytes = peer_magic_bytes + 8 + 8 + 1 + peer_nonce_bytes;
constexpr size_t peer_reply_bytes = 1 + peer_nonce_bytes + peer_proof_bytes;
static_assert(peer_hello_bytes == 57 && peer_reply_bytes == 65, "the handshake's sizes are part of the wire format");

// A cluster secret is read from a file of at least this many bytes (a short one could be
// guessed offline from one recorded handshake) and at most this many.
constexpr size_t cluster_secret_bytes_min = 16;
constexpr size_t cluster_secret_bytes_max = 4096;

enum class PeerLinkMode : uint8_t { open = 0, secret = 1 };

using PeerNonce = std::array<uint8_t, peer_nonce_bytes>;
using PeerProof = std::array<uint8_t, peer_proof_bytes>;

struct PeerHello {
  uint64_t dialer_id = 0;
  uint64_t acceptor_id = 0;
  PeerLinkMode mode = PeerLinkMode::open;
  PeerNonce dialer_nonce{};
};

struct PeerReply {
  PeerLinkMode mode = PeerLinkMode::open;
  PeerNonce acceptor_nonce{};
  PeerProof acceptor_proof{};
};

std::vector<uint8_t> encode_peer_hello(const PeerHello& hello);
// The hello, or invalid_argument naming what is wrong (old magic, unknown mode, node id 0).
Result<PeerHello> decode_peer_hello(const uint8_t* data, size_t bytes);
// Why the first peer_magic_bytes of a hello are refused before the rest is read (an older
// version's magic, by name, or not a KeyVal hello); empty when they name this version.
std::string peer_magic_refusal(const uint8_t* data);

std::vector<uint8_t> encode_peer_reply(const PeerReply& reply);
Result<PeerReply> decode_peer_reply(const uint8_t* data, size_t bytes);

// A fresh random nonce (OpenSSL's RAND_bytes); all zeros in open mode.
PeerNonce make_peer_nonce(PeerLinkMode mode);

enum class PeerProofSide { acceptor, dialer };
// HMAC-SHA256(secret, label of `side` | transcript) as described at the top of this file.
PeerProof peer_proof(const std::string& secret, PeerProofSide side, const PeerHello& hello,
                     const PeerNonce& acceptor_nonce);
// Constant-time comparison (CRYPTO_memcmp): a timing difference would tell a forger how many
// leading bytes it got right.
bool peer_proof_matches(const PeerProof& expected, const uint8_t* received);

const char* peer_link_mode_name(PeerLinkMode mode);  // "open", "cluster secret"

// Reads a cluster secret from `path`: refused (invalid_argument naming the file and why) when the
// file cannot be read, is not a regular file, is readable or writable by group or others, or
// holds fewer than cluster_secret_bytes_min or more than cluster_secret_bytes_max bytes. One
// trailing newline ("\n" or "\r\n") is not part of the secret, so `echo` and editors can write it.
Result<std::string> read_cluster_secret(const std::string& path);

}  // namespace keyval
