// Goal: measure the per-record costs on the storage hot path: CRC32C (SSE4.2 vs table) and the entry codec.
// Method: Google Benchmark over fixed, seeded buffers; bytes-processed counters give throughput. Run with --benchmark_min_time=0.2.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "storage/codec.h"
#include "storage/crc32c.h"
#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"
#include "storage/store.h"

namespace keyval {
namespace {

constexpr size_t entry_payload_bytes = 128;

std::vector<uint8_t> random_bytes(size_t bytes) {
  std::mt19937_64 random(12345);
  std::vector<uint8_t> data(bytes);
  for (auto& byte : data) byte = static_cast<uint8_t>(random());
  return data;
}

void crc32c_sizes(benchmark::internal::Benchmark* benchmark) {
  benchmark->Arg(128)->Arg(4 << 10)->Arg(1 << 20);
}

// crc32c_extend: the SSE4.2 instruction when the CPU has it (the label says which ran).
void BM_crc32c_hardware(benchmark::State& state) {
  const std::vector<uint8_t> data = random_bytes(static_cast<size_t>(state.range(0)));
  state.SetLabel(crc32c_is_hardware_accelerated() ? "sse4.2" : "no sse4.2: table fallback");
  for (auto _ : state) {
    uint32_t crc = crc32c_extend(0, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_crc32c_hardware)->Apply(crc32c_sizes);

// crc32c_extend_portable: the slicing-by-8 table.
void BM_crc32c_portable(benchmark::State& state) {
  const std::vector<uint8_t> data = random_bytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    uint32_t crc = crc32c_extend_portable(0, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_crc32c_portable)->Apply(crc32c_sizes);

// Making an entry with a 128-byte payload: its frame, the one encode an entry gets (the
// payload copied behind a 32-byte header, its CRC32C computed; storage/entry_frame.h).
void BM_encode_entry(benchmark::State& state) {
  const std::vector<uint8_t> payload = random_bytes(entry_payload_bytes);
  size_t encoded_bytes = 0;
  for (auto _ : state) {
    const Entry entry{1000, 7, payload};
    encoded_bytes = entry.frame().size();
    benchmark::DoNotOptimize(entry.frame().data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * encoded_bytes));
  state.counters["encoded_bytes"] = static_cast<double>(encoded_bytes);
}
BENCHMARK(BM_encode_entry);

// decode_entry of the same entry as LMDB's log holds it (its frame: checksum check, index
// check, a copy).
void BM_decode_entry(benchmark::State& state) {
  const Entry entry{1000, 7, random_bytes(entry_payload_bytes)};
  const std::vector<uint8_t> bytes = encode_entry(entry);
  for (auto _ : state) {
    Result<Entry> decoded = decode_entry(bytes.data(), bytes.size(), 1000, "benchmark");
    if (!decoded.is_ok()) {
      state.SkipWithError(decoded.status().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(decoded.value().payload().data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_decode_entry);

// The state machine applying committed puts, as a node does: batches of 16 entries (16 clients,
// one request each), each put from a client with a session (sequence number, stored result),
// 100-byte values over 100,000 random keys, into a relaxed LMDB (a node's) on /dev/shm.
void BM_apply_session_puts(benchmark::State& state) {
  const std::string directory =
      (std::filesystem::exists("/dev/shm") ? std::string("/dev/shm") : std::filesystem::temp_directory_path().string()) +
      "/keyval-microbench-" + std::to_string(::getpid());
  std::filesystem::remove_all(directory);
  struct RemoveOnExit {  // on every way out, after the store below has closed
    const std::string& path;
    ~RemoveOnExit() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } remove_on_exit{directory};
  {
    StoreOptions options;
    options.sync_mode = SyncMode::relaxed;  // as a node opens it: pages written through the map
    auto store = Store::open(directory, options);
    if (!store.is_ok()) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    KvStateMachine machine(*store.value());
    std::mt19937_64 random(12345);
    constexpr uint64_t clients = 64;
    constexpr size_t batch_size = 16;
    std::vector<uint64_t> sequences(clients + 1, 0);
    uint64_t index = 0;
    uint64_t client = 0;
    const std::string value(100, 'v');
    auto next_batch = [&] {
      std::vector<Entry> batch;
      for (size_t i = 0; i < batch_size; ++i) {
        Command command;
        client = client % clients + 1;
        command.client_id = client;
        command.sequence = ++sequences[client];
        command.kind = CommandKind::put;
        command.key = "key-" + std::to_string(random() % 100000);
        command.value = value;
        command.blind = true;
        batch.push_back(Entry{++index, 1, encode_command(command)});
      }
      return batch;
    };
    for (int i = 0; i < 2000; ++i) {  // sessions and some keys in place
      auto warm = machine.apply(next_batch());
      if (!warm.is_ok()) {
        state.SkipWithError(warm.status().to_string().c_str());
        return;
      }
    }
    for (auto _ : state) {
      state.PauseTiming();
      std::vector<Entry> batch = next_batch();
      state.ResumeTiming();
      auto results = machine.apply(batch);
      if (!results.is_ok()) {
        state.SkipWithError(results.status().to_string().c_str());
        break;
      }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
  }
}
BENCHMARK(BM_apply_session_puts);

}  // namespace
}  // namespace keyval

BENCHMARK_MAIN();
