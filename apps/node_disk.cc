// A node's small tmpfs (see node_disk.h).
#include "apps/node_disk.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace keyval {
namespace {

std::string filler_path(const std::string& directory) { return directory + "/filler"; }

}  // namespace

bool can_mount_disks() { return ::geteuid() == 0; }

Status mount_small_disk(const std::string& directory, uint64_t bytes) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return Status::io_error("cannot create " + directory + ": " + error.message());
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
  if (::mount("tmpfs", directory.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return Status::io_error("cannot mount a tmpfs of " + std::to_string(bytes) + " bytes at " + directory + ": " +
                            std::strerror(errno) + (errno == EPERM ? " (mounting needs root)" : ""));
  }
  return Status::ok();
}

Status unmount_small_disk(const std::string& directory) {
  if (::umount2(directory.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return Status::from_errno("umount", directory, errno);
  }
  return Status::ok();
}

Result<uint64_t> fill_disk(const std::string& directory) {
  const std::string path = filler_path(directory);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno("open", path, errno);
  std::vector<char> block(1 << 20, 'f');
  uint64_t written = 0;
  size_t size = block.size();
  while (true) {
    ssize_t count = ::write(fd, block.data(), size);
    if (count > 0) {
      written += static_cast<uint64_t>(count);
      continue;
    }
    if (count < 0 && errno == EINTR) continue;
    if (count < 0 && errno != ENOSPC) {
      int error_number = errno;
      ::close(fd);
      return Status::from_errno("write", path, error_number);
    }
    if (size == 1) break;  // full to the byte
    size = std::max<size_t>(1, size / 16);
  }
  ::close(fd);
  return written;
}

Status free_disk(const std::string& directory) {
  const std::string path = filler_path(directory);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink", path, errno);
  return Status::ok();
}

}  // namespace keyval
