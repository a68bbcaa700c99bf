// The state machine actor (see state_machine.h).
#include "actors/state_machine.h"

#include "storage/kv_state_machine.h"

#include <deque>
#include <optional>
#include <map>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/record_batch.h"
#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"

namespace keyval {
namespace {

constexpr uint64_t apply_batch_bytes_max = 4u << 20;  // payload bytes merged into one apply

using ResultPromise = caf::typed_response_promise<Frame>;
using ReadPromise = caf::typed_response_promise<bool, std::string, uint64_t>;
using RangePromise = caf::typed_response_promise<Frame>;

using ManyResultsPromise = caf::typed_response_promise<Frame, std::vector<uint8_t>>;
using ManyReadPromise = caf::typed_response_promise<std::vector<std::string>, std::vector<uint8_t>, uint64_t>;

// A wait_many: one proposal batch's entries, answered together once the last is known.
struct BatchWait {
  uint64_t first = 0;
  std::vector<CommandResult> results;
  std::vector<uint8_t> outcomes;  // WaitOutcome per entry
  size_t remaining = 0;
  ManyResultsPromise promise;
};
struct Wait {
  uint64_t term;
  ResultPromise promise;              // a single wait's, or
  std::shared_ptr<BatchWait> batch;   // the batch this entry is one of
};
struct Read {
  std::string key;
  ReadPromise promise;
  std::vector<std::string> keys;  // a kv_get_many's (many_promise set)
  std::optional<ManyReadPromise> many_promise;
};
struct RangeRead {
  Frame request;
  RangePromise promise;
};
struct Recent {
  uint64_t term;
  CommandResult result;  // encoded only when someone asks for it
};
// One committed batch from the raft node: its frame as it came (sent to the indexer as is
// when nothing else is queued), and what the answers need of each entry.
struct EntryId {
  uint64_t index;
  uint64_t term;
};
struct Batch {
  Frame frame;
  std::vector<EntryId> ids;
  uint64_t payload_bytes = 0;
  // A snapshot to install instead of entries (ordered with the batches around it).
  std::optional<EntryId> snapshot;
  caf::typed_response_promise<uint64_t> installed;
};

struct StateMachineState {
  store_indexer_actor indexer;
  StateMachineConfig config;
  uint64_t applied_index = 0;
  std::deque<Batch> queue;               // committed, not yet sent to the indexer
  bool applying = false;                 // one kv_apply in flight at a time, in order
  std::multimap<uint64_t, Wait> waits;   // by index
  std::multimap<uint64_t, Read> reads;   // by read index
  std::multimap<uint64_t, RangeRead> ranges;  // by read index
  std::map<uint64_t, Recent> recent;     // by index, the last recent_max results

  static inline const char* name = "state_machine";
};

using Self = state_machine_actor::stateful_pointer<StateMachineState>;

caf::error lost_error(uint64_t index, uint64_t proposed_term, uint64_t applied_term) {
  return to_error(Status::not_found("lost: the entry applied at index " + std::to_string(index) + " has term " +
                                    std::to_string(applied_term) + ", not the proposal's term " +
                                    std::to_string(proposed_term)));
}

// What came of a proposal a client waited for (NodeMetrics::proposals_applied / _lost).
void count_result(const StateMachineConfig& config, bool applied) {
  if (config.metrics) (applied ? config.metrics->proposals_applied : config.metrics->proposals_lost).add();
}

void publish_applied(const StateMachineConfig& config, uint64_t applied_index) {
  if (config.metrics) config.metrics->applied_index.set(static_cast<int64_t>(applied_index));
}

// One entry of a batch wait is known: its result (recent), or forgotten (null).
void fill_batch_slot(const StateMachineConfig& config, BatchWait& batch, uint64_t term, uint64_t index,
                     const Recent* recent) {
  const size_t slot = static_cast<size_t>(index - batch.first);
  if (recent == nullptr) {
    batch.outcomes[slot] = static_cast<uint8_t>(WaitOutcome::forgotten);
  } else {
    count_result(config, recent->term == term);
    if (recent->term == term) batch.results[slot] = recent->result;
    batch.outcomes[slot] = static_cast<uint8_t>(recent->term == term ? WaitOutcome::applied : WaitOutcome::lost);
  }
  if (--batch.remaining == 0) batch.promise.deliver(Frame{encode_results(batch.results)}, std::move(batch.outcomes));
}

void answer_wait(const StateMachineConfig& config, const Recent& recent, uint64_t index, Wait& wait) {
  if (wait.batch) return fill_batch_slot(config, *wait.batch, wait.term, index, &recent);
  count_result(config, recent.term == wait.term);
  if (recent.term == wait.term) wait.promise.deliver(Frame{encode_result(recent.result)});
  else wait.promise.deliver(lost_error(index, wait.term, recent.term));
}

void serve_read(Self self, const std::string& key, ReadPromise promise) {
  const uint64_t served_at = self->state.applied_index;
  if (self->state.config.store) {
    // The indexer answered the apply through served_at after committing it: this read
    // transaction sees that state or a later one, never an earlier one.
    auto value = KvStateMachine::get_shared(*self->state.config.store, key);
    if (!value.is_ok()) {
      promise.deliver(to_error(value.status()));
    } else if (!value->has_value()) {
      promise.deliver(false, std::string(), served_at);
    } else {
      promise.deliver(true, std::move(**value), served_at);
    }
    return;
  }
  self->request(self->state.indexer, caf::infinite, kv_get_atom_v, key)
      .then([promise, served_at](bool found, std::string& value) mutable { promise.deliver(found, value, served_at); },
            [promise](caf::error& error) mutable { promise.deliver(error); });
}

void serve_read_many(Self self, const std::vector<std::string>& keys, ManyReadPromise promise) {
  const uint64_t served_at = self->state.applied_index;
  std::vector<std::string> values(keys.size());
  std::vector<uint8_t> found(keys.size(), 0);
  if (!self->state.config.store) {
    // No shared store (a state machine built without one): the indexer reads each key; the
    // answer goes once the last read came back, or with the first error.
    struct Gather {
      std::vector<std::string> values;
      std::vector<uint8_t> found;
      size_t remaining = 0;
      bool failed = false;
    };
    if (keys.empty()) {
      promise.deliver(std::move(values), std::move(found), served_at);
      return;
    }
    auto gather = std::make_shared<Gather>(Gather{std::move(values), std::move(found), keys.size(), false});
    for (size_t i = 0; i < keys.size(); ++i) {
      self->request(self->state.indexer, caf::infinite, kv_get_atom_v, keys[i])
          .then(
              [gather, promise, served_at, i](bool is_found, std::string& value) mutable {
                gather->found[i] = is_found ? 1 : 0;
                gather->values[i] = std::move(value);
                if (--gather->remaining == 0 && !gather->failed) {
                  promise.deliver(std::move(gather->values), std::move(gather->found), served_at);
                }
              },
              [gather, promise](caf::error& error) mutable {
                if (gather->failed) return;
                gather->failed = true;
                promise.deliver(error);
              });
    }
    return;
  }
  auto read = KvStateMachine::get_many_shared(*self->state.config.store, keys);
  if (!read.is_ok()) {
    promise.deliver(to_error(read.status()));
    return;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*read)[i]) continue;
    found[i] = 1;
    values[i] = std::move(*(*read)[i]);
  }
  promise.deliver(std::move(values), std::move(found), served_at);
}

void serve(Self self, Read& read) {
  if (read.many_promise) serve_read_many(self, read.keys, *read.many_promise);
  else serve_read(self, read.key, read.promise);
}

// The indexer answers with an encoded ClientResponse; `index` says where it was served.
void serve_range(Self self, Frame& request, RangePromise promise) {
  const uint64_t served_at = self->state.applied_index;
  self->request(self->state.indexer, caf::infinite, kv_range_atom_v, std::move(request))
      .then(
          [promise, served_at](Frame& answer) mutable {
            auto response = decode_client_response(answer.bytes.data(), answer.bytes.size());
            if (!response.is_ok()) {
              promise.deliver(to_error(response.status()));
              return;
            }
            response->index = served_at;
            promise.deliver(Frame{encode_client_response(*response)});
          },
          [promise](caf::error& error) mutable { promise.deliver(error); });
}

void pump(Self self);

void on_applied(Self self, const std::vector<EntryId>& ids, std::vector<CommandResult>& results) {
  auto& state = self->state;
  for (size_t i = 0; i < ids.size(); ++i) {
    const EntryId& entry = ids[i];
    Recent recent{entry.term, std::move(results[i])};
    auto range = state.waits.equal_range(entry.index);
    for (auto it = range.first; it != range.second; ++it) answer_wait(state.config, recent, entry.index, it->second);
    state.waits.erase(range.first, range.second);
    state.recent[entry.index] = std::move(recent);
    while (state.recent.size() > state.config.recent_max) state.recent.erase(state.recent.begin());
  }
  if (!ids.empty()) state.applied_index = std::max(state.applied_index, ids.back().index);
  publish_applied(state.config, state.applied_index);
  auto ready_end = state.reads.upper_bound(state.applied_index);
  for (auto it = state.reads.begin(); it != ready_end; ++it) serve(self, it->second);
  state.reads.erase(state.reads.begin(), ready_end);
  auto ranges_end = state.ranges.upper_bound(state.applied_index);
  for (auto it = state.ranges.begin(); it != ranges_end; ++it) serve_range(self, it->second.request, it->second.promise);
  state.ranges.erase(state.ranges.begin(), ranges_end);
  pump(self);
}

// Sends the queued batches to the indexer's state machine: one as it came, or several
// merged (up to a byte bound) into one frame.
void on_installed(Self self, EntryId snapshot) {
  auto& state = self->state;
  state.applied_index = snapshot.index;
  publish_applied(state.config, state.applied_index);
  auto forgotten_end = state.waits.upper_bound(snapshot.index);
  for (auto it = state.waits.begin(); it != forgotten_end; ++it) {
    if (it->second.batch) {
      fill_batch_slot(state.config, *it->second.batch, it->second.term, it->first, nullptr);
      continue;
    }
    it->second.promise.deliver(to_error(Status::unsupported(
        "the result of index " + std::to_string(it->first) + " is no longer held (a snapshot replaced it)")));
  }
  state.waits.erase(state.waits.begin(), forgotten_end);
  state.recent.clear();
  auto ready_end = state.reads.upper_bound(state.applied_index);
  for (auto it = state.reads.begin(); it != ready_end; ++it) serve(self, it->second);
  state.reads.erase(state.reads.begin(), ready_end);
}

void install(Self self, Batch batch) {
  self->state.applying = true;
  const EntryId snapshot = *batch.snapshot;
  self->request(self->state.indexer, caf::infinite, snapshot_install_atom_v, snapshot.index, snapshot.term)
      .then(
          [self, snapshot, promise = batch.installed](uint64_t keys) mutable {
            self->state.applying = false;
            on_installed(self, snapshot);
            promise.deliver(keys);
            pump(self);
          },
          [self, promise = batch.installed](caf::error& error) mutable {
            promise.deliver(error);
            self->quit(error);
          });
}

void pump(Self self) {
  auto& state = self->state;
  if (state.applying || state.queue.empty()) return;
  Batch batch = std::move(state.queue.front());
  state.queue.pop_front();
  if (batch.snapshot) return install(self, std::move(batch));
  if (!state.queue.empty() && batch.payload_bytes < apply_batch_bytes_max && !state.queue.front().snapshot) {
    auto merged = decode_entries(batch.frame.bytes, "apply queue");
    KV_ASSERT(merged.is_ok());  // decoded once already when it arrived
    while (!state.queue.empty() && batch.payload_bytes < apply_batch_bytes_max && !state.queue.front().snapshot) {
      Batch& next = state.queue.front();
      auto entries = decode_entries(next.frame.bytes, "apply queue");
      KV_ASSERT(entries.is_ok());
      for (Entry& entry : *entries) merged->push_back(std::move(entry));
      batch.ids.insert(batch.ids.end(), next.ids.begin(), next.ids.end());
      batch.payload_bytes += next.payload_bytes;
      state.queue.pop_front();
    }
    batch.frame = Frame{encode_entries(*merged)};
  }
  state.applying = true;
  self->request(state.indexer, caf::infinite, kv_apply_atom_v, std::move(batch.frame))
      .then(
          [self, ids = std::move(batch.ids)](Frame& reply) {
            self->state.applying = false;
            auto results = decode_results(reply.bytes.data(), reply.bytes.size(), "kv apply reply");
            if (!results.is_ok() || results->size() != ids.size()) {
              self->quit(to_error(results.is_ok() ? Status::corruption("kv apply reply: wrong result count")
                                                  : results.status()));
              return;
            }
            on_applied(self, ids, *results);
          },
          [self](caf::error& error) { self->quit(error); });
}

caf::result<Frame> on_wait(Self self, uint64_t index, uint64_t term) {
  auto& state = self->state;
  if (index <= state.applied_index) {
    auto recent = state.recent.find(index);
    if (recent == state.recent.end()) {
      return to_error(Status::unsupported("the result of index " + std::to_string(index) + " is no longer held"));
    }
    count_result(state.config, recent->second.term == term);
    if (recent->second.term != term) return lost_error(index, term, recent->second.term);
    return Frame{encode_result(recent->second.result)};
  }
  if (state.waits.size() + state.reads.size() >= state.config.waits_max) {
    return to_error(Status::busy("state machine: too many pending requests"));
  }
  auto promise = self->make_response_promise<Frame>();
  state.waits.emplace(index, Wait{term, promise, nullptr});
  return promise;
}

caf::result<Frame, std::vector<uint8_t>> on_wait_many(Self self, uint64_t first, uint64_t count, uint64_t term) {
  auto& state = self->state;
  if (count == 0) return {Frame{encode_results({})}, std::vector<uint8_t>{}};
  if (state.waits.size() + state.reads.size() + count > state.config.waits_max) {
    return to_error(Status::busy("state machine: too many pending requests"));
  }
  auto batch = std::make_shared<BatchWait>();
  batch->first = first;
  batch->results.resize(count);
  batch->outcomes.assign(count, static_cast<uint8_t>(WaitOutcome::forgotten));
  batch->remaining = count + 1;  // + 1 until every entry is placed: no answer before
  batch->promise = self->make_response_promise<Frame, std::vector<uint8_t>>();
  for (uint64_t index = first; index < first + count; ++index) {
    if (index > state.applied_index) {
      state.waits.emplace(index, Wait{term, {}, batch});
      continue;
    }
    auto recent = state.recent.find(index);
    fill_batch_slot(state.config, *batch, term, index, recent == state.recent.end() ? nullptr : &recent->second);
  }
  if (--batch->remaining == 0) {
    batch->promise.deliver(Frame{encode_results(batch->results)}, std::move(batch->outcomes));
  }
  return batch->promise;
}

caf::result<std::vector<std::string>, std::vector<uint8_t>, uint64_t> on_get_many(Self self,
                                                                                   std::vector<std::string>& keys,
                                                                                   uint64_t read_index) {
  auto& state = self->state;
  if (state.waits.size() + state.reads.size() + state.ranges.size() >= state.config.waits_max) {
    return to_error(Status::busy("state machine: too many pending requests"));
  }
  auto promise = self->make_response_promise<std::vector<std::string>, std::vector<uint8_t>, uint64_t>();
  if (read_index <= state.applied_index) {
    serve_read_many(self, keys, promise);
  } else {
    Read read;
    read.keys = std::move(keys);
    read.many_promise = promise;
    state.reads.emplace(read_index, std::move(read));
  }
  return promise;
}

caf::result<bool, std::string, uint64_t> on_get(Self self, std::string& key, uint64_t read_index) {
  auto& state = self->state;
  if (state.waits.size() + state.reads.size() + state.ranges.size() >= state.config.waits_max) {
    return to_error(Status::busy("state machine: too many pending requests"));
  }
  auto promise = self->make_response_promise<bool, std::string, uint64_t>();
  if (read_index <= state.applied_index) serve_read(self, key, promise);
  else state.reads.emplace(read_index, Read{std::move(key), promise, {}, std::nullopt});
  return promise;
}

caf::result<Frame> on_range(Self self, Frame& request, uint64_t read_index) {
  auto& state = self->state;
  if (state.waits.size() + state.reads.size() + state.ranges.size() >= state.config.waits_max) {
    return to_error(Status::busy("state machine: too many pending requests"));
  }
  auto promise = self->make_response_promise<Frame>();
  if (read_index <= state.applied_index) serve_range(self, request, promise);
  else state.ranges.emplace(read_index, RangeRead{std::move(request), promise});
  return promise;
}

state_machine_actor::behavior_type state_machine(Self self, store_indexer_actor indexer, StateMachineConfig config) {
  self->state.indexer = std::move(indexer);
  self->state.config = config;
  self->state.applied_index = config.applied_index;
  publish_applied(config, config.applied_index);
  return {
      [self](apply_atom, Frame& frame) {
        auto entries = decode_entries(frame.bytes, "apply request");
        if (!entries.is_ok()) {
          self->quit(to_error(entries.status()));  // the raft node sent it: a bug, stop
          return;
        }
        Batch batch;
        batch.ids.reserve(entries->size());
        for (const Entry& entry : *entries) {
          batch.ids.push_back({entry.index, entry.term});
          batch.payload_bytes += entry.payload.size();
        }
        batch.frame = std::move(frame);
        self->state.queue.push_back(std::move(batch));
        pump(self);
      },
      [self](wait_atom, uint64_t index, uint64_t term) { return on_wait(self, index, term); },
      [self](kv_get_atom, std::string& key, uint64_t read_index) { return on_get(self, key, read_index); },
      [self](wait_many_atom, uint64_t first, uint64_t count, uint64_t term) {
        return on_wait_many(self, first, count, term);
      },
      [self](kv_get_many_atom, std::vector<std::string>& keys, uint64_t read_index) {
        return on_get_many(self, keys, read_index);
      },
      [self](kv_range_atom, Frame& request, uint64_t read_index) { return on_range(self, request, read_index); },
      [self](kv_applied_atom) { return self->state.applied_index; },
      [self](snapshot_install_atom, uint64_t index, uint64_t term) -> caf::result<uint64_t> {
        Batch batch;
        batch.snapshot = EntryId{index, term};
        batch.installed = self->make_response_promise<uint64_t>();
        auto promise = batch.installed;
        self->state.queue.push_back(std::move(batch));
        pump(self);
        return promise;
      },
  };
}

}  // namespace

state_machine_actor spawn_state_machine(caf::actor_system& system, store_indexer_actor indexer,
                                        StateMachineConfig config) {
  return system.spawn(state_machine, std::move(indexer), config);
}

}  // namespace keyval
