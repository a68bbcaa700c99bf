// The keyval subcommands. Each takes the words after its name and returns the
// process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keyval::commands {

int wal_main(const std::vector<std::string>& args);          // keyval wal dump|verify
int bench_main(const std::vector<std::string>& args);        // keyval bench wal|store
int bench_wal_main(const std::vector<std::string>& args);    // keyval bench wal
// keyval bench wal --sync group --writers K: through the wal_writer actor.
int bench_wal_group_main(uint64_t entries, uint64_t value_bytes, uint64_t writers, const std::string& directory);
int bench_store_main(const std::vector<std::string>& args);  // keyval bench store
int bench_recovery_main(const std::vector<std::string>& args);  // keyval bench recovery
int demo_main(const std::vector<std::string>& args);         // keyval demo
int sim_main(const std::vector<std::string>& args);          // keyval sim

}  // namespace keyval::commands
