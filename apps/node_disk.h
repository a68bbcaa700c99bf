// A node's own small file system, for the `fill-disk` fault step of `keyval experiment run`:
// a tmpfs of a fixed size mounted (as root) at a directory that holds the node's data
// directory, filled to the last byte by a filler file and emptied again. Mounting needs root
// (CAP_SYS_ADMIN); without it mount() says so and the step is refused before the run starts.
#pragma once

#include <cstdint>
#include <string>

#include "storage/status.h"

namespace keyval {

// Whether this process may mount file systems (it runs as root).
bool can_mount_disks();

// Mounts a tmpfs of `bytes` at `directory` (created if missing).
Status mount_small_disk(const std::string& directory, uint64_t bytes);
// Unmounts it (lazily, when something still holds it open). Idempotent.
Status unmount_small_disk(const std::string& directory);

// Writes DIRECTORY/filler until the file system is full (ENOSPC); the bytes written.
Result<uint64_t> fill_disk(const std::string& directory);
// Removes the filler: the space is back.
Status free_disk(const std::string& directory);

}  // namespace keyval
