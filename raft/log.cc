// The in-memory Raft log (see log.h).
#include "raft/log.h"

#include <utility>

#include "storage/status.h"

namespace keyval::raft {

Log::Log(std::vector<Entry> entries) : entries_(std::move(entries)) {
  for (uint64_t i = 0; i < entries_.size(); ++i) {
    KV_ASSERT(entries_[i].index == i + 1);
    // Terms never decrease along a log: each leader appends in its own, newer term.
    KV_ASSERT(i == 0 || entries_[i].term >= entries_[i - 1].term);
  }
}

uint64_t Log::term_at(uint64_t index) const {
  if (index == 0 || index > entries_.size()) return 0;
  return entries_[index - 1].term;
}

const Entry& Log::at(uint64_t index) const {
  KV_ASSERT(index >= 1 && index <= entries_.size());
  return entries_[index - 1];
}

uint64_t Log::first_index_of_term(uint64_t term, uint64_t index) const {
  KV_ASSERT(index <= last_index() && term_at(index) == term);
  while (index > 1 && term_at(index - 1) == term) --index;
  return index;
}

uint64_t Log::last_index_with_term_at_most(uint64_t term) const {
  uint64_t index = last_index();
  while (index > 0 && term_at(index) > term) --index;
  return index;
}

std::vector<Entry> Log::slice(uint64_t from, uint64_t count_max, uint64_t bytes_max) const {
  std::vector<Entry> result;
  uint64_t bytes = 0;
  for (uint64_t index = from; index <= last_index() && result.size() < count_max; ++index) {
    const Entry& entry = at(index);
    if (!result.empty() && bytes + entry.payload.size() > bytes_max) break;
    bytes += entry.payload.size();
    result.push_back(entry);
  }
  return result;
}

void Log::append(Entry entry) {
  KV_ASSERT(entry.index == last_index() + 1);
  KV_ASSERT(entry.term >= last_term());
  entries_.push_back(std::move(entry));
}

void Log::truncate_after(uint64_t index) {
  KV_ASSERT(index <= last_index());
  entries_.resize(index);
}

}  // namespace keyval::raft
