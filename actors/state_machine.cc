// The state machine actor (see state_machine.h).
#include "actors/state_machine.h"

#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/node_scheduler.h"
#include "actors/record_batch.h"
#include "storage/kv_command.h"
#include "storage/snapshot.h"
#include "storage/snapshot_file.h"

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
// One committed batch from the raft node, decoded, and what the answers need of each entry.
struct EntryId {
  uint64_t index;
  uint64_t term;
};
struct Batch {
  std::vector<Entry> entries;
  std::vector<EntryId> ids;
  uint64_t payload_bytes = 0;
  // A snapshot to install instead of entries (ordered with the batches around it).
  std::optional<EntryId> snapshot;
  caf::typed_response_promise<uint64_t> installed;
};

struct StateMachineState {
  StateMachineConfig config;
  std::unique_ptr<KvStateMachine> kv;    // on config.persistence.store
  uint64_t applied_index = 0;
  std::deque<Batch> queue;               // committed, not yet applied
  bool apply_pending = false;            // a kv_apply to itself is on its way
  bool installing = false;               // a helper loads a snapshot: nothing else applies meanwhile
  // Set when it fail-stops; shared with the exit hook, which runs after the state is gone.
  std::shared_ptr<bool> failed = std::make_shared<bool>(false);
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
  if (config.applied_reads) config.applied_reads->publish(applied_index);
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

// Fail-stop: an LMDB write that failed leaves this replica unable to follow the log.
void fail_stop(Self self, const Status& status) {
  *self->state.failed = true;
  std::string line = "state_machine: stopped, LMDB failed: " + status.to_string();
  if (self->state.config.log) self->state.config.log(line);
  else std::cerr << line << std::endl;
  self->quit(to_error(status));
}

// Reads run here, in a read transaction begun after the apply through applied_index committed:
// they see that state or a later one, never an earlier one.
void serve_read(Self self, const std::string& key, ReadPromise promise) {
  auto value = self->state.kv->get(key);
  if (!value.is_ok()) promise.deliver(to_error(value.status()));
  else if (!value->has_value()) promise.deliver(false, std::string(), self->state.applied_index);
  else promise.deliver(true, std::move(**value), self->state.applied_index);
}

void serve_read_many(Self self, const std::vector<std::string>& keys, ManyReadPromise promise) {
  auto read = self->state.kv->get_many(keys);
  if (!read.is_ok()) {
    promise.deliver(to_error(read.status()));
    return;
  }
  ManyValues answer = many_values(std::move(*read));
  promise.deliver(std::move(answer.values), std::move(answer.found), self->state.applied_index);
}

void serve(Self self, Read& read) {
  if (read.many_promise) serve_read_many(self, read.keys, *read.many_promise);
  else serve_read(self, read.key, read.promise);
}

void serve_range(Self self, const Frame& frame, RangePromise promise) {
  auto request = decode_client_request(frame.bytes.data(), frame.bytes.size());
  if (!request.is_ok()) {
    promise.deliver(to_error(request.status()));
    return;
  }
  auto response = read_range(*self->state.kv, *request);
  if (!response.is_ok()) {
    promise.deliver(to_error(response.status()));
    return;
  }
  response->index = self->state.applied_index;
  promise.deliver(Frame{encode_client_response(*response)});
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
}

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

// Loads the published snapshot (index, term) into the store: install() here, or its helper.
auto load_published(const SharedStore& persistence, uint64_t index, uint64_t term) {
  SnapshotDirectory directory(*persistence.env, persistence.snapshot_directory);
  return load_snapshot(*persistence.env, directory.path_for(index, term), *persistence.store);
}

// hash_atom's answer: the applied index and the state's hash, from one read transaction.
caf::result<uint64_t, uint64_t> hash_of(Store& store) {
  auto hashed = hash_state_machine(store);
  if (!hashed.is_ok()) return to_error(hashed.status());
  return {hashed->first, hashed->second};
}

// Replaces the state with the published snapshot file; false when it failed (fail-stop).
bool install(Self self, Batch& batch) {
  auto& state = self->state;
  const EntryId snapshot = *batch.snapshot;
  const SharedStore& persistence = state.config.persistence;
  if (persistence.env == nullptr || persistence.snapshot_directory.empty()) {
    batch.installed.deliver(to_error(Status::invalid_argument("state_machine: no snapshot directory")));
    return true;
  }
  auto loaded = load_published(persistence, snapshot.index, snapshot.term);
  if (!loaded.is_ok()) {
    // The file was verified and published before the WAL named it: failing to load it now
    // is the disk failing under us. Fail-stop; recovery retries the load from the file.
    batch.installed.deliver(to_error(loaded.status()));
    fail_stop(self, loaded.status());
    return false;
  }
  on_installed(self, snapshot);
  batch.installed.deliver(loaded->keys);
  return true;
}

// Loads one snapshot (snapshot_install_atom: index, term) into the store, replies the keys
// loaded, then is done: the state machine's helper when it runs on the network thread.
using snapshot_loader_actor = caf::typed_actor<caf::replies_to<snapshot_install_atom, uint64_t, uint64_t>::with<uint64_t>>;

snapshot_loader_actor::behavior_type snapshot_loader(snapshot_loader_actor::pointer self, SharedStore persistence) {
  return {
      [self, persistence](snapshot_install_atom, uint64_t index, uint64_t term) -> caf::result<uint64_t> {
        self->quit();
        auto loaded = load_published(persistence, index, term);
        if (!loaded.is_ok()) return to_error(loaded.status());
        return loaded->keys;
      },
  };
}

void pump(Self self);

// On the network thread, a snapshot (a whole state in one LMDB transaction) loads on a
// helper's thread, so the sockets and the raft node are served meanwhile; nothing queued after
// it applies until it is in (state.installing), as when the state machine loads it itself.
// False when there is nothing to hand off (no snapshot directory): install() answers that.
bool install_on_helper(Self self, Batch& batch) {
  auto& state = self->state;
  const SharedStore& persistence = state.config.persistence;
  if (persistence.env == nullptr || persistence.snapshot_directory.empty()) return false;
  const EntryId snapshot = *batch.snapshot;
  state.installing = true;
  auto loader = state.config.helpers_detached ? self->spawn<caf::detached>(snapshot_loader, persistence)
                                              : self->spawn(snapshot_loader, persistence);
  if (state.config.helper_spawned) state.config.helper_spawned(caf::actor_cast<caf::actor>(loader));
  auto installed = batch.installed;
  self->request(loader, caf::infinite, snapshot_install_atom_v, snapshot.index, snapshot.term)
      .then(
          [self, snapshot, installed](uint64_t keys) mutable {
            self->state.installing = false;
            on_installed(self, snapshot);
            installed.deliver(keys);
            pump(self);
          },
          [self, installed](caf::error& error) mutable {
            // As install(): the disk failing under us. Fail-stop; recovery retries the load.
            installed.deliver(error);
            fail_stop(self, to_status(error));
          });
  return true;
}

// Applies everything queued, in order: consecutive entry batches merged (up to a byte bound)
// into one LMDB transaction, a snapshot on its own.
void pump(Self self) {
  auto& state = self->state;
  while (!state.queue.empty() && !state.installing) {
    Batch batch = std::move(state.queue.front());
    state.queue.pop_front();
    if (batch.snapshot) {
      if ((state.config.on_network_thread || state.config.install_on_helper) && install_on_helper(self, batch)) return;
      if (!install(self, batch)) return;
      continue;
    }
    while (!state.queue.empty() && batch.payload_bytes < apply_batch_bytes_max && !state.queue.front().snapshot) {
      Batch& next = state.queue.front();
      for (Entry& entry : next.entries) batch.entries.push_back(std::move(entry));
      batch.ids.insert(batch.ids.end(), next.ids.begin(), next.ids.end());
      batch.payload_bytes += next.payload_bytes;
      state.queue.pop_front();
    }
    auto results = state.kv->apply(batch.entries);
    if (!results.is_ok()) return fail_stop(self, results.status());
    on_applied(self, batch.ids, *results);
  }
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

// One hash of the state (hash_atom), then done: the state machine's helper when it runs on
// the network thread. The store's read transactions may come from any thread (storage/store.h).
using state_hasher_actor = caf::typed_actor<caf::replies_to<hash_atom>::with<uint64_t, uint64_t>>;

state_hasher_actor::behavior_type state_hasher(state_hasher_actor::pointer self, std::shared_ptr<Store> store) {
  return {
      [self, store](hash_atom) -> caf::result<uint64_t, uint64_t> {
        self->quit();
        return hash_of(*store);
      },
  };
}

state_machine_actor::behavior_type state_machine(Self self, StateMachineConfig config) {
  auto& state = self->state;
  state.config = std::move(config);
  state.kv = std::make_unique<KvStateMachine>(*state.config.persistence.store, state.config.kv);
  auto applied = state.kv->applied_index();
  if (applied.is_ok()) state.applied_index = *applied;
  else fail_stop(self, applied.status());  // quits once this returns
  publish_applied(state.config, state.applied_index);
  self->attach_functor([clean_stop = state.config.persistence.clean_stop, failed = state.failed](const caf::error& reason) {
    if (clean_stop) clean_stop->writer_stopped(reason, *failed);
  });
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
          batch.payload_bytes += entry.payload().size();
        }
        batch.entries = std::move(*entries);
        self->state.queue.push_back(std::move(batch));
        // Batches already in the mailbox come first, then this: one transaction for all.
        if (self->state.apply_pending) return;
        self->state.apply_pending = true;
        self->send(self, kv_apply_atom_v);
      },
      [self](kv_apply_atom) {
        self->state.apply_pending = false;
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
        if (!self->state.apply_pending) {
          self->state.apply_pending = true;
          self->send(self, kv_apply_atom_v);
        }
        return promise;
      },
      [self](hash_atom) -> caf::result<uint64_t, uint64_t> {
        if (self->state.config.on_network_thread) {
          // A scan of the whole state: on a thread of its own, off the network thread.
          auto helper = self->spawn<caf::detached>(state_hasher, self->state.config.persistence.store);
          return self->delegate(helper, hash_atom_v);
        }
        return hash_of(*self->state.config.persistence.store);
      },
  };
}

}  // namespace

Result<ClientResponse> read_range(KvStateMachine& kv, const ClientRequest& request) {
  KvRange range;
  range.from = request.key;
  range.to = request.range_end;
  range.limit = request.range_limit;
  range.bytes_max = request.range_bytes_max == 0 ? range_bytes_max : std::min(request.range_bytes_max, range_bytes_max);
  range.keys_only = request.keys_only;
  range.count_only = request.count_only;
  KV_ASSIGN_OR_RETURN(KvRangeResult result, kv.range(range));
  ClientResponse response;
  response.request_id = request.request_id;
  response.keys = std::move(result.keys);
  response.values = std::move(result.values);
  response.range_count = result.count;
  response.more = result.more;
  return response;
}

ManyValues many_values(std::vector<std::optional<std::string>>&& read) {
  ManyValues answer;
  answer.values.resize(read.size());
  answer.found.assign(read.size(), 0);
  for (size_t i = 0; i < read.size(); ++i) {
    if (!read[i]) continue;
    answer.found[i] = 1;
    answer.values[i] = std::move(*read[i]);
  }
  return answer;
}

namespace {

applied_reader_actor::behavior_type applied_reader(applied_reader_actor::pointer self,
                                                   std::shared_ptr<AppliedReads> reads,
                                                   state_machine_actor state_machine) {
  return {
      [self, reads, state_machine](kv_get_many_atom, std::vector<std::string>& keys, uint64_t read_index)
          -> caf::result<std::vector<std::string>, std::vector<uint8_t>, uint64_t> {
        const uint64_t applied = reads->applied_index();
        if (applied < read_index) return self->delegate(state_machine, kv_get_many_atom_v, std::move(keys), read_index);
        auto read = reads->get_many(keys);
        if (!read.is_ok()) return to_error(read.status());
        ManyValues answer = many_values(std::move(*read));
        return {std::move(answer.values), std::move(answer.found), applied};
      },
  };
}

}  // namespace

applied_reader_actor spawn_applied_reader(caf::actor_system& system, std::shared_ptr<AppliedReads> reads,
                                          state_machine_actor state_machine, bool detached) {
  if (detached) return spawn_on_own_thread(system, "kv.reader", applied_reader, std::move(reads), std::move(state_machine));
  return system.spawn(applied_reader, std::move(reads), std::move(state_machine));
}

state_machine_actor spawn_state_machine(caf::actor_system& system, StateMachineConfig config) {
  if (config.persistence.clean_stop) config.persistence.clean_stop->add_writer();  // reported by the exit hook
  if (config.detached && config.on_network_thread && network_lanes_of(system, true) != nullptr) {
    return spawn_fun_on_network_thread(system, true, state_machine, std::move(config));
  }
  if (config.detached) return spawn_on_own_thread(system, "kv.state", state_machine, std::move(config));
  return system.spawn(state_machine, std::move(config));
}

}  // namespace keyval
