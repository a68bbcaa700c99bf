// A temporary directory for one test, removed with everything in it when the
// test ends (kept when KEYVAL_KEEP_TEST_DIRS is set, for post-mortems).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keyval::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whole-file helpers for planting damage in tests.
std::vector<uint8_t> read_file(const std::string& path);
std::string read_text(const std::string& path);  // "" when it cannot be read
bool contains(const std::string& text, const std::string& part);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
uint64_t file_size(const std::string& path);
// Names of the WAL segment files in `wal_directory`, oldest first (names sort by segment id).
std::vector<std::string> segment_files(const std::string& wal_directory);

// Payload of `bytes` bytes whose content depends on `seed`.
std::vector<uint8_t> make_payload(uint64_t seed, size_t bytes);

}  // namespace keyval::testing
