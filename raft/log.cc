// The in-memory Raft log (see log.h).
#include "raft/log.h"

#include <atomic>
#include <utility>

#include "storage/status.h"

namespace keyval::raft {

Log::Log(std::vector<Entry> entries) : Log(0, 0, std::move(entries)) {}

Log::Log(uint64_t start_index, uint64_t start_term, std::vector<Entry> entries)
    : start_index_(start_index), start_term_(start_term) {
  // Index 0 is the empty prefix: it has no term.
  KV_ASSERT(start_index != 0 || start_term == 0);
  for (Entry& entry : entries) append(std::move(entry));
}

uint64_t Log::term_at(uint64_t index) const {
  if (index == start_index_) return start_term_;
  if (index < start_index_ || index > last_index()) return 0;
  return entries_[index - start_index_ - 1].term;
}

void Log::append_terms(std::vector<uint64_t>& terms) const {
  terms.reserve(terms.size() + entries_.size());
  for (const Entry& entry : entries_) terms.push_back(entry.term);
}

const Entry& Log::at(uint64_t index) const {
  KV_ASSERT(index > start_index_ && index <= last_index());
  return entries_[index - start_index_ - 1];
}

uint64_t Log::first_index_of_term(uint64_t term, uint64_t index) const {
  KV_ASSERT(index >= start_index_ && index <= last_index() && term_at(index) == term);
  while (index > first_index() && term_at(index - 1) == term) --index;
  return index;
}

uint64_t Log::last_index_with_term_at_most(uint64_t term) const {
  uint64_t index = last_index();
  while (index > start_index_ && term_at(index) > term) --index;
  return index;
}

std::vector<Entry> Log::slice(uint64_t from, uint64_t count_max, uint64_t bytes_max) const {
  KV_ASSERT(from > start_index_);
  std::vector<Entry> result;
  uint64_t bytes = 0;
  for (uint64_t index = from; index <= last_index() && result.size() < count_max; ++index) {
    const Entry& entry = at(index);
    if (!result.empty() && bytes + entry.payload().size() > bytes_max) break;
    bytes += entry.payload().size();
    result.push_back(entry);
  }
  return result;
}

uint64_t Log::next_version() {
  static std::atomic<uint64_t> versions{0};
  return versions.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Log::append(Entry entry) {
  KV_ASSERT(entry.index == last_index() + 1);
  // Terms never decrease along a log: each leader appends in its own, newer term.
  KV_ASSERT(entry.term >= last_term());
  entries_.push_back(std::move(entry));
  version_ = next_version();
}

void Log::truncate_after(uint64_t index) {
  KV_ASSERT(index >= start_index_ && index <= last_index());
  entries_.resize(index - start_index_);
  version_ = next_version();
}

void Log::compact_through(uint64_t index) {
  KV_ASSERT(index >= start_index_ && index <= last_index());
  if (index == start_index_) return;
  version_ = next_version();
  start_term_ = term_at(index);
  // A deque drops its front without moving the rest: compaction costs the entries dropped.
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index - start_index_));
  start_index_ = index;
}

void Log::reset(uint64_t index, uint64_t term) {
  KV_ASSERT(index != 0 || term == 0);
  entries_.clear();
  start_index_ = index;
  start_term_ = term;
  version_ = next_version();
}

}  // namespace keyval::raft
