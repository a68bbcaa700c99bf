// keyval bench wal --sync group --writers K: K concurrent appenders, each with one
// persist request in flight, through the real wal_writer and store_indexer actors
// (detached, real files). Measures durable throughput, per-request durable
// latency (p50/p99) and how many entries each group commit carried.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "actors/node.h"
#include "actors/persistence.h"
#include "apps/cli.h"
#include "apps/commands.h"

namespace keyval::commands {
namespace {

struct AppenderState {
  wal_writer_actor writer;
  Frame frame;
  uint64_t remaining = 0;
  std::vector<double>* latencies_us = nullptr;
  std::string* error = nullptr;
};

using AppenderSelf = caf::stateful_actor<AppenderState>*;

// Sends the next request once the previous one is durable (one in flight per appender).
void send_next(AppenderSelf self) {
  if (self->state.remaining == 0) return self->quit();
  --self->state.remaining;
  auto start = std::chrono::steady_clock::now();
  self->request(self->state.writer, caf::infinite, persist_atom_v, self->state.frame)
      .then(
          [self, start](uint64_t) {
            auto elapsed = std::chrono::steady_clock::now() - start;
            self->state.latencies_us->push_back(std::chrono::duration<double, std::micro>(elapsed).count());
            send_next(self);
          },
          [self](caf::error& error) {
            *self->state.error = caf::to_string(error);
            self->quit();
          });
}

caf::behavior appender(AppenderSelf self, wal_writer_actor writer, Frame frame, uint64_t count,
                       std::vector<double>* latencies_us, std::string* error) {
  self->state.writer = std::move(writer);
  self->state.frame = std::move(frame);
  self->state.remaining = count;
  self->state.latencies_us = latencies_us;
  self->state.error = error;
  return {[self](caf::ok_atom) { send_next(self); }};
}

double percentile(std::vector<double>& values, double fraction) {
  if (values.empty()) return 0;
  size_t position = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(position), values.end());
  return values[position];
}

}  // namespace

int bench_wal_group_main(uint64_t entries, uint64_t value_bytes, uint64_t writers, const std::string& directory) {
  caf::actor_system_config config;
  add_message_types(config);
  use_node_scheduler(config, 1);  // as `keyval node` runs (one worker besides the network thread)
  caf::actor_system system{config};
  PersistenceConfig persistence_config;
  persistence_config.data_directory = directory;
  persistence_config.log = [](const std::string&) {};
  auto persistence = BlockingPersistence::start(system, persistence_config);
  if (!persistence.is_ok()) {
    std::cerr << "keyval bench wal: " << persistence.status().to_string() << "\n";
    return 1;
  }
  std::vector<uint8_t> payload(value_bytes, 0x42);
  Frame frame{encode_record_batch({Record::log(0, 1, payload)})};
  std::vector<std::vector<double>> latencies(writers);
  std::vector<std::string> errors(writers);
  std::vector<caf::actor> appenders;
  double start = cli::monotonic_seconds();
  for (uint64_t i = 0; i < writers; ++i) {
    uint64_t count = entries / writers + (i < entries % writers ? 1 : 0);
    appenders.push_back(
        system.spawn(appender, (*persistence)->persistence().writer(), frame, count, &latencies[i], &errors[i]));
  }
  caf::scoped_actor self{system};
  for (auto& actor : appenders) self->send(actor, caf::ok_atom_v);
  for (auto& actor : appenders) self->wait_for(actor);
  double seconds = cli::monotonic_seconds() - start;
  uint64_t group_commits = 0;
  self->request((*persistence)->persistence().writer(), caf::infinite, stats_atom_v)
      .receive([&](uint64_t, uint64_t, uint64_t commits, uint64_t) { group_commits = commits; },
               [&](caf::error&) {});
  (*persistence)->stop();
  for (const std::string& error : errors) {
    if (!error.empty()) {
      std::cerr << "keyval bench wal: appender failed: " << error << "\n";
      return 1;
    }
  }
  std::vector<double> all;
  for (auto& values : latencies) all.insert(all.end(), values.begin(), values.end());
  double p50 = percentile(all, 0.50);
  double p99 = percentile(all, 0.99);
  double entries_per_s = static_cast<double>(all.size()) / seconds;
  double per_sync = group_commits > 0 ? static_cast<double>(all.size()) / group_commits : 0;
  std::cout << "group commit: " << all.size() << " x " << value_bytes << " B from " << writers << " writers in "
            << seconds << " s: " << entries_per_s << " durable entries/s, p50 " << p50 << " us, p99 " << p99
            << " us, " << per_sync << " entries per fdatasync\n";
  cli::JsonLine line;
  line.add("bench", "wal").add("sync", "group").add("writers", writers).add("entries", uint64_t{all.size()})
      .add("value_bytes", value_bytes).add("seconds", seconds).add("entries_per_s", entries_per_s)
      .add("p50_us", p50).add("p99_us", p99).add("syncs", group_commits).add("entries_per_sync", per_sync);
  std::cout << line.str() << std::endl;
  return cli::exit_ok;
}

}  // namespace keyval::commands
