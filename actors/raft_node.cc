// The raft node actor (see raft_node.h).
#include "actors/raft_node.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <utility>
#include <optional>

#include "actors/client_addresses.h"
#include "actors/client_protocol.h"
#include "actors/node_scheduler.h"
#include "actors/raft_wire.h"
#include "actors/snapshot_send.h"
#include "actors/record_batch.h"
#include "storage/codec.h"

namespace keyval {
namespace {

class RaftNodeActor : public raft_node_actor::base {
 public:
  RaftNodeActor(caf::actor_config& cfg, RaftNodeConfig config, Persistence persistence,
                raft::RecoveredState recovered)
      : raft_node_actor::base(cfg),
        config_(std::move(config)),
        persistence_(std::in_place, std::move(persistence)),
        core_(config_.raft, std::move(recovered)),
        addresses_(config_.raft.node_id, config_.client_address, config_.raft.voters) {
    applied_index_ = core_.commit_index();  // the recovered applied index
  }

  void on_exit() override {
    // Handles to other actors (which may hold this one) are released with the actor.
    config_.transport = nullptr;
    config_.state_machine = nullptr;
    directory_subscribers_.clear();
    persistence_.reset();
    for (auto& promise : forced_now_) promise.deliver(to_error(Status::unsupported("node stopped")));
    for (auto& promise : forced_next_) promise.deliver(to_error(Status::unsupported("node stopped")));
    forced_now_.clear();
    forced_next_.clear();
    for (auto& [id, promise] : reads_) promise.deliver(false, uint64_t{0}, uint64_t{0});
    reads_.clear();
    if (handoff_) {
      for (auto& promise : handoff_->waiting) {
        promise.deliver(static_cast<uint64_t>(TransferOutcome::failed), uint64_t{0}, uint64_t{0},
                        std::string("node stopped"));
      }
      for (auto& finished : handoff_->on_finish) finished(TransferOutcome::failed, 0, "node stopped");
      handoff_.reset();
    }
    for (auto& change : changes_) {
      change.promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::failed), uint64_t{0}, change.index, change.term,
                             std::string("node stopped"));
    }
    changes_.clear();
  }

  behavior_type make_behavior() override {
    last_tick_at_ = clock().now();
    schedule_tick();
    track_configuration();
    return {
        [this](raft_tick_atom, uint64_t epoch) {
          if (epoch != tick_epoch_) return;  // a timer from an earlier schedule
          tick_timer_pending_ = false;
          catch_up_ticks();
          after_input();
        },
        [this](raft_message_atom, const Frame& frame) {
          std::string sender_client_address;
          auto message = decode_raft_message(frame.bytes.data(), frame.bytes.size(), &sender_client_address);
          if (!message.is_ok()) {
            log("dropped malformed raft message: " + message.status().to_string());
            return;
          }
          if (message->to != core_.id()) return;
          if (addresses_.learn(message->from, sender_client_address)) {
            directory_changed_ = true;
            log("node " + std::to_string(message->from) + " serves clients on " + sender_client_address);
          }
          if (message->type == raft::MessageType::snapshot_chunk) return on_chunk(*message);
          if (message->type == raft::MessageType::snapshot_chunk_response) return on_chunk_response(*message);
          catch_up_ticks();  // the core weighs a message against its tick count (in_lease)
          core_.step(*message);
          after_input();
        },
        [this](raft_propose_atom, std::vector<uint8_t>& payload) -> caf::result<bool, uint64_t, uint64_t, uint64_t> {
          raft::ProposeResult result;
          if (!payload.empty()) result = core_.propose(std::move(payload));
          else result.leader_hint = core_.leader_id();
          if (config_.metrics) (result.accepted ? config_.metrics->proposals_accepted : config_.metrics->proposals_refused).add();
          after_input();
          return {result.accepted, result.index, result.term, result.leader_hint};
        },
        [this](raft_propose_many_atom,
               std::vector<std::vector<uint8_t>>& payloads) -> caf::result<bool, uint64_t, uint64_t, uint64_t> {
          // One handler, so no input between them: all are accepted at consecutive indexes
          // of one term, or none is (the core refuses the first as it would the rest).
          // An empty payload is reserved for the no-op: such a batch is refused whole.
          raft::ProposeResult first;
          uint64_t accepted = 0;
          const bool valid = !payloads.empty() && std::none_of(payloads.begin(), payloads.end(),
                                                              [](const auto& payload) { return payload.empty(); });
          for (auto& payload : payloads) {
            if (!valid) break;
            raft::ProposeResult result = core_.propose(std::move(payload));
            if (!result.accepted) {
              if (accepted == 0) first = result;
              break;
            }
            if (accepted++ == 0) first = result;
          }
          if (accepted == 0 && first.leader_hint == 0) first.leader_hint = core_.leader_id();
          KV_ASSERT(accepted == 0 || accepted == payloads.size());
          if (config_.metrics) {
            (accepted > 0 ? config_.metrics->proposals_accepted : config_.metrics->proposals_refused)
                .add(accepted > 0 ? accepted : payloads.size());
          }
          after_input();
          return {accepted > 0, first.index, first.term, first.leader_hint};
        },
        [this](raft_read_atom) -> caf::result<bool, uint64_t, uint64_t> {
          const uint64_t request_id = ++read_request_id_;
          uint64_t hint = 0;
          if (!core_.read_index(request_id, &hint)) return {false, uint64_t{0}, hint};
          auto promise = make_response_promise<bool, uint64_t, uint64_t>();
          reads_.emplace(request_id, promise);
          after_input();
          return promise;
        },
        [this](raft_status_atom) -> caf::result<uint64_t, uint64_t, uint64_t, uint64_t, uint64_t> {
          return {static_cast<uint64_t>(core_.role()), core_.leader_id(), core_.current_term(), core_.commit_index(),
                  core_.durable_index()};
        },
        [this](snapshot_status_atom) -> caf::result<uint64_t, uint64_t, uint64_t, uint64_t> {
          return {core_.snapshot_index(), core_.snapshot_term(), core_.log().first_index(), core_.log().last_index()};
        },
        [this](client_directory_atom, caf::actor& subscriber) {
          directory_subscribers_.push_back(subscriber);
          send_directory(subscriber);
        },
        [this](snapshot_take_atom) -> caf::result<uint64_t, uint64_t, uint64_t> {
          if (!persistence_->snapshotter()) return to_error(Status::unsupported("this node has no snapshotter"));
          auto promise = make_response_promise<uint64_t, uint64_t, uint64_t>();
          forced_next_.push_back(promise);
          maybe_snapshot();
          return promise;
        },
        [this](leader_transfer_atom, uint64_t target) { return start_handoff(target); },
        [this](member_change_atom, uint64_t kind, uint64_t node_id, std::string& peer_address,
               std::string& client_address) {
          return change_membership(static_cast<raft::ConfChangeKind>(kind),
                                   Member{node_id, std::move(peer_address), std::move(client_address), true});
        },
        [this](member_list_atom) -> caf::result<Frame> { return Frame{encode_client_response(membership_view())}; },
    };
  }

 private:
  using ReadPromise = caf::typed_response_promise<bool, uint64_t, uint64_t>;

  void log(const std::string& line) {
    const std::string text = "raft node " + std::to_string(core_.id()) + ": " + line;
    if (config_.log_in_term) {
      config_.log_in_term(core_.current_term(), text);
    } else if (config_.log) {
      config_.log(text);
    }
  }

  // Ticks. The core counts ticks of config_.tick_interval, on boundaries last_tick_at_ +
  // k * interval. While the coming ticks would only count (Core::quiet_ticks: a follower
  // waiting out its election timeout; no snapshot transfer or handoff counting here), one
  // timer stands for all of them, due at the first tick that may act; a peer's message
  // first catches the count up, so the core weighs it with the ticks a timer per tick would
  // have given it. A follower hearing heartbeats wakes about once an election timeout, not
  // at every tick. A timer never moves later: a reset count (a heartbeat) lets it fire early,
  // and it is set anew from there.
  uint32_t quiet_ticks() const {
    if (!transfers_.empty() || handoff_) return 0;
    return core_.quiet_ticks();
  }

  void tick_once() {
    core_.tick();
    tick_transfers();
    tick_handoff();
  }

  // Every tick boundary passed is delivered, but at most one that may act: a node that fell
  // behind (its thread starved, its process stopped) gets one such tick, as a timer per
  // tick would have given it one, not a burst of elections or quorum checks.
  caf::actor_clock::duration_type tick_interval() const {
    return std::chrono::duration_cast<caf::actor_clock::duration_type>(config_.tick_interval);
  }

  void catch_up_ticks() {
    const auto interval = tick_interval();
    if (interval.count() <= 0) return;
    const auto now = clock().now();
    while (now - last_tick_at_ >= interval) {
      const bool may_act = quiet_ticks() == 0;
      last_tick_at_ += interval;
      tick_once();
      if (may_act) {
        last_tick_at_ += ((now - last_tick_at_) / interval) * interval;
        break;
      }
    }
  }

  // After every input: the timer is due at the first tick that may act (or earlier).
  void schedule_tick() {
    const auto due = last_tick_at_ + tick_interval() * (1 + static_cast<int64_t>(quiet_ticks()));
    if (tick_timer_pending_ && tick_timer_due_ <= due) return;
    ++tick_epoch_;  // a timer set before, due later, is now stale
    tick_timer_pending_ = true;
    tick_timer_due_ = due;
    const auto now = clock().now();
    delayed_send(this, due > now ? due - now : caf::actor_clock::duration_type::zero(), raft_tick_atom_v, tick_epoch_);
  }

  void after_input() {
    schedule_tick();
    drain();
    if (refuse_if_told()) {
      if (config_.observe) config_.observe(core_);
      return;
    }
    track_configuration();
    check_handoff();
    log_regressions();
    log_repair_end();
    publish_directory();
    publish_metrics();
    if (config_.observe) config_.observe(core_);
  }

  // Pushed after every input rather than asked at scrape time: see metrics/node_metrics.h.
  void publish_metrics() {
    if (!config_.metrics) return;
    metrics::NodeMetrics& metrics = *config_.metrics;
    metrics.term.set(static_cast<int64_t>(core_.current_term()));
    metrics.leader_id.set(static_cast<int64_t>(core_.leader_id()));
    metrics.commit_index.set(static_cast<int64_t>(core_.commit_index()));
    if (!metrics_role_ || *metrics_role_ != core_.role()) {
      metrics_role_ = core_.role();
      metrics.set_role(raft::role_name(core_.role()));
    }
  }

  // A node on probation that a peer says it counted before (raft/probation.cc): its data is
  // not the data it voted with. It stops (fail-stop) and says how to replace it; the same
  // command line refuses again. True when it stopped.
  bool refuse_if_told() {
    if (core_.refusal().empty()) return false;
    if (refused_) return true;
    refused_ = true;
    const std::string id = std::to_string(core_.id());
    const std::string why = "node " + id + " refuses to vote or acknowledge under its id: " + core_.refusal() +
                            ". A voter cannot be re-created with an empty data directory under the same id. Replace "
                            "it: keyval member remove " + id + ", then keyval member add NEW_ID --peer HOST:PORT "
                            "--client HOST:PORT and start the new node with --join (docs/MEMBERSHIP.md)";
    log(why);
    quit(to_error(Status::invalid_argument(why)));
    return true;
  }

  // The other side: a probation answer saying we counted the asker before. Logged once per
  // asker: that node lost its data and must be replaced.
  void log_probation_answer(const raft::Message& message) {
    if (message.type != raft::MessageType::probation_answer || !message.probation_counted) return;
    if (!refused_peers_logged_.insert(message.to).second) return;
    const std::string id = std::to_string(message.to);
    log("node " + id + " came back with a new data directory (it asks whether its vote was ever counted, and this "
        "node counted it): it refuses to take part. Replace it: keyval member remove " + id +
        ", then add a new member with a new id (docs/MEMBERSHIP.md)");
  }

  // A node that started repairing (recovery discarded a log it could not read) says when a
  // leader's entries repaired it: from then on it votes again.
  void log_repair_end() {
    if (core_.in_repair()) {
      repairing_ = true;
      return;
    }
    if (!repairing_) return;
    repairing_ = false;
    log("repaired from leader " + std::to_string(core_.leader_id()) + " in term " +
        std::to_string(core_.current_term()) + ": the log matches it through its commit index (log ends at " +
        std::to_string(core_.log().last_index()) + "); votes again");
  }

  // A follower whose log went backwards (its data directory wiped or replaced under the same
  // id, or a repairing node that discarded what it could not read): logged once per event. Its
  // match index is kept, but commit counts it only for what it holds again (raft/progress.h).
  void log_regressions() {
    if (core_.role() != raft::Role::leader) return;
    for (const auto& [peer, progress] : core_.progress_by_peer()) {
      if (progress.regressions == 0) continue;  // the common case: nothing to look up
      uint64_t& logged = regressions_logged_[peer];
      if (progress.regressions > logged && progress.regressed) {
        log("follower " + std::to_string(peer) + "'s log went backwards: it holds entries only through " +
            std::to_string(progress.regressed_to) + " but had acknowledged " + std::to_string(progress.match_index) +
            " (a repairing node, or a wiped or replaced data directory); it counts for commit only for what it "
            "holds again. A wiped directory must be replaced: keyval member remove " + std::to_string(peer) +
            ", then add a new member with a new id (docs/MEMBERSHIP.md)");
      }
      logged = progress.regressions;
    }
  }

  // ---- leadership transfer (§3.10) ----

  using HandoffPromise = caf::typed_response_promise<uint64_t, uint64_t, uint64_t, std::string>;
  using HandoffResult = caf::result<uint64_t, uint64_t, uint64_t, std::string>;

  struct Handoff {
    uint64_t target = 0;
    uint64_t term = 0;                     // the leader's term when it began
    caf::actor_clock::time_point started;  // the actor clock: virtual in the simulator
    uint32_t ticks_without_leader = 0;     // after stepping down, until someone leads
    std::vector<HandoffPromise> waiting;
    // Others waiting for the end (a remove of this leader): outcome, leader, why.
    std::vector<std::function<void(TransferOutcome, uint64_t, const std::string&)>> on_finish;
  };

  static HandoffResult handoff_answer(TransferOutcome outcome, uint64_t leader, uint64_t term, std::string why) {
    return {static_cast<uint64_t>(outcome), leader, term, std::move(why)};
  }

  // The follower whose log reaches furthest (the fewest entries to send before timeout_now);
  // the lowest id among equals. 0 when there is none.
  // Learners are passed over: only a voter can take leadership.
  uint64_t most_up_to_date_follower() const {
    uint64_t best = 0;
    uint64_t best_match = 0;
    const std::vector<Member>& configuration = core_.configuration();
    for (const auto& [peer, progress] : core_.progress_by_peer()) {
      if (!configuration.empty() && !raft::is_voter(configuration, peer)) continue;
      if (best == 0 || progress.match_index > best_match) {
        best = peer;
        best_match = progress.match_index;
      }
    }
    return best;
  }

  // Starts a hand-off to `target` (0: the most up-to-date follower), or joins the one running
  // to the same target. The refusal's why, or nothing once a hand-off runs.
  std::optional<std::string> begin_handoff(uint64_t target) {
    const uint64_t term = core_.current_term();
    if (target == 0) target = most_up_to_date_follower();
    if (target == 0) return std::string("no follower to hand over to");
    if (handoff_ && handoff_->target != target) {
      return "a transfer to node " + std::to_string(handoff_->target) + " is in progress";
    }
    if (handoff_) return std::nullopt;
    const raft::TransferStart start = core_.transfer_leadership(target);
    if (start != raft::TransferStart::started) {
      return "node " + std::to_string(target) + ": " + raft::transfer_start_name(start);
    }
    handoff_ = Handoff{target, term, clock().now(), 0, {}, {}};
    const raft::Progress* progress = core_.progress(target);
    log("leadership transfer to node " + std::to_string(target) + " started in term " + std::to_string(term) +
        " (its log at " + std::to_string(progress != nullptr ? progress->match_index : 0) + " of " +
        std::to_string(core_.log().last_index()) + ")");
    return std::nullopt;
  }

  HandoffResult start_handoff(uint64_t target) {
    const uint64_t term = core_.current_term();
    if (core_.role() != raft::Role::leader) {
      return handoff_answer(TransferOutcome::not_leader, core_.leader_id(), term, "not the leader");
    }
    if (auto refused = begin_handoff(target)) return handoff_answer(TransferOutcome::refused, core_.id(), term, *refused);
    auto promise = make_response_promise<uint64_t, uint64_t, uint64_t, std::string>();
    handoff_->waiting.push_back(promise);
    after_input();
    return promise;
  }

  // After every input: is the transfer over?
  void check_handoff() {
    if (!handoff_) return;
    const uint64_t target = handoff_->target;
    if (core_.role() == raft::Role::leader) {
      if (core_.transfer_target() == target) return;  // still catching it up, or its election is on
      return finish_handoff(TransferOutcome::failed, core_.id(),
                            "abandoned: node " + std::to_string(target) +
                                " did not take over within an election timeout; this node leads on");
    }
    const uint64_t leader = core_.leader_id();
    if (leader == target) return finish_handoff(TransferOutcome::done, leader, "");
    if (leader != 0) {
      return finish_handoff(TransferOutcome::failed, leader, "abandoned: node " + std::to_string(leader) +
                                                                 " was elected instead of node " + std::to_string(target));
    }
  }

  // Stepped down and no leader heard of yet: bounded by two election timeouts.
  void tick_handoff() {
    if (!handoff_ || core_.role() == raft::Role::leader) return;
    if (++handoff_->ticks_without_leader < 2 * config_.raft.election_timeout_ticks_max) return;
    finish_handoff(TransferOutcome::failed, 0, "abandoned: no leader heard of within two election timeouts");
  }

  void finish_handoff(TransferOutcome outcome, uint64_t leader, const std::string& why) {
    Handoff handoff = std::move(*handoff_);
    handoff_.reset();
    const double ms = std::chrono::duration<double, std::milli>(clock().now() - handoff.started).count();
    char took[40];
    std::snprintf(took, sizeof took, "%.1f ms", ms);
    const std::string target = "leadership transfer to node " + std::to_string(handoff.target);
    if (outcome == TransferOutcome::done) {
      log(target + " completed in " + took + ": it leads in term " + std::to_string(core_.current_term()));
    } else {
      log(target + " " + why + " (after " + took + ")");
    }
    for (auto& promise : handoff.waiting) {
      promise.deliver(static_cast<uint64_t>(outcome), leader, core_.current_term(), why);
    }
    for (auto& finished : handoff.on_finish) finished(outcome, leader, why);
  }

  // ---- membership (raft/membership.h, thesis §4.1) ----

  using ChangePromise = caf::typed_response_promise<uint64_t, uint64_t, uint64_t, uint64_t, std::string>;
  using ChangeResult = caf::result<uint64_t, uint64_t, uint64_t, uint64_t, std::string>;

  // A proposed change waiting for its entry to come out committed.
  struct PendingChange {
    uint64_t index = 0;
    uint64_t term = 0;
    std::string what;  // "add learner 4", for the log line
    ChangePromise promise;
  };

  static ChangeResult change_answer(ConfChangeOutcome outcome, uint64_t leader, uint64_t index, uint64_t term,
                                    std::string why) {
    return {static_cast<uint64_t>(outcome), leader, index, term, std::move(why)};
  }

  ChangeResult change_membership(raft::ConfChangeKind kind, const Member& member) {
    const std::string what = std::string(raft::conf_change_kind_name(kind)) + " node " + std::to_string(member.id);
    if (kind == raft::ConfChangeKind::remove && member.id == core_.id() && core_.role() == raft::Role::leader) {
      return remove_this_leader();
    }
    raft::ConfChangeResult result = core_.propose_conf_change(kind, member);
    if (result.refusal == raft::ConfChangeRefusal::not_leader) {
      return change_answer(ConfChangeOutcome::not_leader, result.leader_hint, 0, 0, "not the leader");
    }
    if (result.refusal != raft::ConfChangeRefusal::none) {
      log("membership change refused (" + what + "): " + raft::conf_change_refusal_name(result.refusal) + ": " +
          result.why);
      // A new leader's first commit, a hand-off under way: over within moments, worth a retry.
      const bool passing = result.refusal == raft::ConfChangeRefusal::no_commit_in_term ||
                           result.refusal == raft::ConfChangeRefusal::transfer_in_progress;
      return change_answer(passing ? ConfChangeOutcome::retry : ConfChangeOutcome::refused, core_.id(), 0, 0,
                           std::string(raft::conf_change_refusal_name(result.refusal)) + ": " + result.why);
    }
    log("membership change proposed (" + what + ") at index " + std::to_string(result.index) + " in term " +
        std::to_string(result.term));
    auto promise = make_response_promise<uint64_t, uint64_t, uint64_t, uint64_t, std::string>();
    changes_.push_back(PendingChange{result.index, result.term, what, promise});
    after_input();
    return promise;
  }

  // The leader cannot remove itself (§4.2.2 would have it lead a configuration it is not in):
  // it hands leadership to its most up-to-date voter first, and once that is over answers
  // not_leader naming the new leader, where the client asks again.
  ChangeResult remove_this_leader() {
    const uint64_t term = core_.current_term();
    if (auto refused = begin_handoff(0)) {
      return change_answer(ConfChangeOutcome::refused, core_.id(), 0, 0,
                           "remove_leader: this node leads and cannot hand over before leaving: " + *refused);
    }
    log("removing this leader: handing leadership to node " + std::to_string(handoff_->target) + " first");
    auto promise = make_response_promise<uint64_t, uint64_t, uint64_t, uint64_t, std::string>();
    handoff_->on_finish.push_back([promise, term](TransferOutcome outcome, uint64_t leader,
                                                  const std::string& why) mutable {
      if (outcome == TransferOutcome::done) {
        promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::not_leader), leader, uint64_t{0}, term,
                        "leadership moved to node " + std::to_string(leader) + ": ask it to remove this node");
      } else {
        promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::failed), leader, uint64_t{0}, term,
                        "the leadership hand-off before the remove failed: " + why);
      }
    });
    after_input();
    return promise;
  }

  // Committed entries answer the changes waiting for them: done when the entry at the change's
  // index has its term, lost when another leader's entry took that index.
  void settle_changes(const std::vector<Entry>& committed) {
    if (changes_.empty() || committed.empty()) return;
    const uint64_t first = committed.front().index;
    const uint64_t last = committed.back().index;
    for (auto change = changes_.begin(); change != changes_.end();) {
      if (change->index < first || change->index > last) {
        ++change;
        continue;
      }
      const Entry& entry = committed[change->index - first];
      if (entry.term == change->term) {
        log("membership change committed (" + change->what + ") at index " + std::to_string(change->index));
        change->promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::done), core_.id(), change->index,
                                change->term, std::string());
      } else {
        change->promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::lost), core_.leader_id(), change->index,
                                change->term, "another entry (term " + std::to_string(entry.term) +
                                                  ") took index " + std::to_string(change->index));
      }
      change = changes_.erase(change);
    }
  }

  // A snapshot installed through `index`: changes at or below it were never seen committed here.
  void fail_changes_through(uint64_t index) {
    for (auto change = changes_.begin(); change != changes_.end();) {
      if (change->index > index) {
        ++change;
        continue;
      }
      change->promise.deliver(static_cast<uint64_t>(ConfChangeOutcome::failed), core_.leader_id(), change->index,
                              change->term, "a snapshot through index " + std::to_string(index) +
                                                " replaced the log before the change's entry was seen: check with "
                                                "member list");
      change = changes_.erase(change);
    }
  }

  // member_list: the configuration in use, with match indexes when this node leads.
  ClientResponse membership_view() const {
    ClientResponse response;
    response.node_id = core_.id();
    response.leader_hint = core_.leader_id();
    response.term = core_.current_term();
    response.commit_index = core_.commit_index();
    response.role = raft::role_name(core_.role());
    response.configuration_index = core_.configuration_index();
    response.configuration_committed = core_.configuration_index() <= core_.commit_index();
    const bool leads = core_.role() == raft::Role::leader;
    for (const Member& member : core_.configuration()) {
      ConfigurationMember view{member.id, member.address, member.client_address, member.learner, 0};
      if (view.client_address.empty()) view.client_address = addresses_.address_of(member.id);
      if (leads) {
        const raft::Progress* progress = core_.progress(member.id);
        view.match_index = member.id == core_.id() ? core_.durable_index() : progress ? progress->match_index : 0;
      }
      response.configuration.push_back(std::move(view));
    }
    return response;
  }

  static std::string describe(const std::vector<Member>& members) {
    std::string text;
    for (const Member& member : members) {
      text += (text.empty() ? "" : ", ") + std::to_string(member.id) + (member.learner ? " (learner)" : "") + " at " +
              member.address;
    }
    return text.empty() ? "no members" : text;
  }

  // After every input: the configuration in use changed (a new entry, a truncation, a
  // snapshot)? Then the address book and the transport follow it, with one log line.
  void track_configuration() {
    const uint64_t index = core_.configuration_index();
    if (configuration_tracked_ && index == tracked_configuration_index_ &&
        core_.snapshot_index() == tracked_snapshot_index_) {
      return;
    }
    tracked_configuration_index_ = index;
    tracked_snapshot_index_ = core_.snapshot_index();
    const std::vector<Member>& members = core_.configuration();
    if (configuration_tracked_ && members == tracked_members_) return;
    configuration_tracked_ = true;
    tracked_members_ = members;
    if (members.empty()) return;  // a joining node, until the leader's log or snapshot names one
    log("configuration in use (entry " + std::to_string(index) + "): " + describe(members));
    std::vector<uint64_t> ids;
    for (const Member& member : members) ids.push_back(member.id);
    if (addresses_.set_members(ids)) directory_changed_ = true;
    for (const Member& member : members) {
      if (addresses_.learn(member.id, member.client_address)) directory_changed_ = true;
    }
    const bool member = core_.is_member();
    if (was_member_ && !member) {
      log("removed from the configuration at index " + std::to_string(index) +
          ": this node no longer votes, nor campaigns once the removal commits; stop it then (its data directory is of no further use)");
    }
    was_member_ = member;
    // A configuration that does not list this node is an old one a joining node replays from
    // the leader's log (or the one that removed it): its links stay with the members it knows.
    if (!config_.transport_follows_configuration || !config_.transport || !member) return;
    std::vector<uint64_t> peer_ids;
    std::vector<std::string> peer_addresses;
    for (const Member& other : members) {
      if (other.id == core_.id()) continue;
      // A configuration without addresses (Config::voters of an older directory) says nothing
      // about where peers are: the transport keeps the flags' addresses.
      if (other.address.empty()) return;
      peer_ids.push_back(other.id);
      peer_addresses.push_back(other.address);
    }
    caf::anon_send(config_.transport, transport_peers_atom_v, std::move(peer_ids), std::move(peer_addresses));
  }

  // ---- where members serve clients (actors/client_addresses.h) ----

  void send_directory(const caf::actor& subscriber) {
    std::vector<uint64_t> ids;
    std::vector<std::string> addresses;
    for (const ClientMember& member : addresses_.members()) {
      ids.push_back(member.node_id);
      addresses.push_back(member.client_address);
    }
    caf::anon_send(subscriber, client_directory_atom_v, core_.leader_id(), std::move(ids), std::move(addresses));
  }

  // Tells the subscribers (the client gateway) when the leader or an address changed.
  void publish_directory() {
    if (directory_subscribers_.empty()) return;
    if (!directory_changed_ && core_.leader_id() == published_leader_) return;
    directory_changed_ = false;
    published_leader_ = core_.leader_id();
    for (const caf::actor& subscriber : directory_subscribers_) send_directory(subscriber);
  }

  // Takes Readies until the core has nothing more. Persists are pipelined (thesis §10.2.1):
  // the next Ready is taken while earlier persists are still being synced, so a leader's new
  // entries go to its followers while its own fsync runs, and a follower's next append joins
  // the WAL's next group commit. This is safe because the WAL writer makes requests durable in
  // the order they were sent and answers them in that order, and because the core holds back
  // every message that promises durability until durable()/metadata_durable() report it.
  // Two kinds of Ready wait for every earlier persist, and hold back later ones until theirs
  // is durable:
  //   * one that cuts the log (log_truncated_to): an earlier persist's report names the last
  //     entry it wrote; once a later Ready has cut and rewritten that suffix, an entry with the
  //     same (index, term) can be back in the log while what is durable on disk is the cut
  //     one, and the report would claim too much;
  //   * one that installs a snapshot: the state machine is replaced in its persist's reply,
  //     and no committed entry after it may be applied before that.
  // At most persists_in_flight_max persists are outstanding: beyond them the core's Readies
  // wait (its entries stay in memory, and later proposals join the next Ready: batching).
  void drain() {
    while (true) {
      if (exclusive_in_flight_) return;
      raft::Ready ready;
      if (held_ready_) {
        if (persists_in_flight_ > 0) return;
        ready = std::move(*held_ready_);
        held_ready_.reset();
      } else {
        if (persists_in_flight_ >= std::max<uint32_t>(1, config_.persists_in_flight_max) || !core_.has_ready()) return;
        ready = core_.take_ready();
        if ((ready.snapshot || ready.log_truncated_to) && persists_in_flight_ > 0) {
          held_ready_ = std::move(ready);
          return;
        }
      }
      if (ready.soft_state) on_soft_state(*ready.soft_state);
      if (ready.snapshot || ready.metadata || ready.log_truncated_to || !ready.entries.empty()) persist(ready);
      send_messages(ready.messages);
      if (!ready.committed_entries.empty()) {
        apply(ready.committed_entries);
        settle_changes(ready.committed_entries);
      }
      if (ready.soft_state && ready.soft_state->role != raft::Role::leader) transfers_.clear();
      for (const raft::ReadState& read : ready.read_states) answer_read(read.request_id, true, read.read_index);
    }
  }

  void persist(const raft::Ready& ready) {
    std::optional<Metadata> metadata = ready.metadata;
    std::optional<std::pair<uint64_t, uint64_t>> last;
    if (!ready.entries.empty()) last = std::make_pair(ready.entries.back().index, ready.entries.back().term);
    std::optional<SnapshotMetadata> snapshot;
    if (ready.snapshot) snapshot = installing_metadata(ready.snapshot->index, ready.snapshot->term);
    const bool exclusive = ready.snapshot.has_value() || ready.log_truncated_to.has_value();
    ++persists_in_flight_;
    exclusive_in_flight_ = exclusive;
    if (config_.persist_issued) config_.persist_issued(persists_in_flight_, core_.role() == raft::Role::leader);
    persistence_->persist(this, Persistence::batch(ready.log_truncated_to, ready.metadata, ready.entries, snapshot),
                          [this, metadata, last, snapshot, exclusive](const Status& status, uint64_t) {
                            --persists_in_flight_;
                            if (exclusive) exclusive_in_flight_ = false;
                            if (!status.is_ok()) {
                              log("persist failed, stopping: " + status.to_string());
                              quit(to_error(status));
                              return;
                            }
                            if (snapshot) installed(*snapshot);
                            if (metadata) core_.metadata_durable(*metadata);
                            if (last) core_.durable(last->first, last->second);
                            after_input();
                          });
  }

  void on_soft_state(const raft::SoftState& soft_state) {
    const std::string term = "term " + std::to_string(core_.current_term());
    const std::string leader = soft_state.leader_id == 0 ? "no leader" : "leader " + std::to_string(soft_state.leader_id);
    if (soft_state.role == raft::Role::leader) {
      log("elected leader in " + term);
    } else if (last_role_ == raft::Role::leader) {
      log("stepped down in " + term + " (" + raft::role_name(soft_state.role) + ", " + leader + ")");
    } else {
      log(std::string(raft::role_name(soft_state.role)) + " in " + term + ", " + leader);
    }
    last_role_ = soft_state.role;
    if (soft_state.role == raft::Role::leader) return;
    // The core dropped its pending reads when it stopped leading: tell their requesters.
    std::map<uint64_t, ReadPromise> reads = std::move(reads_);
    reads_.clear();
    for (auto& [id, promise] : reads) promise.deliver(false, uint64_t{0}, soft_state.leader_id);
  }

  void answer_read(uint64_t request_id, bool ok, uint64_t read_index) {
    auto read = reads_.find(request_id);
    if (read == reads_.end()) return;
    read->second.deliver(ok, read_index, core_.leader_id());
    reads_.erase(read);
  }

  void send_messages(const std::vector<raft::Message>& messages) {
    for (const raft::Message& message : messages) {
      // The core names the snapshot; its bytes travel as chunks this actor streams.
      if (message.type == raft::MessageType::install_snapshot) {
        start_transfer(message);
        continue;
      }
      log_probation_answer(message);
      send_message(message);
    }
  }

  void send_message(const raft::Message& message) {
    if (config_.transport) {
      caf::anon_send(config_.transport, transport_send_atom_v, message.to,
                     Frame{encode_raft_message(message, config_.client_address)});
    }
  }

  void apply(const std::vector<Entry>& committed) {
    if (config_.apply) config_.apply(committed);
    if (config_.state_machine) send(config_.state_machine, apply_atom_v, Frame{encode_entries(committed)});
    for (const Entry& entry : committed) applied_bytes_since_snapshot_ += entry.payload().size();
    applied_index_ = committed.back().index;
    maybe_snapshot();
  }

  // ---- taking snapshots (§7) and compaction ----

  bool snapshot_due() const {
    if (!forced_next_.empty() || replacement_next_) return true;
    if (applied_index_ < snapshot_retry_at_) return false;
    const uint64_t entries = applied_index_ > core_.snapshot_index() ? applied_index_ - core_.snapshot_index() : 0;
    const bool amortized = config_.snapshot_size_divisor == 0 ||
                           applied_bytes_since_snapshot_ >= last_snapshot_bytes_ / config_.snapshot_size_divisor;
    if (config_.snapshot_entries > 0 && entries >= config_.snapshot_entries && amortized) return true;
    return config_.snapshot_bytes > 0 && applied_bytes_since_snapshot_ >= config_.snapshot_bytes && entries > 0;
  }

  void maybe_snapshot() {
    if (snapshot_in_progress_ || !persistence_ || !persistence_->snapshotter() || !snapshot_due()) return;
    snapshot_in_progress_ = true;
    snapshot_index_before_ = core_.snapshot_index();
    forced_now_ = std::move(forced_next_);
    forced_next_.clear();
    replacement_now_ = std::exchange(replacement_next_, false);
    applied_bytes_since_snapshot_ = 0;
    const auto started = clock().now();
    // The state machine snapshots at its own applied index, at most applied_index_: the
    // configuration there is the best known now; record_snapshot() sets the exact one.
    SnapshotMetadata configuration{0, 0, configuration_at(applied_index_)};
    request(persistence_->snapshotter(), caf::infinite, snapshot_take_atom_v,
            Frame{encode_snapshot_metadata(configuration)})
        .then(
            [this, started](Frame& frame, uint64_t file_bytes, uint64_t keys) {
              auto taken = decode_snapshot_metadata(frame.bytes.data(), frame.bytes.size(), "snapshot taken");
              if (!taken.is_ok()) return snapshot_finished(taken.status(), 0, 0, 0);
              const double ms = std::chrono::duration<double, std::milli>(clock().now() - started).count();
              record_snapshot(*taken, file_bytes, keys, ms);
            },
            [this](caf::error& error) {
              if (!replacement_now_) log("snapshot failed, the previous one stays: " + to_status(error).to_string());
              snapshot_finished(to_status(error), 0, 0, 0);
            });
  }

  // The snapshot file is durable; the WAL record makes it the node's base (the commit point).
  void record_snapshot(SnapshotMetadata taken, uint64_t file_bytes, uint64_t keys, double ms) {
    const uint64_t index = taken.last_included_index;
    if (index >= core_.snapshot_index()) taken.configuration = configuration_at(index);
    const uint64_t term = taken.last_included_term;
    if (replacement_now_ && index < core_.snapshot_index()) {
      // The state machine is behind the base (an install not yet applied): the file taken is
      // not the one transfers read, which stays missing.
      return snapshot_finished(Status::busy("the state machine is at index " + std::to_string(index) +
                                            ", behind the snapshot to replace"),
                               0, 0, 0);
    }
    if (index <= core_.snapshot_index()) {
      // Nothing applied since the last one (or an install overtook it): that one stands (a
      // replacement at the same index and term was published under its name).
      return snapshot_finished(Status::ok(), core_.snapshot_index(), core_.snapshot_term(), file_bytes);
    }
    char line[160];
    std::snprintf(line, sizeof line, "snapshot taken at index %llu (term %llu): %llu keys, %llu bytes in %.1f ms",
                  static_cast<unsigned long long>(index), static_cast<unsigned long long>(term),
                  static_cast<unsigned long long>(keys), static_cast<unsigned long long>(file_bytes), ms);
    log(line);
    persistence_->persist(this, {Record::snapshot(taken)}, [this, index, term, file_bytes](const Status& status, uint64_t) {
      if (!status.is_ok()) {
        log("persist failed, stopping: " + status.to_string());
        quit(to_error(status));
        return;
      }
      const uint64_t first_before = core_.log().first_index();
      last_snapshot_bytes_ = file_bytes;
      core_.snapshot_taken(index, term);
      if (config_.metrics) config_.metrics->snapshots_taken.add();
      compact(index, term, core_.log().first_index() - first_before);
      snapshot_finished(Status::ok(), index, term, file_bytes);
      after_input();
    });
  }

  void snapshot_finished(const Status& status, uint64_t index, uint64_t term, uint64_t file_bytes) {
    snapshot_in_progress_ = false;
    if (replacement_now_ && status.is_ok()) {
      log("snapshot " + std::to_string(index) + " (term " + std::to_string(term) +
          ") replaces the damaged one for transfers");
    } else if (replacement_now_) {
      // Transfers stop here; the next InstallSnapshot the core asks for finds the file still
      // missing and asks for a new one again.
      log("replacing the damaged snapshot failed, no snapshot can be sent until a later attempt: " +
          status.to_string());
    }
    replacement_now_ = false;
    // A failed snapshot, or one that found nothing new (the state machine lags the log), is
    // tried again only after more entries were applied, never in a loop.
    if (!status.is_ok() || index <= snapshot_index_before_) {
      snapshot_retry_at_ = applied_index_ + std::max<uint64_t>(1, config_.snapshot_entries / 4);
    }
    for (auto& promise : forced_now_) {
      if (status.is_ok()) promise.deliver(index, term, file_bytes);
      else promise.deliver(to_error(status));
    }
    forced_now_.clear();
    maybe_snapshot();
  }

  // The snapshot files older than (index, term) go.
  void release_snapshot_files(uint64_t index, uint64_t term) {
    request(persistence_->snapshotter(), caf::infinite, compact_atom_v, index, term)
        .then([](uint64_t) {},
              [this](caf::error& error) { log("removing old snapshots failed: " + to_status(error).to_string()); });
  }

  // Releases what a durable snapshot through `index` covers: the WAL's whole segments and
  // LMDB's log below the kept tail, and (unless `keep_files`) the older snapshot files. One
  // log line when both answered.
  void compact(uint64_t index, uint64_t term, uint64_t memory_entries, bool keep_files = false) {
    const uint64_t tail = config_.raft.log_tail_entries;
    if (!keep_files) release_snapshot_files(index, term);
    const uint64_t lmdb_through = index > tail ? index - tail : 0;
    request(persistence_->writer(), caf::infinite, compact_atom_v, index)
        .then(
            [this, index, memory_entries, lmdb_through](uint64_t segments, uint64_t wal_first) {
              request(persistence_->indexer(), caf::infinite, compact_atom_v, lmdb_through)
                  .then(
                      [this, index, memory_entries, segments, wal_first](uint64_t lmdb_entries) {
                        if (config_.metrics) config_.metrics->log_compactions.add();
                        log("compacted through index " + std::to_string(index) + ": released " +
                            std::to_string(memory_entries) + " entries from memory, " + std::to_string(lmdb_entries) +
                            " from LMDB's log, " + std::to_string(segments) + " WAL segments (the WAL starts at " +
                            std::to_string(wal_first) + ")");
                      },
                      [this](caf::error& error) { log("LMDB compaction failed: " + to_status(error).to_string()); });
            },
            [this](caf::error& error) { log("WAL compaction failed: " + to_status(error).to_string()); });
  }

  // ---- InstallSnapshot: the leader's side ----

  struct OutgoingTransfer {
    uint64_t index = 0;
    uint64_t term = 0;
    uint64_t total_bytes = 0;   // known after the first read
    SnapshotSendWindow window;  // what to send next, what the follower holds (snapshot_send.h)
    bool reading = false;       // one read from the snapshotter at a time
    uint32_t idle_ticks = 0;
    uint64_t epoch = 0;         // tells replies of an abandoned transfer apart
    caf::actor_clock::time_point started;  // the actor clock: virtual in the simulator
    uint64_t sent_bytes = 0;    // chunk bytes sent so far, resent ones included (pacing)
    bool paced = false;         // waiting for the byte rate to allow the next chunk
  };

  // RaftNodeConfig::snapshot_send_bytes_per_second: may the transfer send another chunk now?
  // One chunk of burst; the budget grows with the time since the transfer started.
  bool within_send_rate(const OutgoingTransfer& transfer) const {
    const uint64_t rate = config_.snapshot_send_bytes_per_second;
    if (rate == 0) return true;
    const double seconds = std::chrono::duration<double>(clock().now() - transfer.started).count();
    return static_cast<double>(transfer.sent_bytes) < static_cast<double>(rate) * seconds +
                                                          static_cast<double>(config_.snapshot_chunk_bytes);
  }

  void start_transfer(const raft::Message& message) {
    auto existing = transfers_.find(message.to);
    if (existing != transfers_.end() && existing->second.index == message.snapshot_index &&
        existing->second.term == message.snapshot_term) {
      return;  // already streaming this snapshot to that follower
    }
    OutgoingTransfer transfer;
    transfer.index = message.snapshot_index;
    transfer.term = message.snapshot_term;
    transfer.epoch = ++transfer_epoch_;
    transfer.started = clock().now();
    transfers_[message.to] = transfer;
    log("sending snapshot " + std::to_string(transfer.index) + " (term " + std::to_string(transfer.term) +
        ") to node " + std::to_string(message.to));
    pump_transfer(message.to);
  }

  // The snapshot the core sends failed its checksums when read for a transfer (the snapshotter
  // logged the file and offset and moved it aside) or is gone: a new snapshot of the state
  // machine, which LMDB still holds intact, takes its place, through the normal path (a WAL
  // record, then snapshot_taken). The core names it in its next InstallSnapshot to the follower.
  // A take already running publishes a new file anyway, so none is added.
  void replace_snapshot(uint64_t index, uint64_t term, const Status& why) {
    if (index != core_.snapshot_index() || term != core_.snapshot_term()) return;  // replaced already
    if (why.code() != Code::corruption && why.code() != Code::not_found) return;
    if (snapshot_in_progress_) return;
    log("snapshot " + std::to_string(index) + " (term " + std::to_string(term) +
        ") cannot be sent, taking a new one: " + why.to_string());
    replacement_next_ = true;
    maybe_snapshot();
  }

  void abandon_transfer(uint64_t peer, const std::string& why) {
    auto found = transfers_.find(peer);
    if (found == transfers_.end()) return;
    log("snapshot transfer to node " + std::to_string(peer) + " abandoned: " + why);
    transfers_.erase(found);
    core_.snapshot_failed(peer);
    after_input();
  }

  void pump_transfer(uint64_t peer) {
    auto found = transfers_.find(peer);
    if (found == transfers_.end()) return;
    OutgoingTransfer& transfer = found->second;
    if (transfer.reading) return;
    const uint64_t window = config_.snapshot_chunk_bytes * config_.snapshot_chunks_in_flight_max;
    if (!transfer.window.may_send(window, transfer.total_bytes)) return;
    transfer.paced = !within_send_rate(transfer);
    if (transfer.paced) return;  // the next tick tries again
    transfer.reading = true;
    const uint64_t epoch = transfer.epoch;
    const uint64_t offset = transfer.window.next_offset();
    request(persistence_->snapshotter(), caf::infinite, snapshot_read_atom_v, transfer.index, transfer.term, offset,
            config_.snapshot_chunk_bytes)
        .then(
            [this, peer, epoch, offset](Frame& chunk, uint64_t total_bytes) {
              auto found = transfers_.find(peer);
              if (found == transfers_.end() || found->second.epoch != epoch) return;
              OutgoingTransfer& transfer = found->second;
              transfer.reading = false;
              transfer.total_bytes = total_bytes;
              if (offset != transfer.window.next_offset()) return pump_transfer(peer);  // rewound meanwhile
              raft::Message message;
              message.type = raft::MessageType::snapshot_chunk;
              message.from = core_.id();
              message.to = peer;
              message.term = core_.current_term();
              message.snapshot_index = transfer.index;
              message.snapshot_term = transfer.term;
              message.leader_commit = core_.commit_index();
              message.chunk_offset = offset;
              message.chunk_round = transfer.window.round();
              message.chunk_total_bytes = total_bytes;
              message.chunk_done = offset + chunk.bytes.size() >= total_bytes;
              transfer.window.sent(chunk.bytes.size());
              transfer.sent_bytes += chunk.bytes.size();
              message.chunk_data = std::move(chunk.bytes);
              send_message(message);
              pump_transfer(peer);
            },
            [this, peer, epoch](caf::error& error) {
              auto found = transfers_.find(peer);
              if (found == transfers_.end() || found->second.epoch != epoch) return;
              const uint64_t index = found->second.index, term = found->second.term;
              const Status status = to_status(error);
              abandon_transfer(peer, "reading the snapshot failed: " + status.to_string());
              replace_snapshot(index, term, status);
            });
  }

  void on_chunk_response(const raft::Message& message) {
    auto found = transfers_.find(message.from);
    if (found == transfers_.end()) return;
    OutgoingTransfer& transfer = found->second;
    if (message.snapshot_index != transfer.index || message.snapshot_term != transfer.term) return;
    const SnapshotSendWindow::Answer answer = transfer.window.on_answer(message, transfer.total_bytes);
    if (answer == SnapshotSendWindow::Answer::ignored || answer == SnapshotSendWindow::Answer::failed) return;
    transfer.idle_ticks = 0;
    if (answer == SnapshotSendWindow::Answer::complete) {
      const double seconds =
          std::chrono::duration<double>(clock().now() - transfer.started).count();
      char line[160];
      std::snprintf(line, sizeof line, "snapshot %llu sent to node %llu: %llu bytes in %.3f s",
                    static_cast<unsigned long long>(transfer.index), static_cast<unsigned long long>(message.from),
                    static_cast<unsigned long long>(transfer.total_bytes), seconds);
      log(line);
      transfers_.erase(found);  // the core leaves snapshot mode on the follower's append answer
      return;
    }
    pump_transfer(message.from);
  }

  void tick_transfers() {
    std::vector<uint64_t> abandoned;
    std::vector<uint64_t> to_pump;  // held back by the byte rate, or restarting after a failure
    for (auto& [peer, transfer] : transfers_) {
      if (transfer.paced) {
        transfer.idle_ticks = 0;  // held back by the byte rate, not stalled
        to_pump.push_back(peer);
        continue;
      }
      ++transfer.idle_ticks;
      if (transfer.window.tick() && transfer.idle_ticks < config_.snapshot_transfer_idle_ticks_max) {
        to_pump.push_back(peer);
      }
      if (transfer.idle_ticks >= config_.snapshot_transfer_idle_ticks_max) {
        abandoned.push_back(peer);
      } else if (transfer.idle_ticks == config_.snapshot_transfer_idle_ticks_max / 2 && !transfer.reading) {
        transfer.window.rewind(transfer.window.acked_offset());  // the unacknowledged tail may be lost: resend it
        pump_transfer(peer);
      }
    }
    for (uint64_t peer : to_pump) pump_transfer(peer);
    for (uint64_t peer : abandoned) abandon_transfer(peer, "no progress for " + std::to_string(config_.snapshot_transfer_idle_ticks_max) + " ticks");
  }

  // ---- InstallSnapshot: the follower's side ----

  struct IncomingTransfer {
    uint64_t leader = 0;
    uint64_t index = 0;
    uint64_t term = 0;
    uint64_t next_offset = 0;  // the next byte expected (written, or on its way to the snapshotter)
    bool finishing = false;
    caf::actor_clock::time_point started;  // the actor clock: virtual in the simulator
  };

  void answer_chunk(const raft::Message& chunk, uint64_t expected_offset, bool error, bool done) {
    raft::Message answer;
    answer.type = raft::MessageType::snapshot_chunk_response;
    answer.from = core_.id();
    answer.to = chunk.from;
    answer.term = core_.current_term();
    answer.snapshot_index = chunk.snapshot_index;
    answer.snapshot_term = chunk.snapshot_term;
    answer.chunk_offset = expected_offset;
    answer.reject_index = chunk.chunk_offset;  // which chunk this answers
    answer.chunk_round = chunk.chunk_round;
    answer.chunk_error = error;
    answer.chunk_done = done;
    send_message(answer);
  }

  void on_chunk(const raft::Message& chunk) {
    if (chunk.term < core_.current_term() || !persistence_->snapshotter()) return;  // a deposed leader
    const bool same = incoming_ && incoming_->leader == chunk.from && incoming_->index == chunk.snapshot_index &&
                      incoming_->term == chunk.snapshot_term;
    if (!same) {
      if (chunk.chunk_offset != 0) return answer_chunk(chunk, 0, false, false);
      incoming_ = IncomingTransfer{chunk.from, chunk.snapshot_index, chunk.snapshot_term, 0, false,
                                   clock().now()};
      log("receiving snapshot " + std::to_string(chunk.snapshot_index) + " (term " +
          std::to_string(chunk.snapshot_term) + ") from node " + std::to_string(chunk.from));
    }
    IncomingTransfer& incoming = *incoming_;
    if (incoming.finishing) return;
    if (chunk.chunk_offset != incoming.next_offset) return answer_chunk(chunk, incoming.next_offset, false, false);
    incoming.next_offset += chunk.chunk_data.size();
    const bool last = chunk.chunk_done && incoming.next_offset >= chunk.chunk_total_bytes;
    if (last) incoming.finishing = true;
    raft::Message header = chunk;
    header.chunk_data.clear();
    request(persistence_->snapshotter(), caf::infinite, snapshot_write_atom_v, chunk.snapshot_index,
            chunk.snapshot_term, chunk.chunk_offset, Frame{chunk.chunk_data})
        .then(
            [this, header, last](uint64_t expected) {
              if (!last) return answer_chunk(header, expected, false, false);
              finish_incoming(header, expected);
            },
            [this, header](caf::error&) {
              incoming_.reset();
              answer_chunk(header, 0, true, false);
            });
  }

  void finish_incoming(const raft::Message& header, uint64_t expected) {
    request(persistence_->snapshotter(), caf::infinite, snapshot_finish_atom_v, header.snapshot_index,
            header.snapshot_term)
        .then(
            [this, header, expected](Frame& frame, uint64_t keys) {
              auto metadata = decode_snapshot_metadata(frame.bytes.data(), frame.bytes.size(), "snapshot finished");
              if (!metadata.is_ok()) {
                incoming_.reset();
                return answer_chunk(header, 0, true, false);
              }
              const double seconds = incoming_ ? std::chrono::duration<double>(clock().now() -
                                                                               incoming_->started).count()
                                               : 0.0;
              char line[160];
              std::snprintf(line, sizeof line, "snapshot %llu received from node %llu: %llu bytes, %llu keys in %.3f s",
                            static_cast<unsigned long long>(header.snapshot_index),
                            static_cast<unsigned long long>(header.from), static_cast<unsigned long long>(expected),
                            static_cast<unsigned long long>(keys), seconds);
              log(line);
              incoming_.reset();
              received_[{metadata->last_included_index, metadata->last_included_term}] = *metadata;
              last_snapshot_bytes_ = expected;  // if the core installs it (else the next take resets it)
              answer_chunk(header, expected, false, true);
              // The file is durable and published; the core decides whether it replaces the log.
              raft::Message install;
              install.type = raft::MessageType::install_snapshot;
              install.from = header.from;
              install.to = core_.id();
              install.term = header.term;
              install.snapshot_index = header.snapshot_index;
              install.snapshot_term = header.snapshot_term;
              install.leader_commit = header.leader_commit;
              install.configuration = metadata->configuration;  // the core adopts it with the snapshot
              core_.step(install);
              after_input();
            },
            [this, header](caf::error&) {
              incoming_.reset();
              answer_chunk(header, 0, true, false);
            });
  }

  // The configuration a snapshot at `index` records: the core's (a directory from before
  // configurations were logged starts from the configured members: spawn_raft_node).
  std::vector<Member> configuration_at(uint64_t index) const {
    return core_.configuration_at(std::max(index, core_.snapshot_index()));
  }

  // The metadata (with its configuration) of a received snapshot the core is installing.
  SnapshotMetadata installing_metadata(uint64_t index, uint64_t term) {
    auto found = received_.find({index, term});
    if (found != received_.end()) return found->second;
    return SnapshotMetadata{index, term, config_.members};
  }

  // The WAL now names the installed snapshot: the core may acknowledge it, and the state
  // machine is replaced after every batch sent to it before.
  void installed(const SnapshotMetadata& snapshot) {
    const uint64_t index = snapshot.last_included_index;
    const uint64_t term = snapshot.last_included_term;
    received_.clear();
    core_.snapshot_durable(index, term);
    fail_changes_through(index);
    applied_index_ = index;
    applied_bytes_since_snapshot_ = 0;
    if (config_.metrics) config_.metrics->snapshots_installed.add();
    if (config_.installed) config_.installed(index, term);
    // The older snapshot files go once the state machine has loaded this one: a snapshot
    // received right before it may still be loading (installs load on a helper thread, in
    // order), and its file must be there (snapshot_cluster_test under the sanitizers: two
    // snapshots received back to back, the first one's file removed before its load).
    if (config_.state_machine) {
      request(config_.state_machine, caf::infinite, snapshot_install_atom_v, index, term)
          .then([this, index, term](uint64_t keys) {
                  log("installed snapshot " + std::to_string(index) + " (" + std::to_string(keys) + " keys)");
                  release_snapshot_files(index, term);
                },
                [this](caf::error& error) {
                  log("installing the snapshot failed, stopping: " + to_status(error).to_string());
                  quit(error);
                });
    }
    const bool release_now = config_.raft.planted_bug == raft::PlantedBug::release_snapshot_before_load;
    compact(index, term, 0, /*keep_files=*/static_cast<bool>(config_.state_machine) && !release_now);
  }

  RaftNodeConfig config_;
  // Reset on exit: it must not keep the persistence actors alive.
  std::optional<Persistence> persistence_;
  raft::Core core_;
  ClientAddressBook addresses_;                     // members' client addresses, learned from their messages
  std::map<uint64_t, uint64_t> regressions_logged_;  // per follower: Progress::regressions already logged
  bool repairing_ = false;  // the core was repairing when last looked at (log_repair_end)
  std::vector<caf::actor> directory_subscribers_;  // told when the leader or an address changes
  bool directory_changed_ = false;
  uint64_t published_leader_ = 0;
  uint64_t tick_epoch_ = 1;
  caf::actor_clock::time_point last_tick_at_;   // the last tick boundary the core was given
  caf::actor_clock::time_point tick_timer_due_;  // the tick timer set last, when pending
  bool tick_timer_pending_ = false;
  uint32_t persists_in_flight_ = 0;     // persist requests sent, not yet answered (drain)
  bool exclusive_in_flight_ = false;    // one of them cuts the log or installs a snapshot
  std::optional<raft::Ready> held_ready_;  // taken, waiting for the persists before it (drain)
  raft::Role last_role_ = raft::Role::follower;
  std::optional<raft::Role> metrics_role_;  // the role last published to config_.metrics  // for the elected / stepped down log lines
  uint64_t read_request_id_ = 0;
  std::map<uint64_t, ReadPromise> reads_;  // ReadIndex requests waiting for a quorum
  std::optional<Handoff> handoff_;         // a leadership transfer someone waits for (§3.10)
  std::vector<PendingChange> changes_;     // membership changes waiting for their commit
  // The configuration last told to the address book and the transport (track_configuration).
  bool configuration_tracked_ = false;
  uint64_t tracked_configuration_index_ = 0;
  uint64_t tracked_snapshot_index_ = 0;
  std::vector<Member> tracked_members_;
  bool was_member_ = false;

  // Snapshots.
  using TakePromise = caf::typed_response_promise<uint64_t, uint64_t, uint64_t>;
  uint64_t applied_index_ = 0;                  // last entry handed to the state machine
  uint64_t applied_bytes_since_snapshot_ = 0;
  uint64_t last_snapshot_bytes_ = 0;  // the file size of the last snapshot taken or received (0: none since start)
  bool snapshot_in_progress_ = false;
  uint64_t snapshot_index_before_ = 0;  // the core's snapshot when the one in progress started
  uint64_t snapshot_retry_at_ = 0;      // after a failed or empty snapshot: not before this applied index
  std::vector<TakePromise> forced_now_;         // answered by the snapshot being taken
  std::vector<TakePromise> forced_next_;        // arrived since: need a later one
  bool replacement_next_ = false;  // the snapshot to send is damaged or gone: take a new one now
  bool replacement_now_ = false;   // the snapshot being taken replaces a damaged or missing one
  std::map<uint64_t, OutgoingTransfer> transfers_;  // leader: by follower
  uint64_t transfer_epoch_ = 0;
  std::optional<IncomingTransfer> incoming_;    // follower
  bool refused_ = false;
  std::set<uint64_t> refused_peers_logged_;  // probation answers "counted" logged, by asker
  std::map<std::pair<uint64_t, uint64_t>, SnapshotMetadata> received_;  // (index, term): published, not installed
};

}  // namespace

raft_node_actor spawn_raft_node(caf::actor_system& system, RaftNodeConfig config, Persistence persistence,
                                raft::RecoveredState recovered, bool on_network_thread) {
  // A directory from before configurations were logged (no snapshot configuration, no
  // configuration entry): its first configuration is the configured members, with their
  // addresses, so that every change and every snapshot builds on a configuration that names
  // them (never on the address-less voter list).
  const bool logged = std::any_of(recovered.entries.begin(), recovered.entries.end(),
                                  [](const Entry& entry) { return entry.type == EntryType::configuration; });
  if (recovered.configuration.empty() && !logged && !config.raft.voters.empty()) {
    for (const Member& member : config.members) {
      if (std::find(config.raft.voters.begin(), config.raft.voters.end(), member.id) != config.raft.voters.end()) {
        recovered.configuration.push_back(member);
      }
    }
  }
  return spawn_on_network_thread<RaftNodeActor>(system, on_network_thread, std::move(config), std::move(persistence),
                                                std::move(recovered));
}

}  // namespace keyval
