// Writing a broker's bytes straight to its connection's socket (see direct_send.h).
#include "actors/direct_send.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <string>

namespace keyval {

int accepted_socket(caf::io::abstract_broker* self, caf::io::connection_handle handle) {
  const int64_t id = handle.id();
  if (id < 0 || id > INT32_MAX) return -1;
  const int fd = static_cast<int>(id);
  int type = 0;
  socklen_t type_size = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_size) != 0 || type != SOCK_STREAM) return -1;
  sockaddr_storage peer{};
  socklen_t peer_size = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) return -1;
  char text[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (peer.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    if (::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text) == nullptr) return -1;
    port = ntohs(v4->sin_port);
  } else if (peer.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    if (::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text) == nullptr) return -1;
    port = ntohs(v6->sin6_port);
  } else {
    return -1;
  }
  if (port != self->remote_port(handle) || self->remote_addr(handle) != text) return -1;
  return fd;
}

namespace {

// Hands the pieces from byte `skip` on to CAF, which writes them from its loop.
size_t hand_to_caf(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                   const DirectPiece* pieces, size_t count, size_t skip, bool keep_acks) {
  size_t handed = 0;
  for (size_t i = 0; i < count; ++i) {
    const DirectPiece& piece = pieces[i];
    if (skip >= piece.size) {
      skip -= piece.size;
      continue;
    }
    self->write(handle, piece.size - skip, static_cast<const char*>(piece.data) + skip);
    handed += piece.size - skip;
    skip = 0;
  }
  if (handed == 0) return 0;
  if (socket.fd >= 0 && socket.caf_bytes == 0 && !keep_acks) self->ack_writes(handle, true);
  if (socket.fd >= 0) socket.caf_bytes += handed;
  self->flush(handle);
  return handed;
}

constexpr size_t vectors_per_call = 64;  // well under IOV_MAX (1024)

}  // namespace

size_t send_direct(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                   const DirectPiece* pieces, size_t count, bool keep_acks) {
  if (socket.fd < 0 || socket.caf_bytes > 0 || !self->valid(handle)) {
    return hand_to_caf(self, handle, socket, pieces, count, 0, keep_acks);
  }
  // One sendmsg per 64 pieces; whatever a call leaves (a full buffer, or an error that CAF's
  // own write then meets and reports as the connection's failure) goes to CAF with the rest.
  size_t sent_total = 0;
  for (size_t first = 0; first < count;) {
    iovec vectors[vectors_per_call];
    size_t used = 0, bytes = 0, next = first;
    for (; next < count && used < vectors_per_call; ++next) {
      if (pieces[next].size == 0) continue;
      vectors[used++] = iovec{const_cast<void*>(pieces[next].data), pieces[next].size};
      bytes += pieces[next].size;
    }
    if (bytes > 0) {
      msghdr message{};
      message.msg_iov = vectors;
      message.msg_iovlen = used;
      ssize_t sent;
      do {
        sent = ::sendmsg(socket.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (sent < 0 && errno == EINTR);
      const size_t taken = sent < 0 ? 0 : static_cast<size_t>(sent);
      sent_total += taken;
      if (taken < bytes) return hand_to_caf(self, handle, socket, pieces, count, sent_total, keep_acks);
    }
    first = next;
  }
  return 0;
}

void direct_transferred(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                        uint64_t written, bool keep_acks) {
  if (socket.fd < 0 || socket.caf_bytes == 0) return;
  socket.caf_bytes -= std::min(socket.caf_bytes, written);
  if (socket.caf_bytes == 0 && !keep_acks) self->ack_writes(handle, false);
}

}  // namespace keyval
