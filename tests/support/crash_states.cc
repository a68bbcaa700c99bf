// Crash states from an I/O trace (see crash_states.h): the trace reader, the disk model
// replayed call by call, the choice of cut points, and writing a state out.
#include "tests/support/crash_states.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/support/crash_ledger.h"
#include "tests/support/temp_dir.h"

namespace keyval::testing {
namespace {

constexpr uint64_t between_points_max = 64;  // "between syncs" cuts spread over the whole trace
constexpr uint64_t sector_bytes = 512;       // a torn write keeps a whole number of these

const char* call_name(const TraceOp& op) {
  switch (op.kind) {
    case io_trace_open: return (op.flags & O_CREAT) ? "open (create)" : "open";
    case io_trace_write: return "write";
    case io_trace_truncate: return "truncate";
    case io_trace_allocate: return "allocate";
    case io_trace_sync: return "sync";
    case io_trace_rename: return "rename";
    case io_trace_unlink: return "unlink";
    case io_trace_mkdir: return "mkdir";
    case io_trace_rmdir: return "rmdir";
    case io_trace_close: return "close";
  }
  return "?";
}

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// The kind of file a path is, by the names the node uses (storage/FORMAT.md).
std::string file_class(const std::string& path) {
  if (path.empty()) return "data directory";
  if (path == "wal" || path == "snapshots" || path == "lmdb") return path + " directory";
  if (path.rfind("wal/", 0) == 0) return ends_with(path, ".tmp") ? "wal prepared segment" : "wal segment";
  if (path.rfind("snapshots/", 0) == 0) return ends_with(path, ".tmp") ? "snapshot temporary" : "snapshot";
  if (path.rfind("lmdb/", 0) == 0) return "lmdb " + path.substr(5);
  if (path.rfind("LMDB_STATE", 0) == 0) return "lmdb state";
  if (path.rfind("IDENTITY", 0) == 0) return "identity";
  return "other";
}

std::string relative_path(const std::string& absolute, const std::string& root) {
  if (absolute.size() == root.size()) return "";
  return absolute.substr(root.size() + 1);
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// --- the disk model -------------------------------------------------------------------------

struct ContentChange {
  IoTraceKind kind = io_trace_write;  // write, truncate or allocate
  uint64_t offset = 0, length = 0;    // write: where and how much; truncate: size; allocate: to offset + length
  const uint8_t* data = nullptr;
  bool forced = false;  // through an O_SYNC/O_DSYNC descriptor: durable at once
};

struct Inode {
  bool directory = false;
  std::vector<uint8_t> durable;
  std::vector<ContentChange> pending;
};

struct NameChange {
  IoTraceKind kind = io_trace_open;  // open (a create), mkdir, rename, unlink, rmdir
  std::string path, path2;
  size_t inode = 0;
};

void apply_change(std::vector<uint8_t>& content, const ContentChange& change) {
  switch (change.kind) {
    case io_trace_write:
      if (content.size() < change.offset + change.length) content.resize(change.offset + change.length, 0);
      std::memcpy(content.data() + change.offset, change.data, change.length);
      break;
    case io_trace_truncate: content.resize(change.offset, 0); break;
    case io_trace_allocate:
      if (content.size() < change.offset + change.length) content.resize(change.offset + change.length, 0);
      break;
    default: KV_ASSERT(false);
  }
}

void apply_name(std::map<std::string, size_t>& names, const NameChange& change) {
  switch (change.kind) {
    case io_trace_open:
    case io_trace_mkdir: names[change.path] = change.inode; break;
    case io_trace_rename:
      names.erase(change.path);
      names[change.path2] = change.inode;
      break;
    case io_trace_unlink:
    case io_trace_rmdir: names.erase(change.path); break;
    default: KV_ASSERT(false);
  }
}

class DiskModel {
 public:
  explicit DiskModel(const IoTrace& trace) : trace_(trace) {
    inodes_.push_back(Inode{true, {}, {}});  // the traced directory, there before the run
    names_[""] = 0;
    durable_names_[""] = 0;
  }

  Status apply(const TraceOp& op);
  CrashState build(const CrashStateSpec& spec, uint64_t cut_time_ns) const;

 private:
  Result<size_t> inode_of(const TraceOp& op) const;
  void sync_directory(const std::string& directory);
  void add_name(NameChange change) {
    apply_name(names_, change);
    pending_names_.push_back(std::move(change));
  }

  const IoTrace& trace_;
  std::vector<Inode> inodes_;
  std::map<std::string, size_t> names_;          // as the process saw them
  std::map<std::string, size_t> durable_names_;  // as a crash keeps them at least
  std::vector<NameChange> pending_names_;
  std::map<int64_t, size_t> descriptors_;
};

Result<size_t> DiskModel::inode_of(const TraceOp& op) const {
  if (op.fd >= 0) {
    auto found = descriptors_.find(op.fd);
    if (found != descriptors_.end()) return found->second;
  }
  auto named = names_.find(op.path);
  if (named != names_.end()) return named->second;
  return Status::corruption("trace call " + std::to_string(op.sequence) + " (" + op.describe() + ") on an unknown file");
}

void DiskModel::sync_directory(const std::string& directory) {
  std::vector<NameChange> still_pending;
  for (NameChange& change : pending_names_) {
    bool inside = parent_of(change.path) == directory ||
                  (change.kind == io_trace_rename && parent_of(change.path2) == directory);
    if (inside) {
      apply_name(durable_names_, change);
    } else {
      still_pending.push_back(std::move(change));
    }
  }
  pending_names_ = std::move(still_pending);
}

Status DiskModel::apply(const TraceOp& op) {
  if (op.sequence == 1) descriptors_.clear();  // another process: its descriptors are its own
  const std::string where = "trace call " + std::to_string(op.sequence) + " (" + op.describe() + ")";
  switch (op.kind) {
    case io_trace_open: {
      auto named = names_.find(op.path);
      if (named == names_.end()) {
        if (!(op.flags & O_CREAT)) return Status::corruption(where + ": opens a file the trace never created");
        inodes_.push_back(Inode{});
        add_name(NameChange{io_trace_open, op.path, "", inodes_.size() - 1});
        named = names_.find(op.path);
      } else if (op.flags & O_TRUNC) {
        inodes_[named->second].pending.push_back(ContentChange{io_trace_truncate, 0, 0, nullptr, false});
      }
      descriptors_[op.fd] = named->second;
      return Status::ok();
    }
    case io_trace_write:
    case io_trace_truncate:
    case io_trace_allocate: {
      KV_ASSIGN_OR_RETURN(size_t inode, inode_of(op));
      ContentChange change{op.kind, op.offset, op.kind == io_trace_write ? op.data_bytes : op.length, nullptr,
                           (op.flags & IO_TRACE_WRITE_SYNCED) != 0};
      if (op.kind == io_trace_write) change.data = trace_.data(op);
      inodes_[inode].pending.push_back(change);
      return Status::ok();
    }
    case io_trace_sync: {
      KV_ASSIGN_OR_RETURN(size_t inode, inode_of(op));
      Inode& file = inodes_[inode];
      if (file.directory) {
        sync_directory(op.path);
      } else {
        for (const ContentChange& change : file.pending) apply_change(file.durable, change);
        file.pending.clear();
      }
      return Status::ok();
    }
    case io_trace_rename: {
      auto named = names_.find(op.path);
      if (named == names_.end()) return Status::corruption(where + ": renames an unknown name");
      add_name(NameChange{io_trace_rename, op.path, op.path2, named->second});
      return Status::ok();
    }
    case io_trace_unlink:
    case io_trace_rmdir:
      if (!names_.count(op.path)) return Status::corruption(where + ": removes an unknown name");
      add_name(NameChange{op.kind, op.path, "", names_[op.path]});
      return Status::ok();
    case io_trace_mkdir:
      inodes_.push_back(Inode{true, {}, {}});
      add_name(NameChange{io_trace_mkdir, op.path, "", inodes_.size() - 1});
      return Status::ok();
    case io_trace_close: descriptors_.erase(op.fd); return Status::ok();
  }
  return Status::corruption(where + ": unknown call");
}

// How many of `pending` changes a state keeps, and which: a mask over them.
std::vector<bool> kept_changes(StateKind kind, size_t pending, std::mt19937_64& random) {
  std::vector<bool> keep(pending, kind == StateKind::everything);
  if (kind == StateKind::prefix) {
    size_t count = std::uniform_int_distribution<size_t>(0, pending)(random);
    std::fill(keep.begin(), keep.begin() + static_cast<long>(count), true);
  } else if (kind == StateKind::subset) {
    for (size_t i = 0; i < pending; ++i) keep[i] = (random() & 1) != 0;
  }
  return keep;
}

CrashState DiskModel::build(const CrashStateSpec& spec, uint64_t cut_time_ns) const {
  CrashState state;
  state.spec = spec;
  state.cut_time_ns = cut_time_ns;
  std::mt19937_64 random(mix(spec.seed, spec.cut, static_cast<uint64_t>(spec.kind)));

  std::map<std::string, size_t> names = durable_names_;
  std::vector<bool> names_kept = kept_changes(spec.kind == StateKind::subset ? StateKind::prefix : spec.kind,
                                              pending_names_.size(), random);
  for (size_t i = 0; i < pending_names_.size() && names_kept[i]; ++i) apply_name(names, pending_names_[i]);
  state.pending_names = pending_names_.size();
  state.pending_names_kept = static_cast<uint64_t>(std::count(names_kept.begin(), names_kept.end(), true));

  // Directories first: a name survives only when every directory above it does.
  for (const auto& [path, inode] : names) {
    if (!path.empty() && inodes_[inode].directory) state.directories.insert(path);
  }
  auto reachable = [&](const std::string& path) {
    for (std::string up = parent_of(path); !up.empty(); up = parent_of(up)) {
      if (!state.directories.count(up)) return false;
    }
    return true;
  };
  for (auto it = state.directories.begin(); it != state.directories.end();) {
    it = reachable(*it) ? std::next(it) : state.directories.erase(it);
  }
  for (const auto& [path, inode] : names) {
    const Inode& file = inodes_[inode];
    if (file.directory || !reachable(path)) continue;
    std::vector<uint8_t> content = file.durable;
    std::vector<bool> keep = kept_changes(spec.kind, file.pending.size(), random);
    for (size_t i = 0; i < file.pending.size(); ++i) {
      if (keep[i] || file.pending[i].forced) apply_change(content, file.pending[i]);
    }
    // A prefix ends inside a write when it can: the first one it leaves out is torn, its first
    // sectors on disk and the rest not.
    const size_t torn = static_cast<size_t>(std::find(keep.begin(), keep.end(), false) - keep.begin());
    if (spec.kind == StateKind::prefix && torn < file.pending.size() && file.pending[torn].kind == io_trace_write &&
        file.pending[torn].length > sector_bytes) {
      ContentChange part = file.pending[torn];
      part.length = sector_bytes * std::uniform_int_distribution<uint64_t>(1, (part.length - 1) / sector_bytes)(random);
      apply_change(content, part);
      state.torn_files.push_back(path);
    }
    state.pending_changes += file.pending.size();
    state.pending_changes_kept += static_cast<uint64_t>(std::count(keep.begin(), keep.end(), true));
    state.files[path] = std::move(content);
  }
  return state;
}

}  // namespace

// --- the trace --------------------------------------------------------------------------------

std::string TraceOp::describe() const {
  std::string text = std::string(call_name(*this)) + " " + (path.empty() ? "." : path);
  if (kind == io_trace_rename) text += " -> " + path2;
  if (kind == io_trace_write) text += " @" + std::to_string(offset) + "+" + std::to_string(data_bytes);
  if (kind == io_trace_truncate) text += " to " + std::to_string(offset);
  return text;
}

Result<IoTrace> IoTrace::read(const std::string& trace_path, const std::string& traced_directory) {
  IoTrace trace;
  std::ifstream in(trace_path, std::ios::binary | std::ios::ate);
  if (!in) return Status::io_error("cannot read " + trace_path);
  trace.bytes_.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(trace.bytes_.data()), static_cast<std::streamsize>(trace.bytes_.size()))) {
    return Status::io_error("cannot read " + trace_path);
  }
  const size_t size = trace.bytes_.size();
  size_t position = 0;
  uint64_t last_sequence = 0;
  while (position < size) {
    if (size - position < sizeof(IoTraceRecord)) break;
    IoTraceRecord header;
    std::memcpy(&header, trace.bytes_.data() + position, sizeof header);
    if (header.magic != IO_TRACE_MAGIC) {
      return Status::corruption(trace_path + ": no record at offset " + std::to_string(position));
    }
    const uint64_t record_bytes = sizeof header + uint64_t{header.path_bytes} + header.path2_bytes + header.data_bytes;
    if (size - position < record_bytes) break;
    // Sequences start at 1 in each traced process; processes follow one another.
    if (header.sequence != last_sequence + 1 && header.sequence != 1) {
      return Status::corruption(trace_path + ": sequence " + std::to_string(header.sequence) + " after " +
                                std::to_string(last_sequence));
    }
    last_sequence = header.sequence;
    const char* text = reinterpret_cast<const char*>(trace.bytes_.data() + position + sizeof header);
    TraceOp op;
    op.kind = static_cast<IoTraceKind>(header.kind);
    op.sequence = header.sequence;
    op.time_ns = header.time_ns;
    op.fd = header.fd;
    op.offset = header.offset;
    op.length = header.length;
    op.flags = header.flags;
    op.path = relative_path(std::string(text, header.path_bytes), traced_directory);
    if (header.path2_bytes) {
      op.path2 = relative_path(std::string(text + header.path_bytes, header.path2_bytes), traced_directory);
    }
    op.data_offset = position + sizeof header + header.path_bytes + header.path2_bytes;
    op.data_bytes = header.data_bytes;
    trace.ops_.push_back(std::move(op));
    position += record_bytes;
  }
  trace.torn_bytes_ = size - position;
  return trace;
}

const char* state_kind_name(StateKind kind) {
  switch (kind) {
    case StateKind::synced: return "synced";
    case StateKind::everything: return "everything";
    case StateKind::prefix: return "prefix";
    case StateKind::subset: return "subset";
  }
  return "?";
}

std::string CrashState::describe(const IoTrace& trace) const {
  const auto& ops = trace.ops();
  std::string at = spec.cut < ops.size() ? "before " + ops[spec.cut].describe() : "at the end";
  return "cut " + std::to_string(spec.cut) + "/" + std::to_string(ops.size()) + " (" + at + "; " + spec.category +
         ") " + state_kind_name(spec.kind) + " seed " + std::to_string(spec.seed) + ": kept " +
         std::to_string(pending_changes_kept) + "/" + std::to_string(pending_changes) + " pending changes, " +
         std::to_string(pending_names_kept) + "/" + std::to_string(pending_names) + " pending names, " +
         std::to_string(torn_files.size()) + " torn writes";
}

// --- choosing states ----------------------------------------------------------------------------

std::map<std::string, std::vector<size_t>> interesting_cuts(const IoTrace& trace) {
  std::map<std::string, std::set<size_t>> found;
  const auto& ops = trace.ops();
  std::vector<size_t> writes;
  for (size_t i = 0; i < ops.size(); ++i) {
    const TraceOp& op = ops[i];
    const bool creates = op.kind == io_trace_open && (op.flags & O_CREAT);
    if (op.kind == io_trace_write) writes.push_back(i);
    if (op.kind == io_trace_write || op.kind == io_trace_close || (op.kind == io_trace_open && !creates)) continue;
    const std::string what = std::string(call_name(op)) + " " + file_class(op.path);
    found["before " + what].insert(i);
    found["after " + what].insert(i + 1);
  }
  const size_t between = std::min<size_t>(between_points_max, writes.size());
  // Just after a write: it and whatever else was not synced yet are pending there.
  for (size_t j = 0; j < between; ++j) found["between syncs"].insert(writes[(2 * j + 1) * writes.size() / (2 * between)] + 1);
  std::map<std::string, std::vector<size_t>> cuts;
  for (auto& [category, points] : found) cuts[category].assign(points.begin(), points.end());
  return cuts;
}

std::vector<CrashStateSpec> choose_states(const IoTrace& trace, size_t count, uint64_t seed) {
  std::vector<CrashStateSpec> specs;
  const size_t end = trace.ops().size();
  for (StateKind kind : {StateKind::everything, StateKind::synced}) {
    if (specs.size() < count) specs.push_back(CrashStateSpec{end, kind, seed, "end of the trace"});
  }
  const auto cuts = interesting_cuts(trace);
  // Quotas: one state per category in turn while any has cuts left; several per cut (each
  // another kind) only once every cut of every category has one.
  std::map<std::string, size_t> quota;
  size_t left = count - specs.size();
  for (size_t round = 0; left > 0; ++round) {
    bool any = false;
    for (const auto& [category, points] : cuts) {
      if (left == 0) break;
      if (round >= points.size() * 4) continue;
      ++quota[category];
      --left;
      any = true;
    }
    if (!any) break;
  }
  static const StateKind kinds[] = {StateKind::prefix, StateKind::subset, StateKind::synced, StateKind::everything};
  size_t category_number = 0;
  for (const auto& [category, points] : cuts) {
    const size_t picks = quota[category];
    for (size_t j = 0; j < picks; ++j) {
      const size_t cut = points[(2 * j + 1) * points.size() / (2 * picks) % points.size()];
      const StateKind kind = kinds[(j + category_number) % 4];
      specs.push_back(CrashStateSpec{cut, kind, mix(seed, cut, j), category});
    }
    ++category_number;
  }
  return specs;
}

Status build_crash_states(const IoTrace& trace, std::vector<CrashStateSpec> specs,
                          const std::function<void(const CrashState&)>& visit) {
  std::stable_sort(specs.begin(), specs.end(),
                   [](const CrashStateSpec& a, const CrashStateSpec& b) { return a.cut < b.cut; });
  const auto& ops = trace.ops();
  DiskModel model(trace);
  size_t applied = 0;
  for (const CrashStateSpec& spec : specs) {
    KV_ASSERT(spec.cut <= ops.size());
    for (; applied < spec.cut; ++applied) KV_RETURN_IF_ERROR(model.apply(ops[applied]));
    const uint64_t cut_time_ns = spec.cut < ops.size() ? ops[spec.cut].time_ns : UINT64_MAX;
    visit(model.build(spec, cut_time_ns));
  }
  return Status::ok();
}

// --- writing out and comparing -------------------------------------------------------------------

Status materialize(const CrashState& state, const std::string& directory) {
  std::error_code error;
  if (!std::filesystem::create_directories(directory, error)) {
    return Status::io_error("cannot create " + directory + (error ? ": " + error.message() : ": exists"));
  }
  for (const std::string& path : state.directories) {  // sorted: parents first
    if (!std::filesystem::create_directory(directory + "/" + path, error)) {
      return Status::io_error("cannot create " + directory + "/" + path + ": " + error.message());
    }
  }
  for (const auto& [path, content] : state.files) write_file(directory + "/" + path, content);
  return Status::ok();
}

std::vector<std::string> compare_with_directory(const CrashState& state, const std::string& directory,
                                                const std::set<std::string>& size_only) {
  std::vector<std::string> differences;
  std::set<std::string> seen_files, seen_directories;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
    std::string path = entry.path().string().substr(directory.size() + 1);
    (entry.is_directory() ? seen_directories : seen_files).insert(path);
  }
  for (const std::string& path : seen_directories) {
    if (!state.directories.count(path)) differences.push_back("directory " + path + " is not in the trace");
  }
  for (const std::string& path : state.directories) {
    if (!seen_directories.count(path)) differences.push_back("directory " + path + " is in the trace only");
  }
  for (const std::string& path : seen_files) {
    auto modelled = state.files.find(path);
    if (modelled == state.files.end()) {
      differences.push_back("file " + path + " is not in the trace");
      continue;
    }
    std::vector<uint8_t> content = read_file(directory + "/" + path);
    if (content.size() != modelled->second.size()) {
      differences.push_back("file " + path + " has " + std::to_string(content.size()) + " bytes, the trace " +
                            std::to_string(modelled->second.size()));
    } else if (!size_only.count(path) && content != modelled->second) {
      auto at = std::mismatch(content.begin(), content.end(), modelled->second.begin()).first - content.begin();
      differences.push_back("file " + path + " differs from the trace at offset " + std::to_string(at));
    }
  }
  for (const auto& [path, content] : state.files) {
    if (!seen_files.count(path)) differences.push_back("file " + path + " is in the trace only");
  }
  return differences;
}

}  // namespace keyval::testing
