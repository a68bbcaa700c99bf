// Goal: opening a damaged WAL cuts a torn tail (and reports it) but refuses real corruption, naming file and offset.
// Method: write a WAL, close it, plant damage in its segment files at offsets computed from wal_format.h, then
// Wal::open.
#define BOOST_TEST_MODULE wal_recovery_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "tests/support/print.h"
#include "tests/support/temp_dir.h"

namespace keyval {


namespace {

using testing::file_size;
using testing::make_payload;
using testing::read_file;
using testing::segment_files;
using testing::TempDir;
using testing::write_file;
using wal_format::record_bytes;
using wal_format::record_header_bytes;
using wal_format::segment_header_bytes;

constexpr uint64_t kibibyte = 1ull << 10;
constexpr size_t payload_bytes = 100;  // record_bytes(100) = 136: 4 bytes of padding

std::string wal_dir(const TempDir& temp) {
  return temp.file("wal");
}

void require_ok(const Status& status) {
  BOOST_REQUIRE_MESSAGE(status.is_ok(), status.to_string());
}

std::unique_ptr<Wal> open_wal(const std::string& directory, const WalOptions& options) {
  auto opened = Wal::open(posix_env(), directory, options);
  BOOST_REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

WalOptions segments_of(uint64_t segment_bytes) {
  WalOptions options;
  options.segment_bytes = segment_bytes;
  return options;
}

Entry make_entry(uint64_t index, uint64_t term = 1, size_t bytes = payload_bytes) {
  return Entry{index, term, make_payload(index * 1000 + term, bytes)};
}

// Writes entries 1..count (term 1), syncs and closes.
void write_wal(const std::string& directory, const WalOptions& options, uint64_t count) {
  auto wal = open_wal(directory, options);
  for (uint64_t index = 1; index <= count; ++index) require_ok(wal->append(make_entry(index)));
  require_ok(wal->sync());
}

void check_entries(Wal& wal, uint64_t first, uint64_t last) {
  for (uint64_t index = first; index <= last; ++index) {
    auto read = wal.read(index);
    BOOST_REQUIRE_MESSAGE(read.is_ok(), "read(" << index << "): " << read.status().to_string());
    BOOST_TEST_REQUIRE((read.value() == make_entry(index)), "entry " << index << " differs");
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}


uint32_t load_u32(const uint8_t* in) {
  uint32_t value;
  std::memcpy(&value, in, 4);
  return value;
}

uint64_t load_u64(const uint8_t* in) {
  uint64_t value;
  std::memcpy(&value, in, 8);
  return value;
}

struct RecordSpan {
  uint64_t offset = 0;  // of the header
  uint64_t bytes = 0;   // record_bytes(payload), padding included
  uint8_t type = 0;
  uint64_t index = 0;
};

// The records of a segment file, walked by their length fields from offset 32 to the first all-zero
// header (the preallocated tail) or the end of the file.
std::vector<RecordSpan> records_of(const std::vector<uint8_t>& file) {
  std::vector<RecordSpan> records;
  uint64_t offset = segment_header_bytes;
  while (offset + record_header_bytes <= file.size()) {
    const uint8_t* header = file.data() + offset;
    if (std::all_of(header, header + record_header_bytes, [](uint8_t byte) { return byte == 0; })) break;
    RecordSpan record{offset, record_bytes(load_u32(header + 4)), header[8], load_u64(header + 16)};
    BOOST_REQUIRE(offset + record.bytes <= file.size());
    records.push_back(record);
    offset += record.bytes;
  }
  return records;
}

// The last entry's record and where its batch ends: after the seal its sync wrote.
struct LastBatch {
  RecordSpan entry;
  uint64_t end = 0;
};

LastBatch last_batch(const std::vector<RecordSpan>& records) {
  BOOST_TEST_REQUIRE(records.size() >= 2u);
  BOOST_TEST_REQUIRE(records.back().type == static_cast<uint8_t>(EntryType::seal), "a sync ends with a seal");
  LastBatch batch;
  for (const RecordSpan& record : records) {
    if (record.type == static_cast<uint8_t>(EntryType::log)) batch.entry = record;
  }
  batch.end = records.back().offset + records.back().bytes;
  return batch;
}

void flip_bit(const std::string& path, uint64_t offset, int bit) {
  std::vector<uint8_t> bytes = read_file(path);
  BOOST_REQUIRE(offset < bytes.size());
  bytes[offset] ^= static_cast<uint8_t>(1u << bit);
  write_file(path, bytes);
}

// Removes everything in `directory` (the WAL directory of one iteration) and writes one segment file.
void reset_directory(const std::string& directory, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  write_file(directory + "/" + name, bytes);
}

// Open must fail with Code::corruption, naming `file` and, unless it is empty, `offset` in decimal.
void check_corruption(const std::string& directory, const WalOptions& options, const std::string& file,
                      const std::string& offset) {
  auto opened = Wal::open(posix_env(), directory, options);
  BOOST_TEST_REQUIRE(!opened.is_ok(), "open accepted a corrupt WAL");
  const Status& status = opened.status();
  BOOST_TEST(status.code() == Code::corruption, status.to_string());
  BOOST_TEST(contains(status.message(), file), "message names " << file << ": " << status.message());
  if (!offset.empty()) {
    BOOST_TEST(contains(status.message(), offset), "message names offset " << offset << ": " << status.message());
  }
}

BOOST_AUTO_TEST_SUITE(wal_recovery)

BOOST_AUTO_TEST_CASE(torn_last_record_is_cut_at_every_byte_offset) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir pristine_temp;
  write_wal(wal_dir(pristine_temp), options, count);
  std::vector<std::string> files = segment_files(wal_dir(pristine_temp));
  BOOST_TEST_REQUIRE(files.size() == 1u);
  const std::string name = files[0];
  const std::vector<uint8_t> pristine = read_file(wal_dir(pristine_temp) + "/" + name);
  std::vector<RecordSpan> records = records_of(pristine);
  // The entries, then the seal the sync ended the batch with.
  BOOST_TEST_REQUIRE(records.size() == count + 1);
  const RecordSpan seal = records.back();
  BOOST_TEST_REQUIRE(seal.type == static_cast<uint8_t>(EntryType::seal));
  BOOST_TEST(seal.index == count, "the seal says where the log ends");
  const RecordSpan last = records[count - 1];
  const uint64_t start = last.offset;
  const uint64_t end = seal.offset + seal.bytes;  // the batch's last write: the entry and its seal
  // The layout wal_format.h promises: header, then records back to back from offset 32.
  BOOST_TEST(start == segment_header_bytes + (count - 1) * record_bytes(payload_bytes));
  BOOST_TEST(last.index == count);
  BOOST_TEST(seal.offset == start + last.bytes);

  TempDir work;
  const std::string directory = wal_dir(work);
  uint64_t torn_cases = 0;
  auto nonzero_in = [&](uint64_t from, uint64_t to) {
    return std::any_of(pristine.begin() + static_cast<std::ptrdiff_t>(from),
                       pristine.begin() + static_cast<std::ptrdiff_t>(to), [](uint8_t b) { return b != 0; });
  };
  // A crash tears the batch's write in order: a prefix lands, the rest reads as zeros or is
  // missing. The entry and its seal are lost together, or the seal alone.
  for (uint64_t cut = start; cut < end; ++cut) {
    for (bool shorten : {false, true}) {
      BOOST_TEST_CONTEXT("cut at " << cut << " (entry " << start << ".." << seal.offset << ", seal .." << end
                                   << "), " << (shorten ? "file truncated" : "rest zeroed")) {
        std::vector<uint8_t> damaged;
        if (shorten) {
          damaged.assign(pristine.begin(), pristine.begin() + static_cast<std::ptrdiff_t>(cut));
        } else {
          damaged = pristine;
          std::fill(damaged.begin() + static_cast<std::ptrdiff_t>(cut),
                    damaged.begin() + static_cast<std::ptrdiff_t>(end), 0);
        }
        reset_directory(directory, name, damaged);
        // Zeroing bytes that were zero already (padding, zero payload bytes) leaves a record whole.
        const bool entry_whole = cut >= seal.offset || (!shorten && !nonzero_in(cut, seal.offset));
        const uint64_t torn_start = entry_whole ? seal.offset : start;
        const bool seal_whole = !shorten && !nonzero_in(std::max(cut, seal.offset), end);
        const bool remnant = !seal_whole && nonzero_in(torn_start, std::max(cut, torn_start));
        const uint64_t expected_last = entry_whole ? count : count - 1;
        {
          auto opened = Wal::open(posix_env(), directory, options);
          BOOST_TEST_REQUIRE(opened.is_ok(), opened.status().to_string());
          Wal& wal = *opened.value();
          BOOST_TEST_REQUIRE(wal.last_index() == expected_last);
          const WalOpenReport& report = wal.open_report();
          if (remnant) {
            ++torn_cases;
            BOOST_TEST(report.torn_bytes > 0u);
            BOOST_TEST(report.torn_segment == name);
            BOOST_TEST(report.torn_offset == torn_start);
          } else {
            BOOST_TEST(report.torn_bytes == 0u, "nothing but zeros after the last whole record");
          }
          if (!entry_whole) {
            check_entries(wal, count - 1, count - 1);
            Entry replacement = make_entry(count, 2);
            require_ok(wal.append(replacement));
          }
          require_ok(wal.sync());
        }
        auto wal = open_wal(directory, options);
        BOOST_TEST(wal->open_report().torn_bytes == 0u);
        BOOST_TEST_REQUIRE(wal->last_index() == count);
        check_entries(*wal, 1, count - 1);
        auto read = wal->read(count);
        BOOST_TEST_REQUIRE(read.is_ok(), read.status().to_string());
        BOOST_TEST((read.value() == (entry_whole ? make_entry(count) : make_entry(count, 2))));
      }
    }
  }
  BOOST_TEST(torn_cases > record_bytes(payload_bytes), "most cuts leave a torn record");
}

BOOST_AUTO_TEST_CASE(torn_tail_with_garbage_is_cut) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, count);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  std::vector<uint8_t> bytes = read_file(path);
  const uint64_t end = records_of(bytes).back().offset + records_of(bytes).back().bytes;
  std::vector<uint8_t> garbage = make_payload(77, 100);
  garbage.front() = 0xA5;  // non-zero where the next header would start
  garbage.back() = 0x5A;
  std::copy(garbage.begin(), garbage.end(), bytes.begin() + static_cast<std::ptrdiff_t>(end));
  write_file(path, bytes);
  {
    auto wal = open_wal(wal_dir(temp), options);
    BOOST_TEST(wal->last_index() == count);
    BOOST_TEST(wal->open_report().torn_bytes >= 96u, "the garbage spans 100 bytes");
    BOOST_TEST(wal->open_report().torn_segment == name);
    BOOST_TEST(wal->open_report().torn_offset == end);
    check_entries(*wal, 1, count);
  }
  std::vector<uint8_t> repaired = read_file(path);
  BOOST_TEST_REQUIRE(repaired.size() >= end);
  BOOST_TEST(std::equal(repaired.begin(), repaired.begin() + static_cast<std::ptrdiff_t>(end), bytes.begin()),
             "records kept");
  BOOST_TEST(std::all_of(repaired.begin() + static_cast<std::ptrdiff_t>(end), repaired.end(),
                         [](uint8_t b) { return b == 0; }),
             "the garbage was cut");
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->last_index() == count);
}

BOOST_AUTO_TEST_CASE(all_zero_tail_is_clean) {
  constexpr uint64_t count = 10;
  WalOptions options = segments_of(64 * kibibyte);
  options.preallocate = false;  // the file ends at its last record; the zeros below are new
  TempDir temp;
  write_wal(wal_dir(temp), options, count);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  std::vector<uint8_t> bytes = read_file(path);
  const uint64_t size_before = bytes.size();
  bytes.resize(bytes.size() + 8 * kibibyte, 0);
  write_file(path, bytes);
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->open_report().torn_segment.empty());
  BOOST_TEST(wal->last_index() == count);
  BOOST_TEST(file_size(path) >= size_before);
  check_entries(*wal, 1, count);
  // Appending continues after the last record, not after the zeros.
  require_ok(wal->append(make_entry(count + 1)));
  require_ok(wal->sync());
  wal.reset();
  wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->last_index() == count + 1);
  check_entries(*wal, 1, count + 1);
}

BOOST_AUTO_TEST_CASE(bit_flip_in_middle_record_is_corruption) {
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 10);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  const std::vector<uint8_t> pristine = read_file(path);
  const RecordSpan fifth = records_of(pristine).at(4);
  BOOST_TEST_REQUIRE(fifth.index == 5u);
  for (uint64_t payload_byte : {0ull, 10ull, 99ull}) {
    BOOST_TEST_CONTEXT("payload byte " << payload_byte) {
      write_file(path, pristine);
      flip_bit(path, fifth.offset + record_header_bytes + payload_byte, 3);
      check_corruption(wal_dir(temp), options, name, std::to_string(fifth.offset));
      BOOST_TEST((read_file(path).size() == pristine.size()), "a refused open repairs nothing");
    }
  }
}

// Before seals, a flipped bit in the WAL's last record read exactly like a write torn by a
// crash and was cut silently: an acknowledged entry lost. Its batch's seal now follows it.
BOOST_AUTO_TEST_CASE(bit_flip_in_the_last_synced_entry_is_corruption_not_a_torn_tail) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp), options);
    require_ok(wal->save_metadata(Metadata(2, 1)));  // salvage keeps a WAL only with its term and vote
    require_ok(wal->sync());
    for (uint64_t index = 1; index <= count; ++index) require_ok(wal->append(make_entry(index)));
    require_ok(wal->sync());
  }
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  const std::vector<uint8_t> pristine = read_file(path);
  const LastBatch batch = last_batch(records_of(pristine));
  const RecordSpan last = batch.entry;
  BOOST_TEST_REQUIRE(last.index == count);
  for (uint64_t byte : {0ull, 16ull, record_header_bytes + 0ull, record_header_bytes + 99ull}) {
    BOOST_TEST_CONTEXT("byte " << byte << " of the last entry's record") {
      write_file(path, pristine);
      flip_bit(path, last.offset + byte, 2);
      check_corruption(wal_dir(temp), options, name, std::to_string(last.offset));
      BOOST_TEST((read_file(path).size() == pristine.size()), "a refused open repairs nothing");
    }
  }
  // With salvage (recovery's repair_corruption) it is damage that puts the node in repair,
  // knowing the log held entry `count`, never a torn tail.
  write_file(path, pristine);
  flip_bit(path, last.offset + record_header_bytes + 10, 4);
  WalOptions salvage = options;
  salvage.salvage = true;
  salvage.salvage_directory = temp.path();
  auto wal = open_wal(wal_dir(temp), salvage);
  BOOST_TEST(wal->last_index() == count - 1);
  BOOST_TEST(wal->open_report().damaged);
  BOOST_TEST(wal->open_report().damaged_offset == last.offset);
  BOOST_TEST(wal->open_report().damaged_last_index == count, "the seal says the log reached " << count);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST((wal->metadata() == std::optional<Metadata>(Metadata(2, 1))));
}

// What no sync covered has no seal after it: a damaged record there is a torn write, cut.
BOOST_AUTO_TEST_CASE(damaged_records_after_the_last_seal_are_a_torn_tail) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp), options);
    for (uint64_t index = 1; index <= count; ++index) require_ok(wal->append(make_entry(index)));
    require_ok(wal->sync());
    require_ok(wal->append(make_entry(count + 1)));
    require_ok(wal->append(make_entry(count + 2)));
    require_ok(wal->flush());  // written, never synced: no seal
  }
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  const std::vector<RecordSpan> records = records_of(read_file(path));
  BOOST_TEST_REQUIRE(records.size() == count + 3);
  BOOST_TEST_REQUIRE(records[count].type == static_cast<uint8_t>(EntryType::seal));
  const RecordSpan unsynced = records[count + 1];
  BOOST_TEST_REQUIRE(unsynced.index == count + 1);
  // Torn in order: entry count + 1 half written, nothing of count + 2.
  std::vector<uint8_t> bytes = read_file(path);
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(unsynced.offset + 60),
            bytes.begin() + static_cast<std::ptrdiff_t>(records.back().offset + records.back().bytes), 0);
  write_file(path, bytes);
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->last_index() == count);
  BOOST_TEST(wal->open_report().torn_offset == unsynced.offset);
  BOOST_TEST(wal->open_report().torn_bytes > 0u);
  check_entries(*wal, 1, count);
}

// A metadata record (term, vote) is restated by its batch's seal, which starts in the next
// 4 KiB block: a flipped bit in the record, or the whole block unreadable, keeps the vote.
BOOST_AUTO_TEST_CASE(the_seal_keeps_the_vote_when_its_metadata_record_is_damaged) {
  const WalOptions options = segments_of(64 * kibibyte);
  const Metadata before(3, 1);
  const Metadata vote(7, 2);
  for (bool whole_block : {false, true}) {
    BOOST_TEST_CONTEXT((whole_block ? "the metadata record's block overwritten" : "a bit flipped in the record")) {
      TempDir temp;
      {
        auto wal = open_wal(wal_dir(temp), options);
        require_ok(wal->save_metadata(before));
        for (uint64_t index = 1; index <= 5; ++index) require_ok(wal->append(make_entry(index)));
        require_ok(wal->sync());
        require_ok(wal->save_metadata(vote));
        require_ok(wal->append(make_entry(6)));
        require_ok(wal->sync());
      }
      const std::string name = segment_files(wal_dir(temp)).at(0);
      const std::string path = wal_dir(temp) + "/" + name;
      const std::vector<RecordSpan> records = records_of(read_file(path));
      const RecordSpan* record = nullptr;
      const RecordSpan* copy = nullptr;
      for (const RecordSpan& span : records) {
        if (span.type == static_cast<uint8_t>(EntryType::metadata)) record = &span;
        // The seal after it whose payload is larger than an empty seal's or a padding's count.
        if (record != nullptr && span.type == static_cast<uint8_t>(EntryType::seal) && span.offset > record->offset &&
            span.bytes > record_bytes(8)) {
          std::vector<uint8_t> bytes = read_file(path);
          if (load_u32(bytes.data() + span.offset + record_header_bytes) > 0) copy = &span;
        }
      }
      BOOST_TEST_REQUIRE(record != nullptr);
      BOOST_TEST_REQUIRE(copy != nullptr, "the batch that voted ends with a seal holding the metadata");
      constexpr uint64_t block = 4096;
      BOOST_TEST((record->offset + record->bytes - 1) / block < copy->offset / block,
                 "the copy starts in a later block than the record ends in");
      if (whole_block) {
        std::vector<uint8_t> bytes = read_file(path);
        const uint64_t from = record->offset / block * block;
        std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(std::max<uint64_t>(from, record->offset)),
                  bytes.begin() + static_cast<std::ptrdiff_t>(from + block), 0xEE);
        write_file(path, bytes);
      } else {
        flip_bit(path, record->offset + record_header_bytes + 3, 6);
      }
      check_corruption(wal_dir(temp), options, name, std::to_string(record->offset));
      WalOptions salvage = options;
      salvage.salvage = true;
      salvage.salvage_directory = temp.path();
      auto wal = open_wal(wal_dir(temp), salvage);
      BOOST_TEST(wal->open_report().damaged);
      BOOST_TEST_REQUIRE(wal->open_report().damaged_metadata.has_value(), "the vote was lost");
      BOOST_TEST(wal->open_report().damaged_metadata->current_term == vote.current_term);
      BOOST_TEST(wal->open_report().damaged_metadata->voted_for == vote.voted_for);
      BOOST_TEST(wal->open_report().damaged_last_index == 6u);
      BOOST_TEST((wal->metadata() == std::optional<Metadata>(before)), "the WAL kept up to the damage");
    }
  }
}

// A seal in the middle of the log restates where the log ends; one that disagrees with the
// records before it was not written there by this WAL.
BOOST_AUTO_TEST_CASE(a_seal_naming_another_last_index_is_corruption) {
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp), options);
    for (uint64_t index = 1; index <= 4; ++index) require_ok(wal->append(make_entry(index)));
    require_ok(wal->sync());
    require_ok(wal->append(make_entry(5)));
    require_ok(wal->sync());
  }
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  std::vector<uint8_t> bytes = read_file(path);
  const std::vector<RecordSpan> records = records_of(bytes);
  BOOST_TEST_REQUIRE(records.size() == 7u);
  const RecordSpan seal = records[4];
  BOOST_TEST_REQUIRE(seal.type == static_cast<uint8_t>(EntryType::seal));
  BOOST_TEST_REQUIRE(seal.index == 4u);
  // Re-encoded with a valid checksum but the wrong index.
  wal_format::encode_record(wal_format::SegmentCodec{wal_format::segment_salt(1)}, EntryType::seal, 3, 0, nullptr, 0,
                            bytes.data() + seal.offset);
  write_file(path, bytes);
  auto opened = Wal::open(posix_env(), wal_dir(temp), options);
  BOOST_TEST_REQUIRE(!opened.is_ok());
  BOOST_TEST(opened.status().code() == Code::corruption);
  BOOST_TEST(contains(opened.status().message(), "seal says the log ends at index 3"), opened.status().message());
}

BOOST_AUTO_TEST_CASE(bit_flip_in_closed_segment_is_corruption) {
  const WalOptions options = segments_of(4 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 100);
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_TEST_REQUIRE(files.size() >= 3u);
  const std::string path = wal_dir(temp) + "/" + files[0];
  const std::vector<uint8_t> pristine = read_file(path);
  const RecordSpan last = records_of(pristine).back();
  // Its last record: nothing follows it in this segment, yet it cannot be a torn write.
  flip_bit(path, last.offset + record_header_bytes + 50, 0);
  check_corruption(wal_dir(temp), options, files[0], std::to_string(last.offset));
  BOOST_TEST((read_file(path).size() == pristine.size()), "a refused open repairs nothing");
  BOOST_TEST((segment_files(wal_dir(temp)) == files));
}

BOOST_AUTO_TEST_CASE(bit_flip_in_header_field_is_corruption) {
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 10);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  const std::vector<uint8_t> pristine = read_file(path);
  const RecordSpan fifth = records_of(pristine).at(4);
  struct Field {
    const char* name;
    uint64_t offset;
    int bit;
  };
  const Field fields[] = {{"index", 16, 0},        {"index high byte", 23, 7},   {"term", 24, 1}, {"crc", 0, 5},
                          {"payload bytes", 4, 0}, {"payload bytes x256", 5, 0}, {"type", 8, 1},  {"reserved", 11, 2}};
  for (const Field& field : fields) {
    BOOST_TEST_CONTEXT("flipped bit " << field.bit << " of the " << field.name << " field") {
      write_file(path, pristine);
      flip_bit(path, fifth.offset + field.offset, field.bit);
      check_corruption(wal_dir(temp), options, name, std::to_string(fifth.offset));
    }
  }
}

BOOST_AUTO_TEST_CASE(stale_record_from_other_segment_never_validates) {
  const WalOptions options = segments_of(4 * kibibyte);
  TempDir temp;
  {
    auto wal = open_wal(wal_dir(temp), options);
    for (uint64_t index = 1; index <= 40; ++index) require_ok(wal->append(make_entry(index)));
    // The log now ends at 5, so segment 1's record for entry 6 carries exactly the next index:
    // only its segment-bound CRC tells it from a real append.
    require_ok(wal->truncate_suffix_after(5));
    require_ok(wal->sync());
  }
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_TEST_REQUIRE(files.size() >= 2u);
  const std::vector<uint8_t> first = read_file(wal_dir(temp) + "/" + files.front());
  const RecordSpan stale = records_of(first).at(5);
  BOOST_TEST_REQUIRE(stale.index == 6u);
  const std::string last_path = wal_dir(temp) + "/" + files.back();
  const std::vector<uint8_t> last_pristine = read_file(last_path);
  const RecordSpan tail = records_of(last_pristine).back();
  const uint64_t end = tail.offset + tail.bytes;
  BOOST_TEST_REQUIRE(end + stale.bytes <= last_pristine.size());
  const std::vector<uint8_t> stale_bytes(first.begin() + static_cast<std::ptrdiff_t>(stale.offset),
                                         first.begin() + static_cast<std::ptrdiff_t>(stale.offset + stale.bytes));

  // Control: the same record with the CRC of the last segment is accepted as entry 6, so the
  // position and index are right and only the CRC binding rejects the stale copy below.
  {
    uint64_t segment_id = 0;
    uint64_t first_index = 0;
    BOOST_TEST_REQUIRE(wal_format::parse_segment_file_name(files.back(), &segment_id, &first_index));
    std::vector<uint8_t> control = last_pristine;
    const uint8_t* payload = stale_bytes.data() + record_header_bytes;
    wal_format::encode_record(wal_format::SegmentCodec{wal_format::segment_salt(segment_id)}, EntryType::log, 6, 1, payload, payload_bytes,
                              control.data() + end);
    write_file(last_path, control);
    auto wal = open_wal(wal_dir(temp), options);
    BOOST_TEST_REQUIRE(wal->last_index() == 6u, "control record accepted");
    BOOST_TEST(wal->open_report().torn_bytes == 0u);
  }

  std::vector<uint8_t> planted = last_pristine;
  std::copy(stale_bytes.begin(), stale_bytes.end(), planted.begin() + static_cast<std::ptrdiff_t>(end));
  write_file(last_path, planted);
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->last_index() == 5u, "the stale record is not an entry");
  auto read = wal->read(6);
  BOOST_TEST(!read.is_ok());
  BOOST_TEST(read.status().code() == Code::not_found, read.status().to_string());
  BOOST_TEST(wal->open_report().torn_bytes > 0u, "the stale bytes were reported as a torn tail");
  BOOST_TEST(wal->open_report().torn_segment == files.back());
  BOOST_TEST(wal->open_report().torn_offset == end);
  check_entries(*wal, 1, 5);
}

BOOST_AUTO_TEST_CASE(bad_segment_header_is_corruption) {
  const WalOptions options = segments_of(4 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 100);
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_TEST_REQUIRE(files.size() >= 3u);
  const std::string path = wal_dir(temp) + "/" + files[0];
  const std::vector<uint8_t> pristine = read_file(path);
  // Magic, version, header CRC, segment id, first index: each damaged alone.
  for (uint64_t offset : {0ull, 7ull, 8ull, 12ull, 16ull, 24ull}) {
    BOOST_TEST_CONTEXT("header byte " << offset) {
      write_file(path, pristine);
      flip_bit(path, offset, 1);
      auto opened = Wal::open(posix_env(), wal_dir(temp), options);
      BOOST_TEST_REQUIRE(!opened.is_ok());
      // A damaged version field may read as a version this build does not know; all else is corruption.
      if (offset == 8) {
        BOOST_TEST((opened.status().code() == Code::corruption || opened.status().code() == Code::unsupported),
                   opened.status().to_string());
      } else {
        BOOST_TEST(opened.status().code() == Code::corruption, opened.status().to_string());
      }
      BOOST_TEST(contains(opened.status().message(), files[0]), opened.status().message());
    }
  }
  BOOST_TEST((segment_files(wal_dir(temp)) == files), "a refused open removes nothing");
}

BOOST_AUTO_TEST_CASE(missing_middle_segment_is_corruption) {
  const WalOptions options = segments_of(4 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 100);
  std::vector<std::string> files = segment_files(wal_dir(temp));
  BOOST_TEST_REQUIRE(files.size() == 4u);
  std::filesystem::remove(wal_dir(temp) + "/" + files[1]);
  auto opened = Wal::open(posix_env(), wal_dir(temp), options);
  BOOST_TEST_REQUIRE(!opened.is_ok(), "open accepted a WAL with a missing segment");
  const std::string& message = opened.status().message();
  BOOST_TEST(opened.status().code() == Code::corruption, opened.status().to_string());
  BOOST_TEST((contains(message, files[0]) || contains(message, files[2])), "message names the gap: " << message);
  BOOST_TEST((segment_files(wal_dir(temp)) == std::vector<std::string>{files[0], files[2], files[3]}));
}

BOOST_AUTO_TEST_CASE(leftover_tmp_file_is_removed) {
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, 10);
  // A crash while preparing segment 2 leaves its unfinished file behind (FORMAT.md: <id>.wal.tmp).
  const std::string leftover = wal_dir(temp) + "/0000000000000002.wal.tmp";
  write_file(leftover, std::vector<uint8_t>(4 * kibibyte, 0));
  {
    auto wal = open_wal(wal_dir(temp), options);
    BOOST_TEST(!std::filesystem::exists(leftover), "the unfinished segment was removed");
    BOOST_TEST(wal->open_report().segments_removed == 1u);
    BOOST_TEST(wal->last_index() == 10u);
    check_entries(*wal, 1, 10);
    require_ok(wal->append(make_entry(11)));
    require_ok(wal->sync());
  }
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().segments_removed == 0u);
  BOOST_TEST(wal->last_index() == 11u);
}

BOOST_AUTO_TEST_CASE(read_only_open_reports_torn_tail_without_cutting) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, count);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  std::vector<uint8_t> bytes = read_file(path);
  const LastBatch batch = last_batch(records_of(bytes));
  const RecordSpan last = batch.entry;
  // Tear the last write: the second half of its entry and its seal never reached the disk.
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(last.offset + last.bytes / 2),
            bytes.begin() + static_cast<std::ptrdiff_t>(batch.end), 0);
  write_file(path, bytes);
  // A leftover .wal.tmp stays too: read-only repairs nothing.
  const std::string leftover = wal_dir(temp) + "/0000000000000002.wal.tmp";
  write_file(leftover, std::vector<uint8_t>(4 * kibibyte, 0));
  std::vector<std::string> listing_before;
  for (const auto& item : std::filesystem::directory_iterator(wal_dir(temp))) {
    listing_before.push_back(item.path().filename().string());
  }
  std::sort(listing_before.begin(), listing_before.end());

  WalOptions read_only = options;
  read_only.read_only = true;
  for (int round = 0; round < 2; ++round) {  // twice: the first did not repair anything
    auto wal = open_wal(wal_dir(temp), read_only);
    BOOST_TEST(wal->last_index() == count - 1);
    BOOST_TEST(wal->open_report().torn_bytes > 0u);
    BOOST_TEST(wal->open_report().torn_segment == name);
    BOOST_TEST(wal->open_report().torn_offset == last.offset);
    check_entries(*wal, 1, count - 1);
  }
  BOOST_TEST((read_file(path) == bytes), "the segment file is unchanged byte for byte");
  std::vector<std::string> listing_after;
  for (const auto& item : std::filesystem::directory_iterator(wal_dir(temp))) {
    listing_after.push_back(item.path().filename().string());
  }
  std::sort(listing_after.begin(), listing_after.end());
  BOOST_TEST(listing_after == listing_before, "nothing created or removed");
}

BOOST_AUTO_TEST_CASE(reopen_after_cut_is_clean) {
  constexpr uint64_t count = 10;
  const WalOptions options = segments_of(64 * kibibyte);
  TempDir temp;
  write_wal(wal_dir(temp), options, count);
  const std::string name = segment_files(wal_dir(temp)).at(0);
  const std::string path = wal_dir(temp) + "/" + name;
  std::vector<uint8_t> bytes = read_file(path);
  const LastBatch batch = last_batch(records_of(bytes));
  const RecordSpan last = batch.entry;
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(last.offset + 40),
            bytes.begin() + static_cast<std::ptrdiff_t>(batch.end), 0);
  write_file(path, bytes);
  {
    auto wal = open_wal(wal_dir(temp), options);
    BOOST_TEST(wal->open_report().torn_bytes > 0u);
    BOOST_TEST(wal->last_index() == count - 1);
  }
  auto wal = open_wal(wal_dir(temp), options);
  BOOST_TEST(wal->open_report().torn_bytes == 0u);
  BOOST_TEST(wal->open_report().torn_segment.empty());
  BOOST_TEST(wal->last_index() == count - 1);
  check_entries(*wal, 1, count - 1);
  std::vector<uint8_t> repaired = read_file(path);
  BOOST_TEST(std::all_of(repaired.begin() + static_cast<std::ptrdiff_t>(last.offset), repaired.end(),
                         [](uint8_t b) { return b == 0; }),
             "the torn record is gone from the file");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace keyval
