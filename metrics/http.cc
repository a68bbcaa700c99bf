// HTTP request heads and responses (see http.h).
#include "metrics/http.h"

#include <algorithm>
#include <cctype>

namespace keyval::metrics {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

HttpParseResult malformed(std::string why) {
  HttpParseResult result;
  result.state = HttpParseState::malformed;
  result.error = std::move(why);
  return result;
}

// The end of the head: just past the blank line (CRLF CRLF, or bare LFs), or npos.
size_t head_end(std::string_view buffer) {
  for (size_t i = buffer.find('\n'); i != std::string_view::npos; i = buffer.find('\n', i + 1)) {
    if (i + 1 < buffer.size() && buffer[i + 1] == '\n') return i + 2;
    if (i + 2 < buffer.size() && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

bool parse_request_line(std::string_view line, HttpRequest& request, std::string& error) {
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    error = "malformed request line";
    return false;
  }
  request.method = std::string(line.substr(0, first));
  std::string_view target = line.substr(first + 1, second - first - 1);
  std::string_view version = line.substr(second + 1);
  if (request.method.empty() || target.empty() || target.front() != '/') {
    error = "malformed request line";
    return false;
  }
  for (char c : request.method) {
    if (!std::isupper(static_cast<unsigned char>(c))) {
      error = "malformed method";
      return false;
    }
  }
  if (version == "HTTP/1.1") {
    request.keep_alive = true;
  } else if (version == "HTTP/1.0") {
    request.keep_alive = false;
  } else {
    error = "unsupported protocol version (HTTP/1.0 or HTTP/1.1)";
    return false;
  }
  request.path = std::string(target.substr(0, target.find('?')));
  return true;
}

}  // namespace

HttpParseResult parse_http_request(std::string_view buffer, size_t head_bytes_max) {
  const size_t end = head_end(buffer);
  if (end == std::string_view::npos || end > head_bytes_max) {
    HttpParseResult result;
    if (buffer.size() >= head_bytes_max || end != std::string_view::npos) {
      result.state = HttpParseState::too_large;
      result.error = "request head larger than " + std::to_string(head_bytes_max) + " bytes";
    }
    return result;
  }
  std::string_view head = buffer.substr(0, end);
  HttpParseResult result;
  size_t line_end = head.find('\n');
  if (!parse_request_line(trim(head.substr(0, line_end)), result.request, result.error)) {
    return malformed(result.error);
  }
  for (size_t start = line_end + 1; start < head.size(); start = line_end + 1) {
    line_end = head.find('\n', start);
    std::string_view line = trim(head.substr(start, line_end - start));
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return malformed("malformed header line");
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string value = lower(trim(line.substr(colon + 1)));
    if (name == "transfer-encoding" || (name == "content-length" && value != "0")) {
      return malformed("a request body is not accepted");
    }
    if (name == "connection" && value == "close") result.request.keep_alive = false;
  }
  result.state = HttpParseState::complete;
  result.head_bytes = end;
  return result;
}

std::string http_response(int status, std::string_view reason, std::string_view content_type, std::string_view body,
                          bool keep_alive, std::string_view extra_headers) {
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  response += "Content-Type: " + std::string(content_type) + "\r\n";
  response += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  response += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  response += extra_headers;
  response += "\r\n";
  response += body;
  return response;
}

}  // namespace keyval::metrics
