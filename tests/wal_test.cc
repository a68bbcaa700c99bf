// Goal: the WAL keeps entries, metadata and snapshot metadata exactly, through rotation, truncation, compaction and
// reopen. Method: real segment files in temporary directories through posix_env(), reopened to show durability; a
// forked process for the lock.
#define BOOST_TEST_MODULE wal_test
#include <boost/test/unit_test.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "storage/codec.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "tests/support/forwarding_env.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval {


namespace {

using testing::make_payload;
using testing::segment_files;
using testing::TempDir;

constexpr uint64_t kibibyte = 1ull << 10;
constexpr uint64_t mebibyte = 1ull << 20;

std::string wal_dir(const TempDir& temp) {
  return temp.file("wal");
}

void require_ok(const Status& status) {
  BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string());
}

std::unique_ptr<Wal> open_wal(const std::string& directory, const WalOptions& options = {}) {
  auto opened = Wal::open(posix_env(), directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

WalOptions small_segments() {
  WalOptions options;
  options.segment_bytes = 4 * kibibyte;
  return options;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE_MESSAGE(out.good(), "cannot write " << path);
}

Entry make_entry(uint64_t index, uint64_t term, size_t payload_bytes = 40) {
  return Entry{index, term, make_payload(index * 1000 + term, payload_bytes)};
}

std::vector<Entry> make_entries(uint64_t first, uint64_t count, uint64_t term, size_t payload_bytes = 40) {
  std::vector<Entry> entries;
  for (uint64_t index = first; index < first + count; ++index)
    entries.push_back(make_entry(index, term, payload_bytes));
  return entries;
}

// The entries of `entries` (which starts at index 1) from `first_index` on.
std::vector<Entry> from_index(const std::vector<Entry>& entries, uint64_t first_index) {
  BOOST_REQUIRE(first_index >= 1 && first_index <= entries.size() + 1);
  return std::vector<Entry>(entries.begin() + static_cast<std::ptrdiff_t>(first_index - 1), entries.end());
}

void append_all(Wal& wal, const std::vector<Entry>& entries) {
  for (const Entry& entry : entries) require_ok(wal.append(entry));
}

Entry read_entry(Wal& wal, uint64_t index) {
  auto read = wal.read(index);
  BOOST_REQUIRE_MESSAGE(read.is_ok(), "read(" << index << "): " << read.status().to_string());
  return std::move(read).value();
}

// Every entry of `expected` reads back exactly, one by one and as one range.
void check_entries(Wal& wal, const std::vector<Entry>& expected) {
  for (const Entry& entry : expected) {
    Entry read = read_entry(wal, entry.index);
    BOOST_TEST_REQUIRE((read == entry), "entry " << entry.index << " differs");
  }
  if (expected.empty()) return;
  auto range = wal.read_range(expected.front().index, expected.back().index);
  BOOST_REQUIRE_MESSAGE(range.is_ok(), range.status().to_string());
  BOOST_TEST_REQUIRE(range.value().size() == expected.size());
  BOOST_TEST((range.value() == expected));
}

void check_not_found(Wal& wal, uint64_t index) {
  auto read = wal.read(index);
  BOOST_TEST(!read.is_ok(), "read(" << index << ") should fail");
  if (!read.is_ok()) BOOST_TEST(read.status().code() == Code::not_found, read.status().to_string());
}


bool file_exists(const std::string& directory, const std::string& name) {
  return std::filesystem::exists(directory + "/" + name);
}

SnapshotMetadata make_snapshot(uint64_t index, uint64_t term) {
  SnapshotMetadata snapshot;
  snapshot.last_included_index = index;
  snapshot.last_included_term = term;
  snapshot.configuration = {Member{1, "10.0.0.1:7001"}, Member{2, "10.0.0.2:7001"}, Member{3, "10.0.0.3:7001"}};
  return snapshot;
}

// Passes everything to posix_env() and records each write to a segment file: where, how
// long, and whether it was all zeros (a record never is: its header holds a length and CRC).
class WriteLogEnv final : public testing::ForwardingEnv {
 public:
  struct Write {
    std::string path;
    uint64_t offset = 0;
    uint64_t bytes = 0;
    bool zeros = false;
  };
  std::vector<Write> writes;

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_.open_file(path, mode));
    return std::unique_ptr<File>(new LoggedFile(std::move(file), writes));
  }

 private:
  class LoggedFile final : public testing::ForwardingFile {
   public:
    LoggedFile(std::unique_ptr<File> file, std::vector<Write>& writes) : ForwardingFile(std::move(file)), writes_(writes) {}
    Status write_at(uint64_t offset, const uint8_t* source, size_t bytes) override {
      const bool zeros = std::all_of(source, source + bytes, [](uint8_t byte) { return byte == 0; });
      writes_.push_back(Write{file_->path(), offset, bytes, zeros});
      return file_->write_at(offset, source, bytes);
    }

   private:
    std::vector<Write>& writes_;
  };
};

BOOST_AUTO_TEST_SUITE(wal)

// A seal's padding must be zero to its last byte: a non-zero byte at the start, inside the
// word-at-a-time part or in the tail past the last whole word is corruption, named as such.
BOOST_AUTO_TEST_CASE(a_seal_with_any_non_zero_padding_byte_is_corrupt) {
  const std::vector<uint8_t> metadata = encode_metadata(Metadata(7, 3));
  for (size_t padded : {metadata.size() + 4, metadata.size() + 4 + 13, size_t{4096}}) {
    const std::vector<uint8_t> seal = wal_format::encode_seal_payload(metadata, padded);
    BOOST_REQUIRE_EQUAL(seal.size(), padded);
    auto decoded = wal_format::decode_seal_payload(seal.data(), seal.size(), "seal");
    BOOST_REQUIRE(decoded.is_ok());
    BOOST_REQUIRE(decoded->has_value());
    BOOST_TEST((*decoded)->current_term == 7u);
    const size_t padding_start = 4 + metadata.size();
    for (size_t at = padding_start; at < seal.size(); ++at) {
      std::vector<uint8_t> damaged = seal;
      damaged[at] = 0x40;
      auto refused = wal_format::decode_seal_payload(damaged.data(), damaged.size(), "seal");
      BOOST_TEST_REQUIRE(!refused.is_ok(), "a non-zero padding byte at offset " << at << " of " << padded << " passed");
      BOOST_TEST(refused.status().to_string().find("seal padding is not zero") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_wal_has_no_entries) {
  TempDir temp;
  for (int round = 0; round < 2; ++round) {  // brand new, then reopened
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(wal->first_index() == 1u);
    BOOST_TEST(wal->last_index() == 0u);
    BOOST_TEST(wal->next_index() == 1u);
    BOOST_TEST(!wal->metadata().has_value());
    BOOST_TEST(!wal->snapshot().has_value());
    BOOST_TEST(wal->open_report().torn_bytes == 0u);
    check_not_found(*wal, 0);
    check_not_found(*wal, 1);
  }
}

BOOST_AUTO_TEST_CASE(append_and_read_back) {
  TempDir temp;
  auto wal = open_wal(wal_dir(temp));
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 20; ++index) entries.push_back(make_entry(index, 1 + index / 7, index * 13 % 97));
  append_all(*wal, entries);
  BOOST_TEST(wal->first_index() == 1u);
  BOOST_TEST(wal->last_index() == 20u);
  BOOST_TEST(wal->next_index() == 21u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(append_batch_and_read_range) {
  TempDir temp;
  auto wal = open_wal(wal_dir(temp));
  std::vector<Entry> entries = make_entries(1, 50, 3);
  require_ok(wal->append_batch(entries));
  BOOST_TEST(wal->last_index() == 50u);
  auto middle = wal->read_range(10, 20);
  BOOST_REQUIRE_MESSAGE(middle.is_ok(), middle.status().to_string());
  std::vector<Entry> expected(entries.begin() + 9, entries.begin() + 20);
  BOOST_TEST_REQUIRE(middle.value().size() == 11u);
  BOOST_TEST((middle.value() == expected));
  auto single = wal->read_range(50, 50);
  BOOST_REQUIRE_MESSAGE(single.is_ok(), single.status().to_string());
  BOOST_TEST_REQUIRE(single.value().size() == 1u);
  BOOST_TEST((single.value()[0] == entries.back()));
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(entries_survive_reopen_after_sync) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 100, 2, 300);
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, entries);
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->first_index() == 1u);
  BOOST_TEST(wal->last_index() == 100u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(unsynced_entries_after_sync_point_are_not_required) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 20, 1);
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, std::vector<Entry>(entries.begin(), entries.begin() + 10));
    require_ok(wal->sync());
    append_all(*wal, std::vector<Entry>(entries.begin() + 10, entries.end()));
  }  // closed without sync: 11..20 may or may not be there
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() >= 10u);
  BOOST_TEST_REQUIRE(wal->last_index() <= 20u);
  // Whatever survived is an exact prefix of what was appended.
  check_entries(*wal,
                std::vector<Entry>(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(wal->last_index())));
}

BOOST_AUTO_TEST_CASE(rotation_creates_several_segments) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 200, 1, 200);
  uint64_t segments = 0;
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    append_all(*wal, entries);
    require_ok(wal->sync());
    segments = wal->segment_count();
    BOOST_TEST(segments > 3u);
    check_entries(*wal, entries);
  }
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_TEST(files.size() == segments);
  // Names carry consecutive ids from 1; the first segment starts at index 1; first indexes ascend.
  uint64_t previous_first_index = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    uint64_t id = 0;
    uint64_t first_index = 0;
    BOOST_TEST_REQUIRE(wal_format::parse_segment_file_name(files[i], &id, &first_index), files[i]);
    BOOST_TEST(id == i + 1);
    BOOST_TEST(first_index > previous_first_index);
    if (i == 0) BOOST_TEST(first_index == 1u);
    previous_first_index = first_index;
  }
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->segment_count() == segments);
  BOOST_TEST(wal->open_report().segments == segments);
  BOOST_TEST(wal->last_index() == 200u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(reopen_continues_appending_in_last_segment) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 30, 1);
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, std::vector<Entry>(entries.begin(), entries.begin() + 10));
    require_ok(wal->sync());
  }
  std::vector<std::string> files_before = segment_files(wal_dir(temp));
  BOOST_TEST_REQUIRE(files_before.size() == 1u);
  for (int round = 1; round <= 2; ++round) {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(wal->next_index() == 10u * round + 1);
    append_all(*wal, std::vector<Entry>(entries.begin() + 10 * round, entries.begin() + 10 * (round + 1)));
    require_ok(wal->sync());
  }
  BOOST_TEST(segment_files(wal_dir(temp)) == files_before, "no new segment for a reopen");
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->segment_count() == 1u);
  BOOST_TEST(wal->last_index() == 30u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(append_with_wrong_index_is_rejected) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 4, 1);
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, std::vector<Entry>(entries.begin(), entries.begin() + 3));
    for (uint64_t wrong : {0ull, 1ull, 3ull, 5ull, 100ull}) {
      Status status = wal->append(make_entry(wrong, 1));
      BOOST_TEST(status.code() == Code::invalid_argument, "append(" << wrong << "): " << status.to_string());
      BOOST_TEST(wal->last_index() == 3u);
    }
    require_ok(wal->sync());
  }
  {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(wal->last_index() == 3u);
    BOOST_TEST(wal->open_report().records == 4u, "only the three accepted entries (and their seal) reached the file");
    check_entries(*wal, std::vector<Entry>(entries.begin(), entries.begin() + 3));
    require_ok(wal->append(entries[3]));  // the right index still works
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() == 4u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(metadata_round_trips_and_survives_reopen) {
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(!wal->metadata().has_value());
    require_ok(wal->save_metadata(Metadata{3, 2}));
    BOOST_TEST_REQUIRE(wal->metadata().has_value());
    BOOST_TEST((*wal->metadata() == Metadata{3, 2}));
    append_all(*wal, make_entries(1, 5, 3));
    require_ok(wal->save_metadata(Metadata{4, 0}));
    BOOST_TEST((*wal->metadata() == Metadata{4, 0}));
    require_ok(wal->sync());
  }
  {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST_REQUIRE(wal->metadata().has_value());
    BOOST_TEST((*wal->metadata() == Metadata{4, 0}), "the latest metadata wins");
    BOOST_TEST(wal->last_index() == 5u);
    require_ok(wal->save_metadata(Metadata{9, 7}));
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST_REQUIRE(wal->metadata().has_value());
  BOOST_TEST((*wal->metadata() == Metadata{9, 7}));
  check_entries(*wal, make_entries(1, 5, 3));
}

BOOST_AUTO_TEST_CASE(latest_metadata_survives_rotation_and_segment_drop) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 300, 7, 100);
  std::vector<std::string> files_before;
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    require_ok(wal->save_metadata(Metadata{6, 1}));
    require_ok(wal->save_metadata(Metadata{7, 3}));  // both records land in the first segment only
    append_all(*wal, entries);
    require_ok(wal->sync());
    files_before = segment_files(wal_dir(temp));
    BOOST_TEST_REQUIRE(files_before.size() > 3u);
    auto removed = wal->drop_segments_through(200);
    BOOST_REQUIRE_MESSAGE(removed.is_ok(), removed.status().to_string());
    BOOST_TEST(removed.value() >= 2u);
    BOOST_TEST((*wal->metadata() == Metadata{7, 3}));
  }
  BOOST_TEST(!file_exists(wal_dir(temp), files_before[0]), "the segment that held the metadata records is gone");
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->first_index() > 1u);
  BOOST_TEST(wal->first_index() <= 201u);
  BOOST_TEST(wal->last_index() == 300u);
  BOOST_TEST_REQUIRE(wal->metadata().has_value(), "metadata was carried over into later segments");
  BOOST_TEST((*wal->metadata() == Metadata{7, 3}));
  check_entries(*wal, from_index(entries, wal->first_index()));
}

// Simulator seed 12662: a power cut right after a rotation, before the metadata and snapshot
// records it carried into the new segment were synced, leaves that segment with no records. The
// next start appends to it; dropping the older segments must not remove the only copies.
BOOST_AUTO_TEST_CASE(metadata_and_snapshot_survive_a_drop_after_a_crash_that_lost_the_carried_copies) {
  TempDir temp;
  const std::vector<Entry> entries = make_entries(1, 200, 7, 100);
  const SnapshotMetadata snapshot{10, 7, {}};
  uint64_t first_segment_last = 0;
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    require_ok(wal->save_metadata(Metadata{7, 3}));
    size_t next = 0;
    for (; next < 10; ++next) require_ok(wal->append(entries[next]));
    require_ok(wal->save_snapshot(snapshot));
    require_ok(wal->sync());
    // Appends until one rotates; the Wal is then dropped unsynced: the crash.
    const uint64_t segments = wal->segment_count();
    while (wal->segment_count() == segments) {
      first_segment_last = entries[next].index - 1;
      require_ok(wal->append(entries[next++]));
    }
  }
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    BOOST_REQUIRE_EQUAL(wal->last_index(), first_segment_last);
    append_all(*wal, from_index(make_entries(1, first_segment_last + 5, 7, 100), first_segment_last + 1));
    require_ok(wal->sync());
    const uint64_t segments = wal->segment_count();
    auto removed = wal->drop_segments_through(first_segment_last);
    BOOST_REQUIRE_MESSAGE(removed.is_ok(), removed.status().to_string());
    BOOST_REQUIRE_EQUAL(removed.value(), segments - 1);  // all but the one the crash left without records
  }
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->first_index() == first_segment_last + 1);
  BOOST_TEST(wal->last_index() == first_segment_last + 5);
  BOOST_TEST_REQUIRE(wal->metadata().has_value(), "the term and vote outlive the segment that held them");
  BOOST_TEST((*wal->metadata() == Metadata{7, 3}));
  BOOST_TEST_REQUIRE(wal->snapshot().has_value(), "so does the snapshot record");
  BOOST_TEST((*wal->snapshot() == snapshot));
}

// Simulator seed 20541: a follower whose WAL had dropped the segments up to its first entry
// installed a leader's snapshot ending just before it, in a newer term. The entry could not be
// compared, and was kept: a log of term 24 after a snapshot of term 25.
BOOST_AUTO_TEST_CASE(a_snapshot_before_the_retained_log_discards_it_when_the_log_has_an_older_term) {
  for (uint64_t snapshot_term : {25u, 24u}) {
    BOOST_TEST_CONTEXT("snapshot term " << snapshot_term) {
      TempDir temp;
      uint64_t first = 0;
      {
        auto wal = open_wal(wal_dir(temp), small_segments());
        require_ok(wal->save_metadata(Metadata{25, 0}));
        append_all(*wal, make_entries(1, 100, 24, 100));
        require_ok(wal->sync());
        auto removed = wal->drop_segments_through(50);
        BOOST_REQUIRE(removed.is_ok() && removed.value() > 0);
        first = wal->first_index();
        BOOST_REQUIRE(first > 2u);
        require_ok(wal->save_snapshot(SnapshotMetadata{first - 2, snapshot_term, {}}));
        require_ok(wal->sync());
        if (snapshot_term == 25) {
          // Entry `first` (term 24) cannot follow an entry of term 25: the whole log goes (§7).
          BOOST_TEST(wal->first_index() == first - 1);
          BOOST_TEST(wal->last_index() == first - 2);
        } else {
          BOOST_TEST(wal->first_index() == first, "an entry of the snapshot's term or later continues it");
          BOOST_TEST(wal->last_index() == 100u);
        }
      }
      auto wal = open_wal(wal_dir(temp), small_segments());
      BOOST_TEST(wal->first_index() == (snapshot_term == 25 ? first - 1 : first));
      BOOST_TEST(wal->last_index() == (snapshot_term == 25 ? first - 2 : 100u));
    }
  }
}

// Simulator seed 27818: a rotation left the active segment with no entries and a header saying
// the log goes on at 44; a snapshot at 42 of a newer term then discarded the log (the WAL's next
// entry is 43, still in that segment). Once a checkpoint dropped the older segments, a replay
// started from that header could not learn the discard from the snapshot record alone (with no
// entry before it in the segment, nothing to compare), and the node saw damage that was not
// there ("seal says the log ends at index 42, but the records before it end at 43") and
// repaired from its peers, losing its vote while it did.
BOOST_AUTO_TEST_CASE(a_log_discarded_below_the_active_segments_first_index_survives_dropping_the_older_segments) {
  TempDir temp;
  WalOptions options;
  options.segment_bytes = 64 * kibibyte;  // room for a seal's block of padding and ten entries
  uint64_t segment_first = 0;
  {
    auto wal = open_wal(wal_dir(temp), options);
    require_ok(wal->save_metadata(Metadata{2, 0}));
    append_all(*wal, make_entries(1, 40, 1, 100));
    require_ok(wal->sync());
    // Rotate with no entry after it: the new active segment starts at 41 and holds only records.
    const uint64_t segments = wal->segment_count();
    while (wal->segment_count() == segments) require_ok(wal->save_metadata(Metadata{2, 0}));
    segment_first = wal->last_index() + 1;
    BOOST_REQUIRE(segment_first == 41u);
    // Entry 30 has term 1, the snapshot term 2: the whole log goes, the next entry is 31.
    require_ok(wal->save_snapshot(SnapshotMetadata{30, 2, {}}));
    BOOST_TEST(wal->first_index() == 31u);
    BOOST_TEST(wal->last_index() == 30u);
    append_all(*wal, make_entries(31, 10, 2, 100));
    require_ok(wal->sync());
    BOOST_REQUIRE(wal->segment_count() == segments + 1);
    // A checkpoint at 40 drops every segment before the one that starts at 41.
    auto removed = wal->drop_segments_through(40);
    BOOST_REQUIRE(removed.is_ok());
    BOOST_REQUIRE(removed.value() == segments);
    BOOST_REQUIRE(wal->segment_count() == 1u);
  }
  auto reopened = Wal::open(posix_env(), wal_dir(temp), options);
  BOOST_REQUIRE_MESSAGE(reopened.is_ok(), reopened.status().to_string());
  Wal& wal = *reopened.value();
  BOOST_TEST(wal.first_index() == 31u);
  BOOST_TEST(wal.last_index() == 40u);
  BOOST_TEST_REQUIRE(wal.snapshot().has_value());
  BOOST_TEST(wal.snapshot()->last_included_index == 30u);
  check_entries(wal, make_entries(31, 10, 2, 100));
}

BOOST_AUTO_TEST_CASE(snapshot_metadata_round_trips) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 10, 2);
  SnapshotMetadata snapshot = make_snapshot(5, 2);
  {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(!wal->snapshot().has_value());
    append_all(*wal, entries);
    require_ok(wal->save_snapshot(snapshot));
    BOOST_TEST_REQUIRE(wal->snapshot().has_value());
    BOOST_TEST((*wal->snapshot() == snapshot));
    // The log holds entry 5 with term 2: it continues the snapshot and is kept.
    BOOST_TEST(wal->last_index() == 10u);
    check_entries(*wal, entries);
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST_REQUIRE(wal->snapshot().has_value());
  BOOST_TEST((*wal->snapshot() == snapshot));
  BOOST_TEST(wal->last_index() == 10u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(snapshot_beyond_log_resets_log) {
  TempDir temp;
  SnapshotMetadata snapshot = make_snapshot(20, 4);
  Entry next = make_entry(21, 4);
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, make_entries(1, 10, 2));
    require_ok(wal->save_snapshot(snapshot));
    BOOST_TEST(wal->last_index() == 20u);
    BOOST_TEST(wal->next_index() == 21u);
    BOOST_TEST(wal->first_index() == 21u);
    check_not_found(*wal, 5);
    check_not_found(*wal, 10);
    require_ok(wal->append(next));
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST_REQUIRE(wal->snapshot().has_value());
  BOOST_TEST((*wal->snapshot() == snapshot));
  BOOST_TEST(wal->first_index() == 21u);
  BOOST_TEST(wal->last_index() == 21u);
  check_not_found(*wal, 5);
  check_entries(*wal, {next});
}

BOOST_AUTO_TEST_CASE(snapshot_with_other_term_at_its_index_resets_log) {
  TempDir temp;
  SnapshotMetadata snapshot = make_snapshot(5, 3);  // the log has entry 5 with term 2
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, make_entries(1, 10, 2));
    require_ok(wal->save_snapshot(snapshot));
    BOOST_TEST(wal->first_index() == 6u);
    BOOST_TEST(wal->last_index() == 5u);
    check_not_found(*wal, 6);
    require_ok(wal->append(make_entry(6, 3)));
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->first_index() == 6u);
  BOOST_TEST(wal->last_index() == 6u);
  check_entries(*wal, {make_entry(6, 3)});
}

BOOST_AUTO_TEST_CASE(truncate_suffix_after_discards_later_entries) {
  TempDir temp;
  std::vector<Entry> expected = make_entries(1, 6, 1);
  std::vector<Entry> replacement = make_entries(7, 3, 2, 64);
  expected.insert(expected.end(), replacement.begin(), replacement.end());
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, make_entries(1, 10, 1));
    require_ok(wal->truncate_suffix_after(6));
    BOOST_TEST(wal->last_index() == 6u);
    BOOST_TEST(wal->next_index() == 7u);
    check_not_found(*wal, 7);
    check_not_found(*wal, 10);
    append_all(*wal, replacement);
    BOOST_TEST(wal->last_index() == 9u);
    check_entries(*wal, expected);
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() == 9u);
  check_not_found(*wal, 10);
  check_entries(*wal, expected);
}

BOOST_AUTO_TEST_CASE(truncate_suffix_across_segment_boundaries) {
  TempDir temp;
  std::vector<Entry> expected = make_entries(1, 20, 1, 200);
  std::vector<Entry> replacement = make_entries(21, 20, 2, 200);
  expected.insert(expected.end(), replacement.begin(), replacement.end());
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    append_all(*wal, make_entries(1, 100, 1, 200));
    BOOST_TEST_REQUIRE(wal->segment_count() >= 4u);
    require_ok(wal->truncate_suffix_after(20));  // inside the second segment
    BOOST_TEST(wal->last_index() == 20u);
    append_all(*wal, replacement);
    check_entries(*wal, expected);
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->first_index() == 1u);
  BOOST_TEST(wal->last_index() == 40u);
  check_not_found(*wal, 41);
  check_entries(*wal, expected);
  // And the log goes on from there.
  require_ok(wal->append(make_entry(41, 2, 200)));
  require_ok(wal->sync());
  wal.reset();
  wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->last_index() == 41u);
  check_entries(*wal, {make_entry(41, 2, 200)});
}

BOOST_AUTO_TEST_CASE(metadata_written_after_cut_point_survives_truncation) {
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp));
    append_all(*wal, make_entries(1, 10, 4));
    require_ok(wal->save_metadata(Metadata{5, 2}));
    require_ok(wal->truncate_suffix_after(7));
    BOOST_TEST((*wal->metadata() == Metadata{5, 2}));
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST_REQUIRE(wal->metadata().has_value());
  BOOST_TEST((*wal->metadata() == Metadata{5, 2}));
  BOOST_TEST(wal->last_index() == 7u);
  check_entries(*wal, make_entries(1, 7, 4));
}

BOOST_AUTO_TEST_CASE(drop_segments_through_removes_whole_old_segments) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 200, 1, 200);
  uint64_t first_index_after_drop = 0;
  std::vector<std::string> files_after;
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    append_all(*wal, entries);
    require_ok(wal->sync());
    std::vector<std::string> files_before = segment_files(wal_dir(temp));
    BOOST_TEST_REQUIRE(files_before.size() > 5u);
    uint64_t count_before = wal->segment_count();

    auto removed = wal->drop_segments_through(50);
    BOOST_REQUIRE_MESSAGE(removed.is_ok(), removed.status().to_string());
    BOOST_TEST(removed.value() >= 1u);
    BOOST_TEST(wal->segment_count() == count_before - removed.value());
    first_index_after_drop = wal->first_index();
    BOOST_TEST(first_index_after_drop > 1u);
    BOOST_TEST(first_index_after_drop <= 51u, "no entry after 50 may be dropped");
    check_not_found(*wal, first_index_after_drop - 1);
    BOOST_TEST(wal->last_index() == 200u);
    check_entries(*wal, from_index(entries, first_index_after_drop));
    files_after = segment_files(wal_dir(temp));
    BOOST_TEST(files_after.size() == files_before.size() - removed.value());
    // The oldest files went, the rest stayed.
    for (size_t i = 0; i < files_before.size(); ++i) {
      BOOST_TEST(file_exists(wal_dir(temp), files_before[i]) == (i >= removed.value()), files_before[i]);
    }
    // Dropping again through the same index removes nothing.
    auto again = wal->drop_segments_through(50);
    BOOST_REQUIRE_MESSAGE(again.is_ok(), again.status().to_string());
    BOOST_TEST(again.value() == 0u);
  }
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    BOOST_TEST(wal->first_index() == first_index_after_drop);
    BOOST_TEST(wal->last_index() == 200u);
    BOOST_TEST(segment_files(wal_dir(temp)) == files_after);
    check_entries(*wal, from_index(entries, first_index_after_drop));

    // Through an index past the end: every segment but the active one goes.
    std::string active = segment_files(wal_dir(temp)).back();
    auto removed = wal->drop_segments_through(1000);
    BOOST_REQUIRE_MESSAGE(removed.is_ok(), removed.status().to_string());
    BOOST_TEST(wal->segment_count() == 1u);
    BOOST_TEST((segment_files(wal_dir(temp)) == std::vector<std::string>{active}), "the active segment stays");
    BOOST_TEST(wal->last_index() == 200u);
    BOOST_TEST(wal->first_index() > first_index_after_drop);
    BOOST_TEST(wal->first_index() <= 200u);
    check_entries(*wal, from_index(entries, wal->first_index()));
    require_ok(wal->append(make_entry(201, 1, 200)));
    require_ok(wal->sync());
    first_index_after_drop = wal->first_index();
  }
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->first_index() == first_index_after_drop);
  BOOST_TEST(wal->last_index() == 201u);
  check_entries(*wal, {make_entry(200, 1, 200), make_entry(201, 1, 200)});
}

BOOST_AUTO_TEST_CASE(drop_segments_across_truncation) {
  TempDir temp;
  std::vector<Entry> expected = make_entries(1, 30, 1, 200);
  std::vector<Entry> replacement = make_entries(31, 90, 2, 200);
  expected.insert(expected.end(), replacement.begin(), replacement.end());
  uint64_t first_index_after_drop = 0;
  {
    auto wal = open_wal(wal_dir(temp), small_segments());
    append_all(*wal, make_entries(1, 100, 1, 200));
    require_ok(wal->truncate_suffix_after(30));
    append_all(*wal, replacement);
    require_ok(wal->sync());
    BOOST_TEST_REQUIRE(wal->segment_count() > 6u);
    auto removed = wal->drop_segments_through(60);
    BOOST_REQUIRE_MESSAGE(removed.is_ok(), removed.status().to_string());
    BOOST_TEST(removed.value() >= 1u);
    first_index_after_drop = wal->first_index();
    BOOST_TEST(first_index_after_drop > 1u);
    BOOST_TEST(first_index_after_drop <= 61u, "no entry after 60 may be dropped");
    BOOST_TEST(wal->last_index() == 120u);
    check_entries(*wal, from_index(expected, first_index_after_drop));
  }
  auto wal = open_wal(wal_dir(temp), small_segments());
  BOOST_TEST(wal->first_index() == first_index_after_drop);
  BOOST_TEST(wal->last_index() == 120u);
  check_entries(*wal, from_index(expected, first_index_after_drop));
}

BOOST_AUTO_TEST_CASE(entries_larger_than_write_buffer) {
  TempDir temp;
  WalOptions options;
  options.segment_bytes = 1 * mebibyte;
  options.write_buffer_bytes = 64 * kibibyte;
  std::vector<Entry> entries = {make_entry(1, 1, 100), make_entry(2, 1, 3 * mebibyte), make_entry(3, 1, 100),
                                make_entry(4, 1, 3 * mebibyte + 5), make_entry(5, 1, 7)};
  {
    auto wal = open_wal(wal_dir(temp), options);
    append_all(*wal, entries);
    check_entries(*wal, entries);
    require_ok(wal->sync());
    check_entries(*wal, entries);
  }
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->last_index() == 5u);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_CASE(replay_from_index_visits_in_order) {
  TempDir temp;
  std::vector<Entry> entries = make_entries(1, 60, 1, 200);
  auto wal = open_wal(wal_dir(temp), small_segments());
  append_all(*wal, std::vector<Entry>(entries.begin(), entries.begin() + 50));
  require_ok(wal->sync());
  append_all(*wal, std::vector<Entry>(entries.begin() + 50, entries.end()));  // still buffered
  BOOST_TEST_REQUIRE(wal->segment_count() > 2u);

  std::vector<Entry> visited;
  require_ok(wal->replay(10, [&](const EntryView& view) {
    visited.push_back(
        Entry{view.index, view.term, std::vector<uint8_t>(view.payload, view.payload + view.payload_bytes)});
    return Status::ok();
  }));
  BOOST_TEST_REQUIRE(visited.size() == 51u);
  BOOST_TEST((visited == std::vector<Entry>(entries.begin() + 9, entries.end())));

  // A visitor's error stops the replay and comes back unchanged.
  std::vector<uint64_t> seen;
  Status stopped = wal->replay(10, [&](const EntryView& view) {
    seen.push_back(view.index);
    return view.index == 20 ? Status::io_error("visitor stops at 20") : Status::ok();
  });
  BOOST_TEST(stopped.code() == Code::io_error);
  BOOST_TEST(stopped.message() == "visitor stops at 20");
  BOOST_TEST_REQUIRE(seen.size() == 11u);
  BOOST_TEST(seen.front() == 10u);
  BOOST_TEST(seen.back() == 20u);

  // From past the end: nothing to visit.
  uint64_t calls = 0;
  require_ok(wal->replay(61, [&](const EntryView&) {
    ++calls;
    return Status::ok();
  }));
  BOOST_TEST(calls == 0u);
}

BOOST_AUTO_TEST_CASE(read_of_missing_index_is_not_found) {
  TempDir temp;
  auto wal = open_wal(wal_dir(temp));
  check_not_found(*wal, 1);
  append_all(*wal, make_entries(1, 5, 1));
  check_not_found(*wal, 0);
  check_not_found(*wal, 6);
  check_not_found(*wal, 1000);
  check_not_found(*wal, UINT64_MAX);
  auto range = wal->read_range(7, 9);
  BOOST_TEST((!range.is_ok() || range.value().empty()), "a range past the end holds no entries");
}

// Child process: opens `directory` and exits 0 when refused with Code::locked,
// 1 when the open succeeded, 2 for any other failure.
int open_in_child(const std::string& directory) {
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    auto opened = Wal::open(posix_env(), directory);
    int code = opened.is_ok() ? 1 : (opened.status().code() == Code::locked ? 0 : 2);
    ::_exit(code);  // no Boost.Test teardown, no static destructors in the child
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

BOOST_AUTO_TEST_CASE(second_open_of_same_directory_is_refused) {
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp));
    auto second = Wal::open(posix_env(), wal_dir(temp));
    BOOST_TEST(!second.is_ok(), "second open in the same process");
    BOOST_TEST(second.status().code() == Code::locked, second.status().to_string());
    BOOST_TEST(open_in_child(wal_dir(temp)) == 0, "another process is refused with Code::locked");
  }
  // Released when the owner closes.
  BOOST_TEST(open_in_child(wal_dir(temp)) == 1, "another process opens once the owner has closed");
  auto wal = Wal::open(posix_env(), wal_dir(temp));
  BOOST_TEST(wal.is_ok(), wal.status().to_string());
}

BOOST_AUTO_TEST_CASE(synced_index_tracks_sync) {
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp));
    BOOST_TEST(wal->synced_index() == 0u);
    append_all(*wal, make_entries(1, 5, 1));
    BOOST_TEST(wal->synced_index() == 0u, "buffered appends are not durable yet");
    require_ok(wal->flush());
    BOOST_TEST(wal->synced_index() == 0u, "written is not synced");
    require_ok(wal->sync());
    BOOST_TEST(wal->synced_index() == 5u);
    append_all(*wal, make_entries(6, 3, 1));
    BOOST_TEST(wal->synced_index() == 5u);
    require_ok(wal->truncate_suffix_after(3));
    BOOST_TEST(wal->synced_index() <= 3u, "never beyond the end of the log");
    require_ok(wal->sync());
    BOOST_TEST(wal->synced_index() == 3u);
    append_all(*wal, make_entries(4, 2, 2));
    require_ok(wal->sync());
    BOOST_TEST(wal->synced_index() == 5u);
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() == 5u);
  BOOST_TEST(wal->synced_index() == 5u, "what open found on disk is durable");
}

BOOST_AUTO_TEST_CASE(unsynced_appends_are_readable_before_flush) {
  TempDir temp;
  auto wal = open_wal(wal_dir(temp));  // 1 MiB write buffer: nothing below reaches the file
  std::vector<Entry> first = make_entries(1, 10, 1, 100);
  append_all(*wal, first);
  check_entries(*wal, first);
  // Mixed: some entries written out, later ones only buffered.
  require_ok(wal->flush());
  std::vector<Entry> second = make_entries(11, 10, 1, 100);
  append_all(*wal, second);
  std::vector<Entry> all = first;
  all.insert(all.end(), second.begin(), second.end());
  check_entries(*wal, all);
  uint64_t replayed = 0;
  require_ok(wal->replay(1, [&](const EntryView& view) {
    BOOST_TEST((Entry{view.index, view.term, std::vector<uint8_t>(view.payload, view.payload + view.payload_bytes)} ==
                all[view.index - 1]));
    ++replayed;
    return Status::ok();
  }));
  BOOST_TEST(replayed == 20u);
}

BOOST_AUTO_TEST_CASE(zero_length_payload_round_trips) {
  TempDir temp;
  std::vector<Entry> entries = {Entry{1, 1, {}}, make_entry(2, 1, 5), Entry{3, 2, {}}};
  {
    auto wal = open_wal(wal_dir(temp));
    require_ok(wal->append(entries[0]));
    require_ok(wal->append(entries[1]));
    require_ok(wal->append(3, 2, nullptr, 0));
    check_entries(*wal, entries);
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() == 3u);
  check_entries(*wal, entries);
  BOOST_TEST(read_entry(*wal, 3).payload().empty());
}

BOOST_AUTO_TEST_CASE(many_small_entries) {
  TempDir temp;
  constexpr uint64_t count = 100000;
  constexpr size_t payload_bytes = 16;
  auto sample_check = [&](Wal& wal) {
    for (uint64_t index = 1; index <= count; index += 997) {
      BOOST_TEST_REQUIRE((read_entry(wal, index) == make_entry(index, 1 + index / 10000, payload_bytes)));
    }
    BOOST_TEST((read_entry(wal, count) == make_entry(count, 1 + count / 10000, payload_bytes)));
    uint64_t visited = 0;
    uint64_t expected_index = 1;
    require_ok(wal.replay(1, [&](const EntryView& view) {
      if (view.index != expected_index++ || view.payload_bytes != payload_bytes) {
        return Status::corruption("replay out of order at " + std::to_string(view.index));
      }
      ++visited;
      return Status::ok();
    }));
    BOOST_TEST(visited == count);
  };
  {
    auto wal = open_wal(wal_dir(temp));
    for (uint64_t index = 1; index <= count; ++index) {
      Entry entry = make_entry(index, 1 + index / 10000, payload_bytes);
      Status status = wal->append(entry);
      if (!status.is_ok()) BOOST_FAIL("append " << index << ": " << status.to_string());
    }
    require_ok(wal->sync());
    BOOST_TEST(wal->last_index() == count);
    sample_check(*wal);
  }
  auto wal = open_wal(wal_dir(temp));
  BOOST_TEST(wal->last_index() == count);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  sample_check(*wal);
}

BOOST_AUTO_TEST_CASE(configuration_records_are_log_entries_that_keep_their_type) {
  TempDir temp;
  const std::string directory = wal_dir(temp);
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 6; ++index) {
    Entry entry{index, 1, std::vector<uint8_t>(index, static_cast<uint8_t>(index))};
    if (index == 1 || index == 4) entry.type = EntryType::configuration;  // opaque bytes to the WAL
    entries.push_back(entry);
  }
  {
    auto wal = open_wal(directory);
    BOOST_REQUIRE(wal->append_batch(entries).is_ok());
    BOOST_REQUIRE(wal->sync().is_ok());
  }
  auto wal = open_wal(directory);
  BOOST_TEST(wal->last_index() == 6u);
  for (const Entry& entry : entries) {
    auto read = wal->read(entry.index);
    BOOST_REQUIRE(read.is_ok());
    BOOST_TEST((read.value() == entry));
  }
  auto range = wal->read_range(1, 6);
  BOOST_REQUIRE(range.is_ok());
  BOOST_TEST((range.value() == entries));
  // A truncation cuts a configuration record like any entry; the next append takes its index.
  BOOST_REQUIRE(wal->truncate_suffix_after(3).is_ok());
  Entry replacement{4, 2, {9}};
  BOOST_REQUIRE(wal->append(replacement).is_ok());
  auto read = wal->read(4);
  BOOST_REQUIRE(read.is_ok());
  BOOST_TEST((read->type == EntryType::log));
}

// On ext4 a block allocated but never written is an unwritten extent, and an fdatasync after
// the first write into one commits the journal too. So the WAL writes zeros ahead of its
// records (WalOptions::zero_ahead_bytes): at every write of records the zeros already reach
// half of zero_ahead_bytes beyond them, and no zero ever lands where a record was written.
BOOST_AUTO_TEST_CASE(zeros_are_written_ahead_of_the_records_and_never_over_them) {
  TempDir temp;
  WriteLogEnv env;
  WalOptions options;
  options.segment_bytes = 256 * kibibyte;
  options.write_buffer_bytes = 2 * kibibyte;
  options.zero_ahead_bytes = 32 * kibibyte;
  std::vector<Entry> entries = make_entries(1, 3000, 1, 200);
  {
    auto opened = Wal::open(env, wal_dir(temp), options);
    BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    for (const Entry& entry : entries) {
      require_ok((*opened)->append(entry));
      if (entry.index % 7 == 0) require_ok((*opened)->sync());
    }
    require_ok((*opened)->sync());
    BOOST_TEST((*opened)->segment_count() > 2u, "the entries span several segments");
  }
  std::map<std::string, uint64_t> zeroed_end;
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> records;
  uint64_t record_writes = 0;
  for (const WriteLogEnv::Write& write : env.writes) {
    if (write.path.size() < 4 || write.path.compare(write.path.size() - 4, 4, ".wal") != 0) continue;
    const uint64_t end = write.offset + write.bytes;
    if (write.zeros) {
      for (const auto& [from, to] : records[write.path]) {
        BOOST_TEST_REQUIRE((end <= from || write.offset >= to),
                           "zeros at " << write.offset << ".." << end << " of " << write.path << " over records at "
                                       << from << ".." << to);
      }
      zeroed_end[write.path] = std::max(zeroed_end[write.path], end);
      continue;
    }
    ++record_writes;
    records[write.path].emplace_back(write.offset, end);
    const uint64_t wanted = std::min<uint64_t>(end + options.zero_ahead_bytes / 2, options.segment_bytes);
    BOOST_TEST_REQUIRE(zeroed_end[write.path] >= wanted,
                       "records written to " << end << " of " << write.path << " with zeros only to "
                                             << zeroed_end[write.path]);
  }
  BOOST_TEST(record_writes > 100u);
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  check_entries(*wal, entries);
}

// zero_ahead_bytes 0: the records alone are written.
BOOST_AUTO_TEST_CASE(no_zeros_are_written_when_zero_ahead_is_off) {
  TempDir temp;
  WriteLogEnv env;
  WalOptions options;
  options.zero_ahead_bytes = 0;
  options.preallocate = false;  // no fallback that extends a file with zeros
  {
    auto opened = Wal::open(env, wal_dir(temp), options);
    BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    for (const Entry& entry : make_entries(1, 50, 1)) require_ok((*opened)->append(entry));
    require_ok((*opened)->sync());
  }
  for (const WriteLogEnv::Write& write : env.writes) {
    BOOST_TEST(!(write.zeros && write.offset > 0), "zeros written at " << write.offset << " of " << write.path);
  }
}

// A version 3 record is the entry's frame as it is, with the CRC slot filled: the bytes that
// go to the followers and into LMDB (storage/entry_frame.h).
BOOST_AUTO_TEST_CASE(a_log_record_is_the_entrys_frame_with_its_crc_slot_filled) {
  TempDir temp;
  const Entry entry = make_entry(1, 4, 45);
  {
    WalOptions options;
    options.preallocate = false;
    auto wal = open_wal(wal_dir(temp), options);
    require_ok(wal->append(entry));
    require_ok(wal->sync());
  }
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_REQUIRE(files.size() == 1u);
  const std::vector<uint8_t> bytes = read_file_bytes(wal_dir(temp) + "/" + files[0]);
  const std::vector<uint8_t>& frame = entry.frame();
  // The frame from byte 4 on (the CRC slot is the record's own) somewhere after the header.
  auto at = std::search(bytes.begin(), bytes.end(), frame.begin() + 4, frame.end());
  BOOST_REQUIRE(at != bytes.end());
  const size_t offset = static_cast<size_t>(at - bytes.begin()) - 4;
  wal_format::RecordHeader header;
  const wal_format::SegmentCodec codec{wal_format::segment_salt(1)};
  BOOST_TEST((wal_format::check_record(bytes.data() + offset, bytes.size() - offset, codec, &header) ==
              wal_format::RecordCheck::valid));
  BOOST_TEST(header.index == 1u);
  // A payload byte changed at rest fails the record, though its header still checks.
  std::vector<uint8_t> damaged(bytes.begin() + offset, bytes.end());
  damaged[wal_format::record_header_bytes + 3] ^= 0x10;
  BOOST_TEST((wal_format::check_record(damaged.data(), damaged.size(), codec, &header) ==
              wal_format::RecordCheck::invalid));
}

// Segments written before entry frames (version 2: the record CRC over header and payload)
// still open; appends to such a segment keep its format, and the next segment is version 3.
BOOST_AUTO_TEST_CASE(a_version_2_segment_reads_and_takes_appends_in_its_own_format) {
  TempDir temp;
  std::filesystem::create_directories(wal_dir(temp));
  const wal_format::SegmentCodec old_codec{wal_format::segment_salt(1), wal_format::format_version_sealed};
  std::vector<uint8_t> file(wal_format::segment_header_bytes);
  wal_format::encode_segment_header(wal_format::SegmentHeader{1, 1, wal_format::format_version_sealed}, file.data());
  auto add = [&](EntryType type, uint64_t index, uint64_t term, const std::vector<uint8_t>& payload) {
    const size_t at = file.size();
    file.resize(at + wal_format::record_bytes(payload.size()));
    wal_format::encode_record(old_codec, type, index, term, payload.data(), payload.size(), file.data() + at);
  };
  add(EntryType::metadata, 0, 2, encode_metadata(Metadata{2, 1}));
  std::vector<Entry> entries = make_entries(1, 3, 2);
  for (const Entry& entry : entries) add(EntryType::log, entry.index, entry.term, entry.payload().to_vector());
  add(EntryType::seal, 3, 2, {});
  write_file_bytes(wal_dir(temp) + "/" + wal_format::segment_file_name(1, 1), file);

  WalOptions options = small_segments();
  options.preallocate = false;
  {
    auto wal = open_wal(wal_dir(temp), options);
    BOOST_TEST(wal->last_index() == 3u);
    BOOST_TEST(wal->metadata()->current_term == 2u);
    check_entries(*wal, entries);
    entries.push_back(make_entry(4, 2));
    require_ok(wal->append(entries.back()));
    require_ok(wal->sync());
  }
  const std::vector<uint8_t> bytes = read_file_bytes(wal_dir(temp) + "/" + wal_format::segment_file_name(1, 1));
  wal_format::RecordHeader header;
  size_t offset = wal_format::segment_header_bytes;
  bool found = false;
  while (offset + wal_format::record_header_bytes <= bytes.size()) {
    if (wal_format::check_record(bytes.data() + offset, bytes.size() - offset, old_codec, &header) !=
        wal_format::RecordCheck::valid) {
      break;
    }
    if (header.type == EntryType::log && header.index == 4) found = true;
    offset += wal_format::record_bytes(header.payload_bytes);
  }
  BOOST_TEST(found, "entry 4 was written into the version 2 segment in version 2's format");
  {
    auto wal = open_wal(wal_dir(temp), options);
    check_entries(*wal, entries);
    // Enough to rotate: the new segment is version 3, and both read back.
    for (uint64_t index = 5; index <= 200; ++index) {
      entries.push_back(make_entry(index, 2));
      require_ok(wal->append(entries.back()));
    }
    require_ok(wal->sync());
    BOOST_TEST(wal->segment_count() > 1u);
  }
  const std::vector<std::string> files = segment_files(wal_dir(temp));
  const std::vector<uint8_t> second = read_file_bytes(wal_dir(temp) + "/" + files[1]);
  auto decoded = wal_format::decode_segment_header(second.data(), second.size(), files[1]);
  BOOST_REQUIRE(decoded.is_ok());
  BOOST_TEST(decoded->version == wal_format::format_version);
  auto wal = open_wal(wal_dir(temp), options);
  check_entries(*wal, entries);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace keyval
