// keyval snapshot save|status|restore: backups of a live cluster, as operators know them from
// `etcdctl snapshot save|status|restore`.
//
//   keyval snapshot save FILE [--endpoints ...] [--timeout-ms T] [--request-timeout-ms R]
//       the leader takes a fresh snapshot holding every write acknowledged before the command;
//       it is streamed to FILE.part, verified and renamed to FILE (client/kv_client.h). Progress
//       on stderr (bytes of total, MB/s); on stdout one line, then JSON
//       {"file","index","term","bytes","keys","sessions","checksum","node","seconds"}.
//   keyval snapshot status FILE
//       verifies every chunk and the whole-file checksum; prints index, term, keys, sessions,
//       bytes, chunks, checksum and the configuration, then JSON. A damaged file: the error
//       names the file and the offset, and the JSON says "valid":false.
//   keyval snapshot restore FILE --data-dir D --id N --peers 1=H:P,... [--cluster NAME]
//       seeds D (absent or empty) as node N of a NEW cluster with the peers as members
//       (apps/snapshot_restore.h); `keyval node` with the same --id, --peers and --cluster then
//       starts from it. FILE is verified first: nothing is written from a damaged file.
// Exit: 0 done; 1 a damaged file, or a restore refused (a non-empty data directory); 2 usage;
// 3 the cluster did not complete the backup.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/kv_client.h"
#include "apps/peers.h"
#include "apps/snapshot_restore.h"
#include "storage/snapshot_file.h"

namespace keyval::commands {
namespace {

constexpr int exit_refused = 1;      // a damaged file, a non-empty data directory
constexpr int exit_unavailable = 3;  // no backup: the cluster did not complete it
constexpr double progress_interval_s_tty = 0.1;  // a terminal's progress line is redrawn this often
constexpr double progress_interval_s_log = 2.0;  // otherwise one line this often (a log stays short)

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

cli::Json members_json(const std::vector<Member>& members) {
  cli::Json json = cli::Json::array();
  for (const Member& member : members) json.push_back(cli::JsonLine().add("id", member.id).add("address", member.address).json());
  return json;
}

std::string members_text(const std::vector<Member>& members) {
  std::string text;
  for (const Member& member : members) {
    text += (text.empty() ? "" : ",") + std::to_string(member.id) + "=" + member.address;
  }
  return text.empty() ? "(none)" : text;
}

// The progress of a backup on stderr: redrawn in place on a terminal, else a line now and then.
class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO) == 1), started_s_(cli::monotonic_seconds()) {}

  void operator()(uint64_t done, uint64_t total) {
    const double now_s = cli::monotonic_seconds();
    const bool finished = done == total;
    if (!finished && now_s - printed_s_ < (tty_ ? progress_interval_s_tty : progress_interval_s_log)) return;
    printed_s_ = now_s;
    const double elapsed_s = std::max(now_s - started_s_, 1e-6);
    char line[160];
    std::snprintf(line, sizeof line, "%s of %s (%.0f%%), %.1f MB/s", megabytes(done).c_str(),
                  megabytes(total).c_str(), total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / total,
                  static_cast<double>(done) / 1e6 / elapsed_s);
    std::cerr << (tty_ ? "\r" : "") << line << (tty_ && !finished ? "\x1b[K" : "\n") << std::flush;
  }

  double elapsed_s() const { return cli::monotonic_seconds() - started_s_; }

 private:
  bool tty_;
  double started_s_;
  double printed_s_ = -1e9;
};

int save_main(const std::vector<std::string>& args) {
  cli::Command command("snapshot save", "back up the cluster's state into FILE (progress on stderr); a JSON line last",
                       "FILE");
  command.add(client_flag_specs()).footer("exit: 0 saved, 2 usage, 3 the cluster did not complete the backup");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error("snapshot save", "expects FILE");
  auto json_only = json_output(flags);
  if (!json_only.is_ok()) return cli::usage_error("snapshot save", json_only.status().message());
  const std::string path = flags.positional()[0];
  auto client = client_from_flags(flags);
  if (!client.is_ok()) return cli::usage_error("snapshot save", client.status().message());
  ProgressLine progress;
  auto saved = (*client)->snapshot_save(path, [&](uint64_t done, uint64_t total) { progress(done, total); });
  if (!saved.is_ok()) {
    std::cerr << "keyval snapshot save: " << saved.status().message() << "\n";
    return exit_unavailable;
  }
  const double seconds = progress.elapsed_s();
  const uint64_t node = (*client)->leader();
  (*json_only ? std::cerr : std::cout) << "saved snapshot at index " << saved->header.index << " (term " << saved->header.term << ") from node "
            << node << " to " << path << ": " << saved->keys << " keys, " << saved->sessions << " sessions, "
            << saved->file_bytes << " bytes, checksum " << hex32(saved->checksum) << "\n";
  cli::JsonLine json;
  json.add("file", path).add("index", saved->header.index).add("term", saved->header.term)
      .add("bytes", saved->file_bytes).add("keys", saved->keys).add("sessions", saved->sessions)
      .add("checksum", hex32(saved->checksum)).add("node", node).add("seconds", seconds);
  std::cout << json.str() << std::endl;
  return cli::exit_ok;
}

int status_file_main(const std::vector<std::string>& args) {
  const cli::Command command =
      cli::Command("snapshot status", "verify a backup; print index, term, keys, bytes; a JSON line last", "FILE")
          .add(output_flag_specs())
          .footer("exit: 0 valid, 1 damaged, 2 usage");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error("snapshot status", "expects FILE");
  auto json_only = json_output(flags);
  if (!json_only.is_ok()) return cli::usage_error("snapshot status", json_only.status().message());
  const std::string path = flags.positional()[0];
  auto summary = verify_snapshot_file(posix_env(), path);
  if (!summary.is_ok()) {
    std::cerr << "keyval snapshot status: " << summary.status().to_string() << "\n";
    cli::JsonLine json;
    json.add("file", path).add_bool("valid", false).add("error", summary.status().to_string());
    std::cout << json.str() << std::endl;
    return exit_refused;
  }
  const SnapshotHeader& header = summary->header;
  (*json_only ? std::cerr : std::cout) << "file " << path << ": valid\n"
            << "index " << header.index << "\n"
            << "term " << header.term << "\n"
            << "keys " << summary->keys << "\n"
            << "sessions " << summary->sessions << "\n"
            << "bytes " << summary->file_bytes << "\n"
            << "chunks " << summary->chunks << "\n"
            << "checksum " << hex32(summary->checksum) << "\n"
            << "configuration " << members_text(header.configuration) << "\n";
  cli::JsonLine json;
  json.add("file", path).add_bool("valid", true).add("index", header.index).add("term", header.term)
      .add("keys", summary->keys).add("sessions", summary->sessions).add("bytes", summary->file_bytes)
      .add("chunks", summary->chunks).add("checksum", hex32(summary->checksum))
      .add("configuration", members_json(header.configuration));
  std::cout << json.str() << std::endl;
  return cli::exit_ok;
}

cli::Command restore_command() {
  return cli::Command("snapshot restore", "seed an empty data directory as node N of a new cluster from a backup",
                      "FILE")
      .value("data-dir", "", "the new node's data directory (missing or empty); required")
      .value("id", "", "the new node's id; required")
      .value("peers", "", "the new cluster's members, 1=HOST:PORT,...; required")
      .value("cluster", RestoreOptions().cluster, "the new cluster's name")
      .footer("exit: 0 restored, 1 a damaged file or a refused restore, 2 usage");
}

Result<RestoreOptions> parse_restore(const cli::Flags& flags) {
  if (flags.positional().size() != 1) return Status::invalid_argument("expects FILE");
  RestoreOptions options;
  options.snapshot_path = flags.positional()[0];
  options.data_directory = flags.get("data-dir");
  if (options.data_directory.empty()) return Status::invalid_argument("--data-dir is required");
  if (!flags.has("id")) return Status::invalid_argument("--id is required");
  KV_ASSIGN_OR_RETURN(options.node_id, flags.get_u64("id", 0));
  if (options.node_id == 0) return Status::invalid_argument("--id must be above 0");
  if (!flags.has("peers")) return Status::invalid_argument("--peers is required (the new cluster's members)");
  KV_ASSIGN_OR_RETURN(auto peers, parse_peers(flags.get("peers")));
  if (peers.count(options.node_id) == 0) {
    return Status::invalid_argument("--peers does not list this node (--id " + std::to_string(options.node_id) + ")");
  }
  options.members = members_of(peers);
  options.cluster = flags.get("cluster", options.cluster);
  return options;
}

int restore_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = restore_command().parse(args, flags)) return *exit;
  auto options = parse_restore(flags);
  if (!options.is_ok()) return cli::usage_error("snapshot restore", options.status().message());
  auto restored = restore_snapshot(posix_env(), *options);
  if (!restored.is_ok()) {
    std::cerr << "keyval snapshot restore: nothing restored: " << restored.status().to_string() << "\n";
    return exit_refused;
  }
  const SnapshotSummary& backup = restored->backup;
  std::cout << "verified " << options->snapshot_path << ": index " << backup.header.index << ", term "
            << backup.header.term << ", " << backup.keys << " keys, " << backup.sessions << " sessions, "
            << backup.file_bytes << " bytes\n"
            << "restored into " << options->data_directory << " as node " << options->node_id << " of cluster "
            << options->cluster << " (members " << members_text(options->members) << "): snapshot "
            << restored->snapshot_path << ", WAL at term " << backup.header.term << ", LMDB with "
            << restored->keys_loaded << " keys\n"
            << "start it with: keyval node --id " << options->node_id << " --data-dir " << options->data_directory
            << " --peers " << members_text(options->members) << " --cluster " << options->cluster << "\n";
  cli::JsonLine json;
  json.add("file", options->snapshot_path).add("data_dir", options->data_directory).add("id", options->node_id)
      .add("cluster", options->cluster).add("index", backup.header.index).add("term", backup.header.term)
      .add("keys", restored->keys_loaded).add("snapshot", restored->snapshot_path)
      .add("members", members_json(options->members));
  std::cout << json.str() << std::endl;
  return cli::exit_ok;
}

}  // namespace

int snapshot_main(const std::vector<std::string>& args) {
  return cli::dispatch("snapshot",
                       {{"save", "back up the cluster's state into FILE", save_main},
                        {"status", "verify a backup FILE", status_file_main},
                        {"restore", "seed an empty data directory from a backup", restore_main}},
                       args, "expects a subcommand: save, status or restore");
}

}  // namespace keyval::commands
