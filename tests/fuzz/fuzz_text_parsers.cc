// libFuzzer: the text an operator or a script hands KeyVal: experiment scenarios
// (sim/scenario.h, `keyval experiment run` and `keyval sim --scenario`), endpoint lists
// (client/endpoint.h, every --endpoints flag), operation histories (sim/history_json.h,
// `keyval experiment check`, `keyval sim --history`) and node config files
// (apps/config_file.h, `keyval node --config`). Malformed text must get a Status naming what
// was wrong, never a crash. The first byte picks the parser: below 0x80 its parity (scenario
// or endpoints, as the first seeds were written), 0x80-0xbf a history, 0xc0-0xff a config.
#include <cstddef>
#include <cstdint>
#include <string>

#include "apps/config_file.h"
#include "client/endpoint.h"
#include "sim/history_json.h"
#include "sim/scenario.h"

using namespace keyval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] >= 0xc0) {
    auto settings = parse_config_text(text, "fuzz.conf", {"id", "data-dir", "peers", "cluster"});
    if (settings.is_ok()) {
      for (const auto& [name, value] : *settings) {
        if (name.empty() || value.empty()) __builtin_trap();
      }
    }
  } else if (data[0] >= 0x80) {
    (void)sim::parse_history(text);
  } else if (data[0] % 2 == 0) {
    (void)sim::parse_scenario(text, "fuzz");
  } else {
    auto endpoints = parse_endpoints(text);
    if (endpoints.is_ok()) {
      for (const Endpoint& endpoint : *endpoints) {
        if (endpoint.host.empty() || endpoint.port == 0) __builtin_trap();
      }
    }
  }
  return 0;
}
