// The keyval subcommands. Each takes the words after its name and returns the
// process exit code.
#pragma once

#include <string>
#include <vector>

namespace keyval::commands {

int wal_main(const std::vector<std::string>& args);          // keyval wal dump|verify
int bench_main(const std::vector<std::string>& args);        // keyval bench wal|store
int bench_wal_main(const std::vector<std::string>& args);    // keyval bench wal
int bench_store_main(const std::vector<std::string>& args);  // keyval bench store
int demo_main(const std::vector<std::string>& args);         // keyval demo

}  // namespace keyval::commands
