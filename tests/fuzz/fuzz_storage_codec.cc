// libFuzzer: every decoder of bytes read back from LMDB or a WAL record payload: log entries
// (storage/codec.h), Raft metadata, snapshot metadata, configuration entries, and the state
// machine's commands, results and sessions (storage/kv_command.h). Each must return a
// Status on malformed input; what decodes must survive encode/decode unchanged.
#include <cstddef>
#include <cstdint>

#include "storage/codec.h"
#include "storage/kv_command.h"

using namespace keyval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 8;
  const uint8_t* bytes = data + 1;
  const size_t n = size - 1;
  switch (which) {
    case 0: {
      auto entry = decode_entry(bytes, n, 0, "fuzz");
      if (entry.is_ok()) {
        auto bytes_again = encode_entry(*entry);
        auto again = decode_entry(bytes_again.data(), bytes_again.size(), entry->index, "fuzz");
        if (!again.is_ok() || !(*again == *entry)) __builtin_trap();
      }
      break;
    }
    case 1: {
      auto metadata = decode_metadata(bytes, n, "fuzz");
      if (metadata.is_ok()) {
        auto bytes_again = encode_metadata(*metadata);
        auto again = decode_metadata(bytes_again.data(), bytes_again.size(), "fuzz");
        if (!again.is_ok() || !(*again == *metadata)) __builtin_trap();
      }
      break;
    }
    case 2: {
      auto snapshot = decode_snapshot_metadata(bytes, n, "fuzz");
      if (snapshot.is_ok()) {
        auto bytes_again = encode_snapshot_metadata(*snapshot);
        auto again = decode_snapshot_metadata(bytes_again.data(), bytes_again.size(), "fuzz");
        if (!again.is_ok() || !(*again == *snapshot)) __builtin_trap();
      }
      break;
    }
    case 3: {
      auto command = decode_command(bytes, n, "fuzz");
      if (command.is_ok()) {
        auto bytes_again = encode_command(*command);
        auto again = decode_command(bytes_again.data(), bytes_again.size(), "fuzz");
        if (!again.is_ok() || !(*again == *command)) __builtin_trap();
      }
      break;
    }
    case 4: (void)decode_result(bytes, n, "fuzz"); break;
    case 5: (void)decode_results(bytes, n, "fuzz"); break;
    case 6: (void)decode_session(bytes, n, "fuzz"); break;
    case 7: {
      auto configuration = decode_configuration_entry(bytes, n, "fuzz");
      if (configuration.is_ok()) {
        auto bytes_again = encode_configuration_entry(*configuration);
        auto again = decode_configuration_entry(bytes_again.data(), bytes_again.size(), "fuzz");
        if (!again.is_ok() || !(*again == *configuration)) __builtin_trap();
      }
      break;
    }
  }
  return 0;
}
