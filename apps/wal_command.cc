// keyval wal dump|verify: inspect a WAL directory without changing it.
//
// verify exit codes: 0 clean; 1 only a torn tail (bytes reported); 3 corruption
// (file and offset named); 2 bad usage, an I/O error, or a directory that holds no WAL
// (neither segment files nor a `wal/` folder: a typo must not read as "clean"). Its last
// line is JSON. Given a node's data directory (one holding `wal/`), verify checks the WAL
// and the LMDB store together (storage/recovery.h, verify_data_directory), read-only, and
// dump lists the records of its `wal/`.
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "storage/env.h"
#include "storage/recovery.h"
#include "storage/types.h"
#include "storage/wal.h"

namespace keyval::commands {
namespace {

constexpr int exit_torn_tail = 1;
constexpr int exit_corruption = 3;

int print_failure(const cli::JsonLine& base, const Status& status) {
  bool corrupt = status.code() == Code::corruption;
  std::cerr << "keyval wal: " << status.to_string() << "\n";
  cli::JsonLine line = base;
  line.add("status", corrupt ? "corruption" : "error").add("error", status.to_string());
  std::cout << line.str() << std::endl;
  return corrupt ? exit_corruption : cli::exit_usage;
}

// A WAL opened read-only from a directory without segments is empty, not an error; for the
// tools it is one, since the directory given was most likely not the one meant.
Status require_segments(const std::string& directory, Wal& wal) {
  if (wal.open_report().segments > 0) return Status::ok();
  return Status::invalid_argument(directory +
                                  " holds no WAL: no segment files and no wal/ folder (give a node's data "
                                  "directory or its wal/ folder)");
}

cli::JsonLine summary(const std::string& directory, Wal& wal) {
  const WalOpenReport& report = wal.open_report();
  bool empty = wal.last_index() < wal.first_index();
  cli::JsonLine line;
  line.add("directory", directory)
      .add("segments", report.segments)
      .add("records", report.records)
      .add("bytes", report.bytes)
      .add("entries", empty ? uint64_t{0} : wal.last_index() - wal.first_index() + 1)
      .add("first_index", empty ? uint64_t{0} : wal.first_index())
      .add("last_index", wal.last_index())
      .add("current_term", wal.metadata() ? wal.metadata()->current_term : 0)
      .add("voted_for", wal.metadata() ? wal.metadata()->voted_for : 0)
      .add("snapshot_index", wal.snapshot() ? wal.snapshot()->last_included_index : 0)
      .add("torn_bytes", report.torn_bytes)
      .add("torn_segment", report.torn_segment)
      .add("torn_offset", report.torn_offset);
  return line;
}

cli::JsonLine data_directory_summary(const std::string& directory, const DataDirectoryReport& report) {
  const WalOpenReport& wal = report.wal;
  bool empty = report.wal_last_index < report.wal_first_index;
  cli::JsonLine line;
  line.add("directory", directory)
      .add_bool("data_directory", true)
      .add("segments", wal.segments)
      .add("records", wal.records)
      .add("bytes", wal.bytes)
      .add("entries", empty ? uint64_t{0} : report.wal_last_index - report.wal_first_index + 1)
      .add("first_index", empty ? uint64_t{0} : report.wal_first_index)
      .add("last_index", report.wal_last_index)
      .add("current_term", report.metadata ? report.metadata->current_term : 0)
      .add("voted_for", report.metadata ? report.metadata->voted_for : 0)
      .add("snapshot_index", report.snapshot ? report.snapshot->last_included_index : 0)
      .add("torn_bytes", wal.torn_bytes)
      .add("torn_segment", wal.torn_segment)
      .add("torn_offset", wal.torn_offset)
      .add("lmdb_first_index", report.lmdb_first_index)
      .add("lmdb_last_index", report.lmdb_last_index)
      .add("lmdb_entries_checked", report.lmdb_entries_checked)
      .add("lmdb_indexed_index", report.indexed_index)
      .add("compared_index", report.compared_index);
  return line;
}

// DIR holds wal/ (and usually lmdb/): check both and that they agree.
int verify_data_directory_command(const std::string& directory) {
  auto report = verify_data_directory(posix_env(), directory);
  if (!report.is_ok()) return print_failure(cli::JsonLine().add("directory", directory), report.status());
  cli::JsonLine line = data_directory_summary(directory, *report);
  const WalOpenReport& wal = report->wal;
  if (wal.torn_bytes > 0) {
    std::cout << "torn tail: " << wal.torn_bytes << " bytes at segment " << wal.torn_segment << " offset "
              << wal.torn_offset << " (a write cut short by a crash; recovery cuts it)\n";
    std::cout << line.add("status", "torn").str() << std::endl;
    return exit_torn_tail;
  }
  std::cout << "clean: " << wal.records << " WAL records in " << wal.segments << " segments; "
            << report->lmdb_entries_checked << " LMDB entries checked";
  if (report->compared_index != 0) std::cout << "; LMDB and WAL agree at index " << report->compared_index;
  std::cout << "\n" << line.add("status", "clean").str() << std::endl;
  return cli::exit_ok;
}

int verify(const std::vector<std::string>& args) {
  const cli::Command command = cli::Command("wal verify",
                                            "check every record of a WAL directory, or of a data directory's WAL "
                                            "and LMDB together; the last line is JSON", "DIR")
                                   .footer("exit: 0 clean, 1 torn tail, 2 usage / I/O error / no WAL, 3 corruption");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error("wal verify", "expects one directory: keyval wal verify DIR");
  const std::string directory = flags.positional()[0];
  if (posix_env().exists(join_path(directory, "wal"))) return verify_data_directory_command(directory);
  WalOptions options;
  options.read_only = true;
  auto wal = Wal::open(posix_env(), directory, options);
  if (!wal.is_ok()) return print_failure(cli::JsonLine().add("directory", directory), wal.status());
  Status has_segments = require_segments(directory, **wal);
  if (!has_segments.is_ok()) return print_failure(cli::JsonLine().add("directory", directory), has_segments);
  const WalOpenReport& report = (*wal)->open_report();
  cli::JsonLine line = summary(directory, **wal);
  if (report.torn_bytes > 0) {
    std::cout << "torn tail: " << report.torn_bytes << " bytes at segment " << report.torn_segment << " offset "
              << report.torn_offset << " (a write cut short by a crash; a writable open cuts it)\n";
    std::cout << line.add("status", "torn").str() << std::endl;
    return exit_torn_tail;
  }
  std::cout << "clean: " << report.records << " records in " << report.segments << " segments\n";
  std::cout << line.add("status", "clean").str() << std::endl;
  return cli::exit_ok;
}

int dump(const std::vector<std::string>& args) {
  const cli::Command command = cli::Command("wal dump", "one line per WAL record; the last line is JSON", "DIR")
                                   .value("from", "0", "first index listed")
                                   .value("to", "the last", "last index listed");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error("wal dump", "expects one directory: keyval wal dump DIR");
  auto from = flags.get_u64("from", 0);
  auto to = flags.get_u64("to", UINT64_MAX);
  if (!from.is_ok()) return cli::usage_error("wal dump", from.status().message());
  if (!to.is_ok()) return cli::usage_error("wal dump", to.status().message());
  std::string directory = flags.positional()[0];
  if (posix_env().exists(join_path(directory, "wal"))) {
    directory = join_path(directory, "wal");
    std::cerr << "keyval wal dump: " << flags.positional()[0] << " is a data directory; listing " << directory
              << "\n";
  }
  WalOptions options;
  options.read_only = true;
  auto print = [&](const WalRecordInfo& record) {
    if (record.index < *from || record.index > *to) return;
    std::cout << "segment=" << record.segment << " offset=" << record.offset << " type=" << entry_type_name(record.type)
              << " index=" << record.index << " term=" << record.term << " payload_bytes=" << record.payload_bytes
              << "\n";
  };
  auto wal = Wal::open(posix_env(), directory, options, print);
  if (!wal.is_ok()) return print_failure(cli::JsonLine().add("directory", directory), wal.status());
  Status has_segments = require_segments(directory, **wal);
  if (!has_segments.is_ok()) return print_failure(cli::JsonLine().add("directory", directory), has_segments);
  std::cout << summary(directory, **wal).add("status", (*wal)->open_report().torn_bytes > 0 ? "torn" : "clean").str()
            << std::endl;
  return cli::exit_ok;
}

}  // namespace

int wal_main(const std::vector<std::string>& args) {
  return cli::dispatch("wal",
                       {{"dump", "one line per WAL record", dump},
                        {"verify", "check every record (a data directory: WAL + LMDB)", verify}},
                       args, "expects a subcommand: dump or verify");
}

}  // namespace keyval::commands
