// Writing a broker's bytes straight to its connection's socket.
//
// CAF 0.17 writes a broker's bytes from its multiplexer loop: flush() registers interest in
// the socket's writability (epoll_ctl), the next poll reports it, the stream sends, and the
// interest is dropped again (epoll_ctl). That is four system calls and a turn of the loop
// where one send does, when the socket's buffer has room, as it almost always has. On the
// leader under 16 clients' puts CAF's epoll_ctl alone was 3.2 system calls per put (docs/
// DATAPATH.md, "System calls per put").
//
// send_direct() sends at once with one sendmsg and hands CAF only what the socket did not take.
// While CAF holds bytes of a connection, everything after them goes to CAF too, in order, until
// CAF has reported all of them written (data_transferred_msg: write acknowledgements are on
// meanwhile). A connection whose socket is not known (DirectSocket::fd -1) is written by CAF
// alone, as before.
//
// Which socket: for a connection the broker made from its own socket (add_scribe(fd)), that
// fd. For one CAF accepted, CAF 0.17's default multiplexer names the connection after its
// socket (conn_hdl_from_socket); accepted_socket() checks that descriptor against the
// broker's view of the connection (a TCP socket whose peer has the address and port the
// broker reports) and gives -1 when anything differs.
//
// Safe only where CAF runs a broker: on the multiplexer's thread, which is also where CAF
// closes sockets, and it closes one only after removing its connection from the broker. So
// while the broker still holds the connection (abstract_broker::valid), the descriptor is
// that connection's and no other's; send_direct() checks that before each send.
#pragma once

#include <caf/io/abstract_broker.hpp>
#include <caf/io/connection_handle.hpp>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace keyval {

struct DirectSocket {
  int fd = -1;             // -1: CAF writes everything on this connection
  uint64_t caf_bytes = 0;  // handed to CAF and not yet reported written
};

struct DirectPiece {
  const void* data;
  size_t size;
};

// The socket behind a connection CAF accepted for `self`, checked; -1 when it cannot be told.
int accepted_socket(caf::io::abstract_broker* self, caf::io::connection_handle handle);

// Sends the pieces in order on `handle`; returns the bytes handed to CAF (0: all sent now).
// `keep_acks`: the broker keeps write acknowledgements on for itself (else they are on only
// while CAF holds bytes of the connection).
size_t send_direct(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                   const DirectPiece* pieces, size_t count, bool keep_acks = false);
inline size_t send_direct(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                          std::initializer_list<DirectPiece> pieces, bool keep_acks = false) {
  return send_direct(self, handle, socket, pieces.begin(), pieces.size(), keep_acks);
}

// CAF reported `written` bytes of the connection written: what it holds shrinks.
void direct_transferred(caf::io::abstract_broker* self, caf::io::connection_handle handle, DirectSocket& socket,
                        uint64_t written, bool keep_acks = false);

}  // namespace keyval
