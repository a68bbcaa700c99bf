// libFuzzer: the Redis gateway's input (actors/resp.h, actors/redis_commands.h): bytes from a
// Redis client, cut into reads at points the input chooses, parsed into commands, and each
// command run through RedisCommands (no I/O: its cluster steps are answered by empty ok
// answers, paged reads followed for a few pages). Nothing may crash or read out of bounds; a
// parser error must stay an error (the connection is closed after it), and bytes fed after a
// whole command must not change what was parsed before.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/redis_commands.h"
#include "actors/resp.h"

using namespace keyval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte picks the read size (1..64 bytes per feed) and the protocol.
  const size_t chunk = (data[0] & 0x3f) + 1;
  RespLimits limits;
  limits.bulk_bytes_max = 4096;
  limits.arguments_max = 64;
  limits.inline_bytes_max = 1024;
  limits.command_bytes_max = 16384;
  RespParser parser(limits);
  RedisCommands commands(RedisCommandsConfig{1, (data[0] & 0x40) ? "secret" : "", 8});
  RedisSession session;
  session.id = 1;
  session.protocol = (data[0] & 0x80) ? 3 : 2;
  RedisStats stats;
  std::vector<std::string> arguments;
  std::string error;
  bool failed = false;
  for (size_t at = 1; at < size && !failed; at += chunk) {
    const size_t bytes = std::min(chunk, size - at);
    parser.feed(reinterpret_cast<const char*>(data + at), bytes);
    while (true) {
      auto outcome = parser.next(&arguments, &error);
      if (outcome == RespParser::Outcome::need_more) break;
      if (outcome == RespParser::Outcome::error) {
        if (error.empty()) __builtin_trap();
        failed = true;
        break;
      }
      if (arguments.empty()) __builtin_trap();  // a command always has its name
      RespWriter out(session.protocol);
      RedisOutcome result = commands.execute(session, arguments, out, stats);
      for (int page = 0; result.step && page < 4; ++page) {
        std::vector<ClientResponse> answers(result.step->requests.size());
        for (const ClientRequest& request : result.step->requests) {
          // What the gateway would send must encode and decode.
          auto bytes_out = encode_client_request(request);
          (void)decode_client_request(bytes_out.data(), bytes_out.size());
        }
        RespWriter reply(session.protocol);
        auto next = result.step->then(answers, reply);
        if (!next) break;
        result.step = std::move(next);
      }
    }
  }
  if (failed && parser.next(&arguments, &error) != RespParser::Outcome::error) __builtin_trap();
  return 0;
}
