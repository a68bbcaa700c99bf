// Payloads, the ledger of acknowledged entries, and the parent's check of a data directory
// (crash_ledger.h).
#include "tests/support/crash_ledger.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>

#include "storage/env.h"
#include "tests/support/temp_dir.h"

namespace keyval::testing {

constexpr size_t payload_header_bytes = 16;  // u32 cycle, u32 writer, u64 seq
constexpr size_t payload_filler_bytes_max = 240;

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x =
      a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^ c * 0x94D049BB133111EBull;
  x ^= x >> 31;
  x *= 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 32);
}

std::vector<uint8_t> payload_for(uint64_t cycle, uint64_t writer, uint64_t seq) {
  uint64_t key = mix(cycle, writer, seq);
  std::vector<uint8_t> payload(payload_header_bytes);
  uint32_t cycle32 = static_cast<uint32_t>(cycle);
  uint32_t writer32 = static_cast<uint32_t>(writer);
  std::memcpy(payload.data(), &cycle32, 4);
  std::memcpy(payload.data() + 4, &writer32, 4);
  std::memcpy(payload.data() + 8, &seq, 8);
  std::vector<uint8_t> filler = make_payload(key, key % payload_filler_bytes_max);
  payload.insert(payload.end(), filler.begin(), filler.end());
  return payload;
}

std::optional<Identity> identity_of(const uint8_t* payload, size_t bytes) {
  if (bytes < payload_header_bytes) return std::nullopt;
  uint32_t cycle32, writer32;
  Identity identity;
  std::memcpy(&cycle32, payload, 4);
  std::memcpy(&writer32, payload + 4, 4);
  std::memcpy(&identity.seq, payload + 8, 8);
  identity.cycle = cycle32;
  identity.writer = writer32;
  return identity;
}

void Ledger::absorb(uint64_t cycle, const std::vector<Ack>& acks, bool metadata_durable) {
  std::map<uint64_t, uint64_t> last_by_writer;
  for (const Ack& ack : acks) {
    if (ack.term != cycle) {
      problems_.push_back("index " + std::to_string(ack.index) + " acknowledged with term " + std::to_string(ack.term) +
                          " in cycle " + std::to_string(cycle));
    }
    auto previous = last_by_writer.find(ack.writer);
    if (previous != last_by_writer.end() && previous->second >= ack.index) {
      problems_.push_back("writer " + std::to_string(ack.writer) + " was told index " + std::to_string(ack.index) +
                          " after index " + std::to_string(previous->second));
    }
    last_by_writer[ack.writer] = ack.index;
    auto [it, inserted] = acked_.emplace(ack.index, ack);
    if (!inserted) {
      const Ack& old = it->second;
      problems_.push_back("index " + std::to_string(ack.index) + " acknowledged as (term " + std::to_string(old.term) +
                          ", writer " + std::to_string(old.writer) + ", seq " + std::to_string(old.seq) +
                          ") and later as (term " + std::to_string(ack.term) + ", writer " +
                          std::to_string(ack.writer) + ", seq " + std::to_string(ack.seq) +
                          "): the first acknowledged entry was lost");
    }
  }
  if (metadata_durable) metadata_term_ = std::max(metadata_term_, cycle);
}

const Ack* Ledger::find(uint64_t index) const {
  auto it = acked_.find(index);
  return it == acked_.end() ? nullptr : &it->second;
}

namespace {

// Checks entries one at a time, collecting what is wrong (the first few are printed).
class EntryChecker {
 public:
  explicit EntryChecker(const Ledger& ledger) : ledger_(ledger) {}

  void check(uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes, const char* where) {
    std::string at = std::string(where) + " entry " + std::to_string(index);
    std::optional<Identity> identity = identity_of(payload, bytes);
    if (!identity) return problem(at + ": payload of " + std::to_string(bytes) + " bytes was never written");
    if (identity->cycle != term) {
      problem(at + ": term " + std::to_string(term) + " but written in cycle " + std::to_string(identity->cycle));
    }
    std::vector<uint8_t> expected = payload_for(identity->cycle, identity->writer, identity->seq);
    if (expected.size() != bytes || std::memcmp(expected.data(), payload, bytes) != 0) {
      problem(at + ": payload damaged (writer " + std::to_string(identity->writer) + " seq " +
              std::to_string(identity->seq) + ")");
    }
    if (const Ack* ack = ledger_.find(index)) {
      if (ack->term != term || ack->writer != identity->writer || ack->seq != identity->seq) {
        problem(at + ": acknowledged as term " + std::to_string(ack->term) + " writer " + std::to_string(ack->writer) +
                " seq " + std::to_string(ack->seq) + ", but holds term " + std::to_string(term) + " writer " +
                std::to_string(identity->writer) + " seq " + std::to_string(identity->seq));
      }
    }
  }

  void problem(const std::string& text) {
    if (problems_.size() < problems_shown_max) problems_.push_back(text);
    ++count_;
  }
  uint64_t count() const { return count_; }
  std::string summary() const {
    std::string text = std::to_string(count_) + " problems:";
    for (const std::string& line : problems_) text += "\n  " + line;
    return text;
  }

 private:
  static constexpr size_t problems_shown_max = 10;
  const Ledger& ledger_;
  std::vector<std::string> problems_;
  uint64_t count_ = 0;
};

// Walks LMDB first..last: no gap, terms never decrease, every entry is one the child wrote,
// every acknowledged one is there as acknowledged.
void check_lmdb(Store& store, const Ledger& ledger, uint64_t wal_first_index, EntryChecker& checker,
                Verified& verified) {
  const RecoveredState& state = verified.state;
  uint64_t next = state.first_index;
  uint64_t previous_term = 0;
  uint64_t acked_seen = 0;
  constexpr uint64_t batch_entries = 4096;
  while (next <= state.last_index) {
    auto batch = store.load_range(next, std::min(state.last_index, next + batch_entries - 1), 16ull << 20);
    BOOST_TEST_REQUIRE(batch.is_ok(), "LMDB read at " << next << ": " << batch.status().to_string());
    BOOST_TEST_REQUIRE(!batch->empty(), "LMDB has a gap at index " << next << " inside " << state.first_index << ".."
                                                                   << state.last_index);
    for (const Entry& entry : *batch) {
      BOOST_TEST_REQUIRE(entry.index == next);
      checker.check(entry.index, entry.term, entry.payload().data(), entry.payload().size(), "LMDB");
      if (entry.term < previous_term) {
        checker.problem("term decreases from " + std::to_string(previous_term) + " to " + std::to_string(entry.term) +
                        " at index " + std::to_string(entry.index));
      }
      if (ledger.find(entry.index) != nullptr) {
        ++acked_seen;
        if (entry.index < wal_first_index) ++verified.acked_only_in_lmdb;
      }
      previous_term = entry.term;
      ++next;
      ++verified.lmdb_entries_checked;
    }
  }
  BOOST_TEST(acked_seen == ledger.size(), "every acknowledged entry lies in the recovered range");
  if (state.last_index >= state.first_index) BOOST_TEST(state.last_term == previous_term);
  BOOST_TEST(state.metadata.current_term >= previous_term,
             "an entry of term " << previous_term << " is durable but current_term is " << state.metadata.current_term);
}

}  // namespace

Verified verify_directory(const std::string& data_directory, const RecoveryOptions& options, const Ledger& ledger,
                          uint64_t voted_for) {
  auto recovered = recover(posix_env(), data_directory, options);
  BOOST_TEST_REQUIRE(recovered.is_ok(), "recovery after the crash failed: " << recovered.status().to_string());
  Verified verified;
  verified.report = recovered->report;
  verified.state = recovered->state;
  Wal& wal = *recovered->wal;
  verified.wal_first_index = wal.first_index();
  verified.wal_segments = wal.segment_count();
  const RecoveredState& state = verified.state;
  if (ledger.size() > 0) {
    BOOST_TEST_REQUIRE(state.last_index >= ledger.last_index(),
                       "the recovered log ends at " << state.last_index << " but index " << ledger.last_index()
                                                    << " was acknowledged durable");
    BOOST_TEST_REQUIRE(state.first_index <= ledger.first_index());
  }
  BOOST_TEST(state.metadata.current_term >= ledger.metadata_term(),
             "current_term " << state.metadata.current_term << " but term " << ledger.metadata_term()
                             << " was acknowledged durable");
  if (state.metadata.current_term > 0) BOOST_TEST(state.metadata.voted_for == voted_for);
  EntryChecker checker(ledger);
  check_lmdb(*recovered->store, ledger, wal.first_index(), checker, verified);
  // The WAL's retained entries, read back through its own checks, say the same.
  BOOST_TEST(wal.last_index() == state.last_index);
  Status replayed = wal.replay(wal.first_index(), [&](const EntryView& view) {
    checker.check(view.index, view.term, view.payload, view.payload_bytes, "WAL");
    ++verified.wal_entries_checked;
    return Status::ok();
  });
  BOOST_TEST(replayed.is_ok(), replayed.to_string());
  BOOST_TEST(checker.count() == 0u, checker.summary());
  return verified;
}

}  // namespace keyval::testing
