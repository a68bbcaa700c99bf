// bind_failure (see bind_failure.h).
#include "actors/bind_failure.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keyval {

std::string bind_failure(const std::string& host, uint16_t port, const std::string& caf_error) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  const std::string bare = host.size() >= 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  if (::inet_pton(AF_INET, bare.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof *v6;
  } else {
    return caf_error;
  }
  const int fd = ::socket(storage.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return caf_error;
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  std::string cause = caf_error;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    cause = errno == EADDRINUSE ? "address already in use" : std::strerror(errno);
  }
  ::close(fd);
  return cause;
}

}  // namespace keyval
