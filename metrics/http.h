// The little HTTP/1.1 the metrics listener speaks (RFC 9112): request heads parsed from a
// connection's bytes, responses built with a Content-Length. Plain code, tested without sockets.
//
// Only what a scraper and a health checker send is accepted: a request line, header lines, no
// body (a request announcing one, by Content-Length above 0 or Transfer-Encoding, is malformed:
// nothing here reads bodies). Bare LF line ends are accepted as RFC 9112 allows.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace keyval::metrics {

struct HttpRequest {
  std::string method;   // "GET", ... as sent
  std::string path;     // the target without its query string
  bool keep_alive = true;  // HTTP/1.1 without "Connection: close"; HTTP/1.0 closes
};

enum class HttpParseState { incomplete, complete, malformed, too_large };

struct HttpParseResult {
  HttpParseState state = HttpParseState::incomplete;
  HttpRequest request;    // complete only
  size_t head_bytes = 0;  // complete: the bytes the head took (the next request starts there)
  std::string error;      // malformed, too_large: why
};

// The request head at the start of `buffer`. too_large once head_bytes_max bytes hold no
// complete head.
HttpParseResult parse_http_request(std::string_view buffer, size_t head_bytes_max);

// A whole response: status line, Content-Type, Content-Length, Connection, the body.
std::string http_response(int status, std::string_view reason, std::string_view content_type, std::string_view body,
                          bool keep_alive, std::string_view extra_headers = {});

}  // namespace keyval::metrics
