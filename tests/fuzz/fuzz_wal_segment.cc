// libFuzzer: the WAL's segment reader (storage/wal.cc) over arbitrary segment files. The input
// becomes one or two segment files on the simulator's in-memory disk (the first byte picks
// how it is split), and Wal::open recovers from them: it must return a Status (corruption
// naming file and offset, or a repaired torn tail) and never crash, hang or read out of bounds.
// After a successful open every entry it reports must read back.
#include <cstddef>
#include <cstdint>

#include "sim/sim_disk.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

using namespace keyval;
using keyval::sim::SimDisk;

namespace {

void write_file(SimDisk& disk, const std::string& path, const uint8_t* data, size_t bytes) {
  auto file = disk.open_file(path, OpenMode::create_new);
  if (!file.is_ok()) return;
  (void)(*file)->write_at(0, data, bytes);
  (void)(*file)->sync_data();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  SimDisk disk;
  const std::string directory = "/wal";
  if (!disk.create_dir(directory).is_ok()) return 0;
  const size_t split = size > 1 ? (data[0] * (size - 1)) / 255 : 0;
  const uint8_t* body = data + 1;
  const size_t body_bytes = size - 1;
  const bool two = data[0] % 2 == 1 && split > 0 && split < body_bytes;
  if (two) {
    write_file(disk, directory + "/" + wal_format::segment_file_name(1, 1), body, split);
    write_file(disk, directory + "/" + wal_format::segment_file_name(2, 2), body + split, body_bytes - split);
  } else {
    write_file(disk, directory + "/" + wal_format::segment_file_name(1, 1), body, body_bytes);
  }
  WalOptions options;
  options.segment_bytes = 1 << 20;
  options.preallocate = false;
  auto wal = Wal::open(disk, directory, options);
  if (!wal.is_ok()) return 0;
  for (uint64_t index = (*wal)->first_index(); index <= (*wal)->last_index() && index < (*wal)->first_index() + 64;
       ++index) {
    auto entry = (*wal)->read(index);
    if (!entry.is_ok()) __builtin_trap();  // open() vouched for every entry it reports
  }
  return 0;
}
