// The Raft log as the core sees it: every entry in memory, indices from 1, with the
// terms the consistency check (§5.3) and the up-to-date check (§5.4.1) need. What is
// durable and what still has to be handed to persistence is tracked by Core, not here.
// There is no compaction yet: a snapshot would move first_index past 1.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/types.h"

namespace keyval::raft {

class Log {
 public:
  Log() = default;
  // `entries` must be consecutive from index 1 with non-decreasing terms (asserted).
  explicit Log(std::vector<Entry> entries);

  uint64_t last_index() const { return entries_.size(); }
  uint64_t last_term() const { return term_at(last_index()); }
  // The term of the entry at `index`; 0 for index 0 (the empty prefix) and past the end.
  uint64_t term_at(uint64_t index) const;
  const Entry& at(uint64_t index) const;
  // The first index holding `term`, searching down from `index` (for the conflict hint).
  uint64_t first_index_of_term(uint64_t term, uint64_t index) const;
  // The last index holding `term` or less, searching down from last_index (leader's back-off).
  uint64_t last_index_with_term_at_most(uint64_t term) const;

  // Entries [from, ...] limited by a count and a byte budget; always at least one entry
  // when from <= last_index, so an entry larger than the budget still makes progress.
  std::vector<Entry> slice(uint64_t from, uint64_t count_max, uint64_t bytes_max) const;

  void append(Entry entry);        // entry.index must be last_index + 1
  void truncate_after(uint64_t index);  // drops every entry past `index`

 private:
  std::vector<Entry> entries_;  // entries_[i] has index i + 1
};

}  // namespace keyval::raft
