// The Raft log as the core sees it: the entries after a compacted prefix, with the terms the
// consistency check (§5.3) and the up-to-date check (§5.4.1) need. Log compaction (§7) drops
// a prefix that a snapshot covers: the log then starts after (start_index, start_term), the
// last entry the snapshot (or the compaction) replaced, whose term is still known. Entries
// before start_index are compacted: their terms are gone and term_at() says 0 for them.
// What is durable and what still has to be handed to persistence is tracked by Core, not here.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "storage/types.h"

namespace keyval::raft {

class Log {
 public:
  Log() = default;
  // `entries` must be consecutive from index 1 with non-decreasing terms (asserted).
  explicit Log(std::vector<Entry> entries);
  // A log whose compacted prefix ends at (start_index, start_term): `entries` must be
  // consecutive from start_index + 1, with terms not below start_term (asserted).
  Log(uint64_t start_index, uint64_t start_term, std::vector<Entry> entries);

  // The last compacted position (0 when nothing is compacted) and its term.
  uint64_t start_index() const { return start_index_; }
  uint64_t start_term() const { return start_term_; }
  uint64_t first_index() const { return start_index_ + 1; }  // the first entry held
  uint64_t last_index() const { return start_index_ + entries_.size(); }
  // start_term when no entry is held: an empty log after a snapshot ends at the snapshot.
  uint64_t last_term() const { return entries_.empty() ? start_term_ : entries_.back().term; }
  // Before start_index the log no longer knows the term.
  bool compacted(uint64_t index) const { return index < start_index_; }
  // The term at `index`: start_term at start_index; 0 for a compacted index and past the end.
  uint64_t term_at(uint64_t index) const;
  // Appends the term of every held entry (start_index()+1 .. last_index()) to `terms`, in order.
  void append_terms(std::vector<uint64_t>& terms) const;
  // Names the log's contents: every construction and every change takes a number no other log
  // in the process had (a copy keeps its original's, as it holds the same entries). Equal
  // versions, equal logs: the simulator skips a whole-log check when no version changed.
  uint64_t version() const { return version_; }
  const Entry& at(uint64_t index) const;  // first_index() <= index <= last_index()
  // The first index holding `term`, searching down from `index` (for the conflict hint); never
  // below first_index(), since the compacted terms are unknown.
  uint64_t first_index_of_term(uint64_t term, uint64_t index) const;
  // The last index holding `term` or less, searching down from last_index (leader's back-off);
  // start_index() when no held entry qualifies.
  uint64_t last_index_with_term_at_most(uint64_t term) const;

  // Entries [from, ...] limited by a count and a byte budget; always at least one entry
  // when first_index <= from <= last_index, so an entry larger than the budget still makes
  // progress.
  std::vector<Entry> slice(uint64_t from, uint64_t count_max, uint64_t bytes_max) const;

  void append(Entry entry);             // entry.index must be last_index + 1
  void truncate_after(uint64_t index);  // drops every entry past `index` (index >= start_index)
  // Drops the entries through `index` (start_index <= index <= last_index): it becomes the start.
  void compact_through(uint64_t index);
  // An empty log continuing at index + 1, as after installing a snapshot at (index, term).
  void reset(uint64_t index, uint64_t term);

 private:
  uint64_t start_index_ = 0;
  uint64_t start_term_ = 0;
  std::deque<Entry> entries_;  // entries_[i] has index start_index_ + 1 + i
  uint64_t version_ = next_version();

  static uint64_t next_version();
};

}  // namespace keyval::raft
