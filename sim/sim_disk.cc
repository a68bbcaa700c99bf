// SimDisk (sim_disk.h). A file is an inode holding three things: the bytes reads see now, the
// bytes the last sync made durable, and the journal of changes between the two (durable with
// the journal replayed == now). Names live in two maps, the volatile view and the view as of
// each directory's last sync_dir; an open handle holds its inode, so it outlives its name as
// an unlinked POSIX file does. One mutex guards everything: the WAL may be driven from actor
// threads, and a lock costs nothing next to what the simulator does per event.
#include "sim/sim_disk.h"

#include <algorithm>
#include <mutex>

#include "storage/forwarding_env.h"

namespace keyval::sim {
namespace {

constexpr size_t handle_registry_prune_min = 64;  // dead entries tolerated before a sweep

// "/n1//wal/" -> "/n1/wal": one spelling per path, so map lookups and prefix tests agree.
std::string normalize(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// True when `path` is `prefix` or lies inside it: "/n1" covers "/n1/wal/x", not "/n10/x".
bool is_under(const std::string& path, const std::string& prefix) {
  if (prefix.empty() || prefix == "/") return true;
  return path.compare(0, prefix.size(), prefix) == 0 && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

// The path a container element names (SimDisk::wipe erases sets and maps alike).
const std::string* key_of(const std::string& path) { return &path; }
template <typename Value>
const std::string* key_of(const std::pair<const std::string, Value>& named) {
  return &named.first;
}

// One change to a file since its last sync, kept so that a crash can replay a prefix of them.
struct Change {
  bool is_write = true;
  uint64_t offset = 0;         // write: where the bytes go
  std::vector<uint8_t> bytes;  // write: the bytes
  uint64_t size_bytes = 0;     // resize (truncate, preallocate): the new size
};

void write_bytes(std::vector<uint8_t>& data, uint64_t offset, const uint8_t* source, size_t bytes) {
  if (offset + bytes > data.size()) data.resize(offset + bytes);  // a gap before `offset` reads as zeros
  std::copy(source, source + bytes, data.begin() + static_cast<std::ptrdiff_t>(offset));
}

void replay(std::vector<uint8_t>& data, const Change& change) {
  if (change.is_write) {
    write_bytes(data, change.offset, change.bytes.data(), change.bytes.size());
  } else {
    data.resize(change.size_bytes);  // growing reads as zeros, as after ftruncate or fallocate
  }
}

struct Inode {
  std::vector<uint8_t> data;     // what reads see now
  std::vector<uint8_t> durable;  // what the last successful sync_data made durable
  std::vector<Change> journal;   // since that sync, in order: durable + journal == data
  std::vector<std::pair<uint64_t, uint64_t>> unreadable;  // latent sector errors: [from, to)
  // Damage placed on this file's bytes (a flip at rest, an unreadable range, a misdirected
  // write): it lasts as long as the file (SimDisk::damage_present).
  uint64_t damage = 0;
};

bool overlaps_unreadable(const Inode& inode, uint64_t offset, uint64_t bytes) {
  for (const auto& [from, to] : inode.unreadable) {
    if (offset < to && from < offset + bytes) return true;
  }
  return false;
}

// Where a power cut can stop inside a change: after any byte of a write; a resize is atomic.
uint64_t cut_points(const Change& change) {
  return change.is_write ? change.bytes.size() : 1;
}

// The write the power cut fell inside: its first `kept` bytes reached the disk. With `garbage`
// the sectors of the rest were being written when power failed and hold random bytes.
void tear_write(std::vector<uint8_t>& data, const Change& write, uint64_t kept, raft::SplitMix64& random,
                bool garbage) {
  std::vector<uint8_t> bytes(write.bytes.begin(), write.bytes.begin() + static_cast<std::ptrdiff_t>(kept));
  if (garbage) {
    for (size_t i = kept; i < write.bytes.size(); ++i) bytes.push_back(static_cast<uint8_t>(random.next()));
  }
  write_bytes(data, write.offset, bytes.data(), bytes.size());
}

// What a power cut leaves of `inode` when the disk wrote its journal in order and stopped at a
// random point, uniform over the cut points so that big writes are torn as often as their size says.
std::vector<uint8_t> torn_contents(const Inode& inode, raft::SplitMix64& random, bool garbage) {
  std::vector<uint8_t> data = inode.durable;
  if (inode.journal.empty()) return data;
  uint64_t total = 0;
  for (const Change& change : inode.journal) total += cut_points(change);
  uint64_t cut = random.between(0, total);
  for (const Change& change : inode.journal) {
    uint64_t points = cut_points(change);
    if (cut >= points) {
      replay(data, change);
      cut -= points;
      continue;
    }
    if (cut > 0) tear_write(data, change, cut, random, garbage);  // cut > 0 here means a write
    break;
  }
  return data;
}

// One open File: the inode it reads and writes, and whether a crash has killed it.
struct Handle {
  std::string path;
  std::shared_ptr<Inode> inode;
  bool writable = false;
  bool dead = false;
};

}  // namespace

struct SimDisk::State {
  class FileHandle;
  class HeldLock;

  std::mutex mutex;
  std::set<std::string> directories;                            // durable at once; "/" and "" always exist
  std::map<std::string, std::shared_ptr<Inode>> names;          // the volatile view: what open and list see
  std::map<std::string, std::shared_ptr<Inode>> durable_names;  // each directory as of its last sync_dir
  std::vector<std::weak_ptr<Handle>> handles;                   // every handle opened, to kill on a crash
  size_t handles_prune_at = handle_registry_prune_min;
  std::map<std::string, uint64_t> locks;  // held lock path -> holder token
  uint64_t next_lock_token = 1;
  std::set<std::string> failing_prefixes;
  std::map<std::string, bool> kill_at_sync;  // kill_at_next_sync: prefix -> sprung
  std::set<std::string> full_prefixes;  // set_full: no growth under these
  std::map<std::string, uint64_t> misdirect;  // misdirect_next_write: prefix -> shift of its next .wal write
  uint64_t misdirected_writes = 0;
  // Injected errors returned to a caller, by path (SimDisk::faults_met): a failed sync, a full
  // disk, a latent sector's read, a sync the process was killed at. Kept across crashes;
  // wipe() erases those under its prefix. (Damage placed on bytes is kept by its inode.)
  std::map<std::string, uint64_t> faults_met;
  static uint64_t sum_under(const std::map<std::string, uint64_t>& counts, const std::string& prefix) {
    uint64_t sum = 0;
    for (auto it = counts.lower_bound(prefix); it != counts.end() && it->first.compare(0, prefix.size(), prefix) == 0;
         ++it) {
      if (is_under(it->first, prefix)) sum += it->second;
    }
    return sum;
  }

  // How far the write to `path` (its inode `inode`) lands from where it was asked to (0 but for
  // a pending misdirection).
  uint64_t misdirection(const std::string& path, Inode& inode) {
    static const std::string suffix = ".wal";
    if (misdirect.empty() || path.size() < suffix.size() ||
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return 0;
    }
    for (auto it = misdirect.begin(); it != misdirect.end(); ++it) {
      if (path.compare(0, it->first.size(), it->first) != 0) continue;
      const uint64_t shift = it->second;
      misdirect.erase(it);
      ++misdirected_writes;
      ++inode.damage;
      return shift;
    }
    return 0;
  }
  uint64_t capacity_bytes = 0;  // 0: unlimited
  uint64_t syncs = 0;
  uint64_t power_cuts = 0;  // crash() calls so far: the disk-wide boot id
  std::map<std::string, uint64_t> power_cuts_of;  // crash() calls per prefix: each machine's boot id

  bool directory_exists(const std::string& directory) const {
    return directory.empty() || directory == "/" || directories.count(directory) > 0;
  }

  bool syncs_fail(const std::string& path) const {
    for (const std::string& prefix : failing_prefixes) {
      if (is_under(path, prefix)) return true;
    }
    return false;
  }

  // Paths in `view` whose parent is `directory`.
  static std::vector<std::string> children(const std::map<std::string, std::shared_ptr<Inode>>& view,
                                           const std::string& directory) {
    std::string start = directory.empty() || directory == "/" ? directory : directory + "/";
    std::vector<std::string> found;
    for (auto it = view.lower_bound(start); it != view.end() && it->first.compare(0, start.size(), start) == 0; ++it) {
      if (parent_of(it->first) == directory) found.push_back(it->first);
    }
    return found;
  }

  // Calls `visit(inode)` once for each file that exists now under `prefix` ("": everywhere):
  // named there, or unlinked but still open through a path there. For sums, whose result
  // does not depend on the order of the visits.
  template <class Visit>
  void for_each_existing(const std::string& prefix, Visit visit) const {
    std::set<const Inode*> visited;
    auto once = [&](const std::string& path, const Inode* inode) {
      if (is_under(path, prefix) && visited.insert(inode).second) visit(*inode);
    };
    for (const auto& [path, inode] : names) once(path, inode.get());
    for (const std::weak_ptr<Handle>& weak : handles) {
      std::shared_ptr<Handle> handle = weak.lock();
      if (handle && !handle->dead) once(handle->path, handle->inode.get());
    }
  }

  // Sum of the sizes of the files that exist now: named, or unlinked but still open.
  uint64_t used_bytes() const {
    uint64_t used = 0;
    for_each_existing("", [&](const Inode& inode) { used += inode.data.size(); });
    return used;
  }

  // no_space when growing a file from `current` to `wanted` bytes would pass the capacity
  // (counted as a fault met by `path`).
  Status check_growth(const char* operation, const std::string& path, uint64_t current, uint64_t wanted) {
    if (wanted <= current) return Status::ok();
    for (const std::string& prefix : full_prefixes) {
      if (is_under(path, prefix)) {
        ++faults_met[path];
        return Status::no_space(std::string(operation) + " " + path + ": the simulated disk of " + prefix +
                                " is full (" + std::to_string(wanted - current) + " more bytes needed)");
      }
    }
    if (capacity_bytes == 0) return Status::ok();
    uint64_t used = used_bytes();
    if (used + (wanted - current) <= capacity_bytes) return Status::ok();
    ++faults_met[path];
    return Status::no_space(std::string(operation) + " " + path + ": the simulated disk is full (" +
                            std::to_string(used) + " of " + std::to_string(capacity_bytes) + " bytes used, " +
                            std::to_string(wanted - current) + " more needed)");
  }

  Result<std::shared_ptr<Inode>> find_or_create(const std::string& path, OpenMode mode) {
    if (directory_exists(path)) return Status::io_error("open " + path + ": is a directory");
    auto found = names.find(path);
    if (found != names.end()) {
      if (mode == OpenMode::create_new) return Status::io_error("open " + path + ": file exists");
      return found->second;
    }
    if (mode == OpenMode::read_only || mode == OpenMode::read_write) {
      return Status::not_found("open " + path + ": no such file");
    }
    if (!directory_exists(parent_of(path))) {
      return Status::not_found("open " + path + ": directory " + parent_of(path) + " does not exist");
    }
    auto inode = std::make_shared<Inode>();
    names[path] = inode;  // volatile until sync_dir of the parent
    return inode;
  }

  void register_handle(const std::shared_ptr<Handle>& handle) {
    handles.push_back(handle);
    if (handles.size() < handles_prune_at) return;
    handles.erase(std::remove_if(handles.begin(), handles.end(), [](const auto& weak) { return weak.expired(); }),
                  handles.end());
    handles_prune_at = std::max(handle_registry_prune_min, 2 * handles.size());
  }

  // --- crash, step by step (see the model in sim_disk.h) ---
  void kill_handles(const std::string& prefix) {
    for (const std::weak_ptr<Handle>& weak : handles) {
      std::shared_ptr<Handle> handle = weak.lock();
      if (handle && is_under(handle->path, prefix)) handle->dead = true;
    }
  }

  void release_locks(const std::string& prefix) {
    for (auto it = locks.begin(); it != locks.end();) {
      it = is_under(it->first, prefix) ? locks.erase(it) : std::next(it);
    }
  }

  // Every directory under `prefix` goes back to its durable view.
  void revert_names(const std::string& prefix) {
    for (auto it = names.begin(); it != names.end();) {
      it = is_under(it->first, prefix) ? names.erase(it) : std::next(it);
    }
    for (const auto& [path, inode] : durable_names) {
      if (is_under(path, prefix)) names[path] = inode;
    }
  }

  // Every surviving file goes back to its durable bytes, plus a torn journal prefix when `tear`.
  // Files are visited in path order, so one seed always tears the same way.
  void revert_contents(const std::string& prefix, raft::SplitMix64& random, bool tear, bool garbage) {
    std::set<const Inode*> done;  // a name and a stale durable name may share an inode
    for (const auto& [path, inode] : durable_names) {
      if (!is_under(path, prefix) || !done.insert(inode.get()).second) continue;
      if (tear) inode->durable = torn_contents(*inode, random, garbage);
      inode->data = inode->durable;  // what is on the platter after the cut is durable by definition
      inode->journal.clear();
    }
  }

  // Sum of the sizes of the files named under `prefix` now.
  uint64_t used_bytes(const std::string& prefix) const {
    std::set<const Inode*> counted;
    uint64_t used = 0;
    for (const auto& [path, inode] : names) {
      if (is_under(path, prefix) && counted.insert(inode.get()).second) used += inode->data.size();
    }
    return used;
  }

  // Sum of the bytes written but not synced to the files named under `prefix`.
  uint64_t unsynced_bytes(const std::string& prefix) const {
    std::set<const Inode*> counted;
    uint64_t bytes = 0;
    for (const auto* view : {&names, &durable_names}) {
      for (const auto& [path, inode] : *view) {
        if (!is_under(path, prefix) || !counted.insert(inode.get()).second) continue;
        for (const Change& change : inode->journal) bytes += change.bytes.size();
      }
    }
    return bytes;
  }
};

// A File of the simulated disk. Every call fails with io_error once a crash has killed it.
class SimDisk::State::FileHandle final : public File {
 public:
  FileHandle(std::shared_ptr<State> state, std::shared_ptr<Handle> handle)
      : state_(std::move(state)), handle_(std::move(handle)) {}

  Result<size_t> read_at(uint64_t offset, uint8_t* destination, size_t bytes) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("read", false));
    const std::vector<uint8_t>& data = handle_->inode->data;
    if (offset >= data.size()) return size_t{0};
    size_t count = static_cast<size_t>(std::min<uint64_t>(bytes, data.size() - offset));
    if (overlaps_unreadable(*handle_->inode, offset, count)) {
      ++state_->faults_met[path()];
      return Status::io_error("read " + path() + " at offset " + std::to_string(offset) +
                              ": Input/output error (simulated latent sector error)");
    }
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(offset), count, destination);
    return count;
  }

  Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("write", true));
    if (bytes == 0) return Status::ok();  // pwrite of nothing changes nothing, not even the size
    offset += state_->misdirection(path(), *handle_->inode);
    KV_RETURN_IF_ERROR(state_->check_growth("write", path(), handle_->inode->data.size(), offset + bytes));
    record(Change{true, offset, std::vector<uint8_t>(source, source + bytes), 0});
    auto& unreadable = handle_->inode->unreadable;  // a rewritten sector reads again (remapped)
    unreadable.erase(std::remove_if(unreadable.begin(), unreadable.end(),
                                    [&](const auto& range) { return offset <= range.first && range.second <= offset + bytes; }),
                     unreadable.end());
    return Status::ok();
  }

  Status sync_data() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("fdatasync", false));
    // Like fdatasync's EIO: nothing became durable, and the caller must stop (env.h).
    if (state_->syncs_fail(path())) {
      ++state_->faults_met[path()];
      return Status::io_error("fdatasync " + path() + ": failed (simulated)");
    }
    for (auto& [prefix, sprung] : state_->kill_at_sync) {
      if (sprung || !is_under(path(), prefix)) continue;
      sprung = true;
      ++state_->faults_met[path()];
      state_->kill_handles(prefix);
      state_->release_locks(prefix);
      return Status::io_error("fdatasync " + path() + ": the process was killed (simulated)");
    }
    Inode& inode = *handle_->inode;
    for (const Change& change : inode.journal) replay(inode.durable, change);
    inode.journal.clear();
    ++state_->syncs;
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("truncate", true));
    if (size_bytes == handle_->inode->data.size()) return Status::ok();
    KV_RETURN_IF_ERROR(state_->check_growth("truncate", path(), handle_->inode->data.size(), size_bytes));
    record(Change{false, 0, {}, size_bytes});
    auto& unreadable = handle_->inode->unreadable;  // cut off: those sectors are no longer the file's
    unreadable.erase(std::remove_if(unreadable.begin(), unreadable.end(),
                                    [&](const auto& range) { return range.first >= size_bytes; }),
                     unreadable.end());
    return Status::ok();
  }

  Status preallocate(uint64_t size_bytes) override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("fallocate", true));
    if (size_bytes <= handle_->inode->data.size()) return Status::ok();  // never shrinks
    KV_RETURN_IF_ERROR(state_->check_growth("fallocate", path(), handle_->inode->data.size(), size_bytes));
    record(Change{false, 0, {}, size_bytes});
    return Status::ok();
  }

  Result<uint64_t> size() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    KV_RETURN_IF_ERROR(check_usable("stat", false));
    return static_cast<uint64_t>(handle_->inode->data.size());
  }

  const std::string& path() const override { return handle_->path; }

 private:
  Status check_usable(const char* operation, bool writes) const {
    const char* reason = nullptr;  // the message is built only on failure: this runs on every call
    if (handle_->dead) {
      reason = ": crashed (handle opened before a simulated crash)";
    } else if (writes && !handle_->writable) {
      reason = ": opened read-only";
    }
    if (reason == nullptr) return Status::ok();
    return Status::io_error(std::string(operation) + " " + path() + reason);
  }

  void record(Change change) {
    Inode& inode = *handle_->inode;
    replay(inode.data, change);
    inode.journal.push_back(std::move(change));
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Handle> handle_;
};

// Releases its path when destroyed, unless a crash released it first and someone else holds it now.
class SimDisk::State::HeldLock final : public FileLock {
 public:
  HeldLock(std::shared_ptr<State> state, std::string path, uint64_t token)
      : state_(std::move(state)), path_(std::move(path)), token_(token) {}
  ~HeldLock() override {
    std::lock_guard<std::mutex> guard(state_->mutex);
    auto it = state_->locks.find(path_);
    if (it != state_->locks.end() && it->second == token_) state_->locks.erase(it);
  }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
  uint64_t token_;
};

SimDisk::SimDisk() : state_(std::make_shared<State>()) {}
SimDisk::~SimDisk() = default;

Result<std::unique_ptr<File>> SimDisk::open_file(const std::string& path_in, OpenMode mode) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string path = normalize(path_in);
  KV_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, state_->find_or_create(path, mode));
  auto handle = std::make_shared<Handle>(Handle{path, std::move(inode), mode != OpenMode::read_only, false});
  state_->register_handle(handle);
  return std::unique_ptr<File>(new State::FileHandle(state_, std::move(handle)));
}

Status SimDisk::sync_dir(const std::string& directory_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string directory = normalize(directory_in);
  if (!state_->directory_exists(directory)) {
    return Status::not_found("fsync directory " + directory + ": no such directory");
  }
  if (state_->syncs_fail(directory)) {
    ++state_->faults_met[directory];
    return Status::io_error("fsync directory " + directory + ": failed (simulated)");
  }
  for (const std::string& path : State::children(state_->durable_names, directory)) state_->durable_names.erase(path);
  for (const std::string& path : State::children(state_->names, directory)) {
    state_->durable_names[path] = state_->names[path];
  }
  return Status::ok();
}

Status SimDisk::rename(const std::string& from_in, const std::string& to_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string from = normalize(from_in);
  std::string to = normalize(to_in);
  std::string what = "rename " + from + " -> " + to;
  auto found = state_->names.find(from);
  if (found == state_->names.end()) {
    if (state_->directory_exists(from))
      return Status::invalid_argument(what + ": renaming directories is not simulated");
    return Status::not_found(what + ": no such file");
  }
  if (!state_->directory_exists(parent_of(to))) return Status::not_found(what + ": target directory does not exist");
  if (state_->directory_exists(to)) return Status::io_error(what + ": target is a directory");
  if (from == to) return Status::ok();
  std::shared_ptr<Inode> inode = found->second;
  state_->names.erase(found);
  state_->names[to] = std::move(inode);  // replaces an existing `to`, as rename(2) does
  return Status::ok();
}

void SimDisk::wipe(const std::string& prefix_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  const std::string prefix = normalize(prefix_in);
  auto erase_under = [&](auto& container) {
    for (auto it = container.begin(); it != container.end();) {
      if (is_under(*key_of(*it), prefix)) {
        it = container.erase(it);
      } else {
        ++it;
      }
    }
  };
  erase_under(state_->names);
  erase_under(state_->durable_names);
  erase_under(state_->directories);
  erase_under(state_->locks);
  erase_under(state_->faults_met);
}

Status SimDisk::remove(const std::string& path_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string path = normalize(path_in);
  if (state_->names.erase(path) > 0) return Status::ok();  // open handles keep the inode
  if (state_->directory_exists(path)) return Status::io_error("remove " + path + ": is a directory");
  return Status::not_found("remove " + path + ": no such file");
}

Result<std::vector<std::string>> SimDisk::list(const std::string& directory_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string directory = normalize(directory_in);
  if (!state_->directory_exists(directory)) return Status::not_found("list " + directory + ": no such directory");
  std::vector<std::string> entries;
  for (const std::string& path : State::children(state_->names, directory)) entries.push_back(path);
  for (const std::string& path : state_->directories) {
    if (path != directory && parent_of(path) == directory) entries.push_back(path);
  }
  std::vector<std::string> names;
  for (const std::string& path : entries) names.push_back(path.substr(path.rfind('/') + 1));
  std::sort(names.begin(), names.end());
  return names;
}

Status SimDisk::create_dir(const std::string& directory_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  if (directory_in.empty()) return Status::invalid_argument("create directory: empty path");
  std::string directory = normalize(directory_in);
  // Each ancestor in turn ("/n1", then "/n1/wal"), as mkdir -p does.
  for (size_t end = directory.find('/', 1);; end = directory.find('/', end + 1)) {
    std::string ancestor = directory.substr(0, end);
    if (state_->names.count(ancestor) > 0) {
      return Status::invalid_argument("create directory " + ancestor + ": exists and is not a directory");
    }
    if (!state_->directory_exists(ancestor)) state_->directories.insert(ancestor);
    if (end == std::string::npos) break;
  }
  return Status::ok();
}

bool SimDisk::exists(const std::string& path_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string path = normalize(path_in);
  return state_->names.count(path) > 0 || state_->directory_exists(path);
}

Result<std::unique_ptr<FileLock>> SimDisk::lock(const std::string& path_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string path = normalize(path_in);
  if (state_->locks.count(path) > 0) return Status::locked(path + " is held by another holder");
  // flock needs the file: it is created if missing, its name volatile like any other.
  KV_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, state_->find_or_create(path, OpenMode::create_or_open));
  uint64_t token = state_->next_lock_token++;
  state_->locks[path] = token;
  return std::unique_ptr<FileLock>(new State::HeldLock(state_, path, token));
}

void SimDisk::crash(const std::string& prefix_in, raft::SplitMix64& random, bool tear, bool garbage) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string prefix = normalize(prefix_in);
  state_->kill_handles(prefix);
  state_->release_locks(prefix);
  state_->revert_names(prefix);
  state_->revert_contents(prefix, random, tear, garbage);
  ++state_->power_cuts;
  ++state_->power_cuts_of[prefix];
}

void SimDisk::kill_process(const std::string& prefix_in) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string prefix = normalize(prefix_in);
  state_->kill_handles(prefix);
  state_->release_locks(prefix);
}

void SimDisk::kill_at_next_sync(const std::string& prefix) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  state_->kill_at_sync[normalize(prefix)] = false;
}

bool SimDisk::killed_at_sync(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  auto found = state_->kill_at_sync.find(normalize(prefix));
  return found != state_->kill_at_sync.end() && found->second;
}

void SimDisk::disarm_kill(const std::string& prefix) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  state_->kill_at_sync.erase(normalize(prefix));
}

std::string SimDisk::boot_id() {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return "sim-boot-" + std::to_string(state_->power_cuts);
}

std::string SimDisk::boot_id(const std::string& prefix_in) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  std::string prefix = normalize(prefix_in);
  auto found = state_->power_cuts_of.find(prefix);
  return "sim-boot-" + prefix + "-" + std::to_string(found == state_->power_cuts_of.end() ? 0 : found->second);
}

namespace {

// One machine's view of the shared disk: its own boot id, everything else the disk's.
class SimMachine final : public ForwardingEnv {
 public:
  SimMachine(SimDisk& disk, std::string prefix) : ForwardingEnv(disk), disk_(disk), prefix_(std::move(prefix)) {}
  std::string boot_id() override { return disk_.boot_id(prefix_); }

 private:
  SimDisk& disk_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<Env> SimDisk::machine(const std::string& prefix) {
  return std::make_unique<SimMachine>(*this, prefix);
}

void SimDisk::fail_syncs(const std::string& prefix, bool fail) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  if (fail) {
    state_->failing_prefixes.insert(normalize(prefix));
  } else {
    state_->failing_prefixes.erase(normalize(prefix));
  }
}

bool SimDisk::syncs_failing(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->failing_prefixes.count(normalize(prefix)) > 0;
}

void SimDisk::set_capacity(uint64_t bytes) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  state_->capacity_bytes = bytes;
}

void SimDisk::set_full(const std::string& prefix, bool full) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  if (full) {
    state_->full_prefixes.insert(normalize(prefix));
  } else {
    state_->full_prefixes.erase(normalize(prefix));
  }
}

uint64_t SimDisk::used_bytes(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->used_bytes(normalize(prefix));
}

uint64_t SimDisk::unsynced_bytes(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->unsynced_bytes(normalize(prefix));
}

uint64_t SimDisk::used_bytes() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->used_bytes();
}

Status SimDisk::flip_at_rest(const std::string& path, uint64_t offset, uint8_t mask) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  auto found = state_->names.find(normalize(path));
  if (found == state_->names.end()) return Status::not_found("flip_at_rest: no file " + path);
  Inode& inode = *found->second;
  if (offset >= inode.data.size()) return Status::invalid_argument("flip_at_rest: offset past the end of " + path);
  inode.data[offset] ^= mask;
  if (offset < inode.durable.size()) inode.durable[offset] ^= mask;
  ++inode.damage;
  return Status::ok();
}

Status SimDisk::add_read_error(const std::string& path, uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  auto found = state_->names.find(normalize(path));
  if (found == state_->names.end()) return Status::not_found("add_read_error: no file " + path);
  found->second->unreadable.emplace_back(from, to);
  ++found->second->damage;
  return Status::ok();
}

void SimDisk::misdirect_next_write(const std::string& prefix, uint64_t shift_bytes) {
  std::lock_guard<std::mutex> guard(state_->mutex);
  state_->misdirect[normalize(prefix)] = shift_bytes;
}

uint64_t SimDisk::misdirected_writes() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->misdirected_writes;
}

uint64_t SimDisk::faults_met(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return State::sum_under(state_->faults_met, normalize(prefix));
}

uint64_t SimDisk::damage_present(const std::string& prefix) const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  uint64_t damage = 0;
  state_->for_each_existing(normalize(prefix), [&](const Inode& inode) { damage += inode.damage; });
  return damage;
}

uint64_t SimDisk::syncs() const {
  std::lock_guard<std::mutex> guard(state_->mutex);
  return state_->syncs;
}

}  // namespace keyval::sim
