// libFuzzer: the snapshot file reader (storage/snapshot_file.h) over arbitrary files on the
// simulator's in-memory disk: SnapshotReader::open checks the header record, read_all streams
// and checks every chunk and the end record. Damage must come back as a Status naming the
// file and offset, never a crash, an unbounded allocation or a read out of bounds.
#include <cstddef>
#include <cstdint>

#include "sim/sim_disk.h"
#include "storage/snapshot_file.h"

using namespace keyval;
using keyval::sim::SimDisk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SimDisk disk;
  const std::string path = "/snapshot";
  {
    auto file = disk.open_file(path, OpenMode::create_new);
    if (!file.is_ok()) return 0;
    if (!(*file)->write_at(0, data, size).is_ok()) return 0;
    (void)(*file)->sync_data();
  }
  auto reader = SnapshotReader::open(disk, path);
  if (!reader.is_ok()) return 0;
  uint64_t keys = 0;
  SnapshotSummary summary;
  Status read = (*reader)->read_all(
      [&](std::string_view key, std::string_view) {
        if (key.empty()) __builtin_trap();  // the reader refuses empty keys as corruption
        ++keys;
        return Status::ok();
      },
      [](uint64_t, const StoredSession&) { return Status::ok(); }, &summary);
  (void)read;
  (void)verify_snapshot_file(disk, path);
  return 0;
}
