// libFuzzer: the text an operator or a script hands KeyVal: experiment scenarios
// (sim/scenario.h, `keyval experiment run` and `keyval sim --scenario`) and endpoint lists
// (apps/endpoint.h, every --endpoints flag). Malformed text must get a Status naming what
// was wrong, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "apps/endpoint.h"
#include "sim/scenario.h"

using namespace keyval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
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
