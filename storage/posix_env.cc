// POSIX implementation of the file-system seam: pread/pwrite, fdatasync,
// fallocate, rename and flock. Every failure becomes a Status naming the path.
// The boot id is Linux's /proc/sys/kernel/random/boot_id (a new UUID at every boot), or
// the environment variable KEYVAL_BOOT_ID when set (tests play a reboot with it).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "storage/env.h"

namespace keyval {
namespace {

class PosixFile final : public File {
 public:
  PosixFile(int descriptor, std::string path) : descriptor_(descriptor), path_(std::move(path)) {}
  ~PosixFile() override { ::close(descriptor_); }

  Result<size_t> read_at(uint64_t offset, uint8_t* destination, size_t bytes) override {
    size_t done = 0;
    while (done < bytes) {
      ssize_t n = ::pread(descriptor_, destination + done, bytes - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::from_errno("read", path_, errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) override {
    size_t done = 0;
    while (done < bytes) {
      ssize_t n = ::pwrite(descriptor_, source + done, bytes - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::from_errno("write", path_, errno);
      }
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }

  Status sync_data() override {
    if (::fdatasync(descriptor_) != 0) return Status::from_errno("fdatasync", path_, errno);
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    if (::ftruncate(descriptor_, static_cast<off_t>(size_bytes)) != 0) {
      return Status::from_errno("truncate", path_, errno);
    }
    return Status::ok();
  }

  Status preallocate(uint64_t size_bytes) override {
    int rc = ::posix_fallocate(descriptor_, 0, static_cast<off_t>(size_bytes));
    if (rc == 0) return Status::ok();
    if (rc != EOPNOTSUPP && rc != EINVAL) return Status::from_errno("fallocate", path_, rc);
    // The file system cannot allocate: extend with zeros instead.
    KV_ASSIGN_OR_RETURN(uint64_t current, size());
    static const std::vector<uint8_t> zeros(1 << 20, 0);
    while (current < size_bytes) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(zeros.size(), size_bytes - current));
      KV_RETURN_IF_ERROR(write_at(current, zeros.data(), chunk));
      current += chunk;
    }
    return Status::ok();
  }

  Result<uint64_t> size() override {
    struct stat info {};
    if (::fstat(descriptor_, &info) != 0) return Status::from_errno("stat", path_, errno);
    return static_cast<uint64_t>(info.st_size);
  }

  const std::string& path() const override { return path_; }

  Result<uint64_t> next_data_offset(uint64_t offset) override {
    off_t found = ::lseek(descriptor_, static_cast<off_t>(offset), SEEK_DATA);
    if (found >= 0) return static_cast<uint64_t>(found);
    if (errno == ENXIO) return size();             // only a hole (or nothing) from here on
    if (errno == EINVAL || errno == EOPNOTSUPP) return offset;  // the file system cannot tell
    return Status::from_errno("seek data", path_, errno);
  }

 private:
  int descriptor_;
  std::string path_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int descriptor) : descriptor_(descriptor) {}
  ~PosixLock() override { ::close(descriptor_); }  // closing releases the flock

 private:
  int descriptor_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::read_only: flags |= O_RDONLY; break;
      case OpenMode::read_write: flags |= O_RDWR; break;
      case OpenMode::create_or_open: flags |= O_RDWR | O_CREAT; break;
      case OpenMode::create_new: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    int descriptor = ::open(path.c_str(), flags, 0644);
    if (descriptor < 0) return Status::from_errno("open", path, errno);
    return std::unique_ptr<File>(new PosixFile(descriptor, path));
  }

  Status sync_dir(const std::string& directory) override {
    int descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (descriptor < 0) return Status::from_errno("open directory", directory, errno);
    int rc = ::fsync(descriptor);
    int error_number = errno;
    ::close(descriptor);
    if (rc != 0) return Status::from_errno("fsync directory", directory, error_number);
    return Status::ok();
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Status::from_errno("rename", from + " -> " + to, errno);
    return Status::ok();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::from_errno("remove", path, errno);
    return Status::ok();
  }

  Result<std::vector<std::string>> list(const std::string& directory) override {
    DIR* handle = ::opendir(directory.c_str());
    if (handle == nullptr) return Status::from_errno("list", directory, errno);
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(handle)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(handle);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status create_dir(const std::string& directory) override {
    if (directory.empty()) return Status::invalid_argument("create directory: empty path");
    std::string prefix;
    size_t position = 0;
    while (position != std::string::npos) {
      position = directory.find('/', position + 1);
      prefix = directory.substr(0, position);
      if (prefix.empty()) continue;
      if (::mkdir(prefix.c_str(), 0755) == 0) {
        // A new directory's name is durable only once its parent is synced (POSIX; ext4's
        // ordered journal hides it, other file systems do not): without this a power cut
        // could take wal/ with every acknowledged write in it.
        KV_RETURN_IF_ERROR(sync_dir(parent_directory(prefix)));
      } else if (errno != EEXIST) {
        return Status::from_errno("create directory", prefix, errno);
      }
    }
    struct stat info {};
    if (::stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      return Status::invalid_argument("create directory " + directory + ": exists and is not a directory");
    }
    return Status::ok();
  }

  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override {
    int descriptor = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (descriptor < 0) return Status::from_errno("open lock file", path, errno);
    if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
      int error_number = errno;
      ::close(descriptor);
      if (error_number == EWOULDBLOCK) {
        return Status::locked(path + " is held by another process (or another open in this one)");
      }
      return Status::from_errno("lock", path, error_number);
    }
    return std::unique_ptr<FileLock>(new PosixLock(descriptor));
  }

  // Read at every call (cheap, rare: once per recovery), so a test may change KEYVAL_BOOT_ID.
  std::string boot_id() override {
    if (const char* overridden = std::getenv(boot_id_variable)) return trimmed(overridden);
    std::ifstream file(boot_id_path);
    std::string line;
    if (!file || !std::getline(file, line)) return "";  // unknown: recovery assumes a new boot
    return trimmed(line);
  }

 private:
  static constexpr const char* boot_id_variable = "KEYVAL_BOOT_ID";
  static constexpr const char* boot_id_path = "/proc/sys/kernel/random/boot_id";

  static std::string trimmed(const std::string& text) {
    const char* blanks = " \t\r\n";
    size_t first = text.find_first_not_of(blanks);
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(blanks) - first + 1);
  }
};

}  // namespace

Env& posix_env() {
  static PosixEnv env;
  return env;
}

std::string join_path(const std::string& directory, const std::string& name) {
  if (directory.empty()) return name;
  if (directory.back() == '/') return directory + name;
  return directory + "/" + name;
}

std::string parent_directory(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return trimmed.substr(0, slash);
}

}  // namespace keyval
