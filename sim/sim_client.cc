// A simulated client (see sim_client.h).
#include "sim/sim_client.h"

#include <algorithm>

namespace keyval::sim {
namespace {

constexpr uint64_t generation_shift = 16;  // client id = generation << 16 | slot
constexpr uint64_t call_slot_shift = 40;   // call id = slot << 40 | n: the simulator routes replies by it

std::string key_name(size_t key) { return "k" + std::to_string(key); }
std::string counter_name(size_t key) { return "n" + std::to_string(key); }

bool is_write(ClientOp op) { return is_write_op(op); }

Operation::Kind kind_of(ClientOp op) {
  switch (op) {
    case ClientOp::put: return Operation::put;
    case ClientOp::del: return Operation::del;
    case ClientOp::cas: return Operation::cas;
    default: return Operation::get;
  }
}

}  // namespace

uint64_t client_slot_of_call(uint64_t call) { return call >> call_slot_shift; }

SimClient::SimClient(uint64_t slot, ClientSettings settings, History& history, raft::SplitMix64& random)
    : slot_(slot),
      settings_(settings),
      history_(history),
      random_(random),
      session_(slot) {
  next_invoke_ns_ = random_.between(0, settings_.pace_ns != 0 ? settings_.pace_ns : settings_.think_ns_max);
}

void SimClient::read_all_keys_then_stop() {
  ++changes_;
  invoking_ = false;
  for (size_t key = settings_.keys; key-- > 0;) final_keys_.push_back(key_name(key));
  if (settings_.increment_percent == 0) return;
  for (size_t key = settings_.keys; key-- > 0;) final_keys_.push_back(counter_name(key));
}

void SimClient::read_keys_then_stop(const std::vector<std::string>& keys) {
  ++changes_;
  invoking_ = false;
  final_keys_.insert(final_keys_.end(), keys.rbegin(), keys.rend());
}

void SimClient::schedule_next_invoke(uint64_t now_ns) {
  if (settings_.pace_ns != 0) {
    next_invoke_ns_ = std::max(now_ns, last_invoke_ns_ + settings_.pace_ns);
  } else {
    next_invoke_ns_ = now_ns + random_.between(0, settings_.think_ns_max);
  }
}

// Unique per client ("c<slot>.<n>": the linearizability checker tells writes apart by value),
// then padded to value_bytes.
std::string SimClient::next_value() {
  std::string value = "c" + std::to_string(slot_) + "." + std::to_string(++values_written_);
  if (value.size() < settings_.value_bytes) value += "." + std::string(settings_.value_bytes - value.size() - 1, 'v');
  return value;
}

std::optional<uint64_t> SimClient::next_action_ns() const {
  if (op_) {
    uint64_t next = op_->deadline_ns;
    next = std::min(next, op_->retry_at_ns != 0 ? op_->retry_at_ns : op_->attempt_deadline_ns);
    return next;
  }
  if (!final_keys_.empty()) return 0;
  if (invoking_) return next_invoke_ns_;
  return std::nullopt;
}

std::optional<ClientRequestOut> SimClient::act(uint64_t now_ns) {
  ++changes_;
  if (!op_) {
    if (!final_keys_.empty()) {
      std::string key = final_keys_.back();
      final_keys_.pop_back();
      start_read(now_ns, key);
    } else if (invoking_ && now_ns >= next_invoke_ns_) {
      start_op(now_ns);
    } else {
      return std::nullopt;
    }
    return send_attempt(now_ns);
  }
  if (now_ns >= op_->deadline_ns) {
    give_up(now_ns);
    return std::nullopt;
  }
  if (op_->retry_at_ns == 0 && now_ns >= op_->attempt_deadline_ns) {
    // No answer in time: the request (or its answer) may be anywhere.
    follow(now_ns, op_->policy.on_no_answer(true), 0);
  }
  if (op_->retry_at_ns != 0 && now_ns >= op_->retry_at_ns) return send_attempt(now_ns);
  return std::nullopt;
}

void SimClient::start_op(uint64_t now_ns) {
  ClientRequest request;
  const size_t key = random_.between(0, settings_.keys - 1);
  request.key = key_name(key);
  const uint64_t dice = random_.between(0, 99);
  const uint64_t get_below = settings_.get_percent;
  const uint64_t put_below = get_below + settings_.put_percent;
  const uint64_t cas_below = put_below + settings_.cas_percent;
  const uint64_t del_below = cas_below + settings_.del_percent;
  if (settings_.increment_percent != 0 && dice >= del_below) return start_increment(now_ns, key);
  request.op = dice < get_below   ? ClientOp::get
               : dice < put_below ? ClientOp::put
               : dice < cas_below ? ClientOp::cas
                                  : ClientOp::del;
  std::optional<std::string> value, expected;
  if (request.op == ClientOp::put || request.op == ClientOp::cas) {
    request.value = next_value();
    value = request.value;
  }
  request.blind = request.op == ClientOp::put;  // as KvClient::put sends it
  if (request.op == ClientOp::cas) {
    request.expected = last_seen_[key];
    expected = request.expected;
  }
  if (is_write(request.op)) session_.stamp(request);
  History::OperationId id = history_.invoke(slot_, kind_of(request.op), request.key, value, expected, now_ns);
  last_invoke_ns_ = now_ns;
  start(id, std::move(request), now_ns + settings_.operation_timeout_ns, false);
}

void SimClient::start(History::OperationId id, ClientRequest request, uint64_t deadline_ns, bool counter) {
  const bool write = is_write(request.op);
  op_ = Op{id, std::move(request), deadline_ns, 0, 0, OperationPolicy(write, settings_.nodes)};
  op_->counter = counter;
  op_->target = leader_guess_;
}

// An increment by 1 of counter key `key`, with the session like any write: a retry repeats
// its sequence, so it must be applied once however many attempts reach a leader.
void SimClient::start_increment(uint64_t now_ns, size_t key) {
  ClientRequest request;
  request.op = ClientOp::increment;
  request.key = counter_name(key);
  request.delta = 1;
  if (!settings_.increments_without_session) session_.stamp(request);
  last_invoke_ns_ = now_ns;
  start(0, std::move(request), now_ns + settings_.operation_timeout_ns, true);
}

void SimClient::start_read(uint64_t now_ns, const std::string& key) {
  ClientRequest request;
  request.op = ClientOp::get;
  request.key = key;
  const bool counter = !key.empty() && key[0] == 'n';
  History::OperationId id =
      counter ? 0 : history_.invoke(slot_, Operation::get, key, std::nullopt, std::nullopt, now_ns);
  // Final reads wait as long as it takes: the simulator bounds the settle phase.
  start(id, std::move(request), UINT64_MAX, counter);
}

// The end of an increment (recorded in the ledger) or of a counter's final read.
void SimClient::end_counter_op(uint64_t now_ns, Operation::Status status, const ClientResponse* response) {
  const ClientRequest& request = op_->request;
  if (request.op == ClientOp::get) {
    if (response != nullptr) {
      final_counters_[request.key] = response->found ? std::optional<std::string>(response->value) : std::nullopt;
    }
  } else {
    increments_.push_back(IncrementRecord{request.key, status, response != nullptr ? response->number : 0});
  }
  op_.reset();
  schedule_next_invoke(now_ns);
}

ClientRequestOut SimClient::send_attempt(uint64_t now_ns) {
  const uint64_t call = (slot_ << call_slot_shift) | ++next_call_;
  op_->request.request_id = call;
  op_->calls.insert(call);
  op_->current_call = call;
  op_->retry_at_ns = 0;
  op_->attempt_deadline_ns = now_ns + settings_.attempt_timeout_ns;
  return ClientRequestOut{op_->target, call, encode_client_request(op_->request)};
}

void SimClient::follow(uint64_t now_ns, const Decision& decision, uint64_t hint) {
  KV_ASSERT(decision.kind == Decision::retry);
  switch (decision.target) {
    case RetryTarget::same: break;
    case RetryTarget::hinted: op_->target = hint != 0 ? hint : op_->target % settings_.nodes + 1; break;
    case RetryTarget::another: op_->target = op_->target % settings_.nodes + 1; break;
  }
  op_->retry_at_ns = std::max<uint64_t>(now_ns + decision.delay_us * 1000, 1);
}

void SimClient::give_up(uint64_t now_ns) {
  // Unknown unless no attempt may have taken effect: a write that may have reached a leader
  // may still commit. A read that got no answer had no effect either way. An attempt still in
  // flight at the deadline was sent and not answered, as KvClient's last attempt is when the
  // deadline cuts it short (seed 15 once recorded such a put as failed, and the checker then
  // found a read of its value impossible).
  if (op_->retry_at_ns == 0) (void)op_->policy.on_no_answer(true);
  const bool uncertain = op_->policy.uncertain();
  if (!op_->counter && !uncertain) history_.complete_fail(op_->id, now_ns);
  if (is_write(op_->request.op) && op_->request.client_id != 0) {
    session_.write_ended(false, uncertain, [this] { return (++generation_ << generation_shift) | slot_; });
  }
  if (op_->counter) return end_counter_op(now_ns, uncertain ? Operation::unknown : Operation::fail, nullptr);
  op_.reset();
  schedule_next_invoke(now_ns);
}

void SimClient::finish_ok(uint64_t now_ns, const ClientResponse& response) {
  const ClientRequest& request = op_->request;
  if (op_->counter) {
    if (is_write(request.op)) {
      if (request.client_id != 0) session_.write_ended(true, false, nullptr);
      acked_.push_back(AckedWrite{response.index, request.client_id, request.sequence,
                                  "increment " + request.key + " by client " + std::to_string(request.client_id) +
                                      " sequence " + std::to_string(request.sequence)});
    }
    return end_counter_op(now_ns, Operation::ok, &response);
  }
  const size_t key = static_cast<size_t>(std::stoul(request.key.substr(1)));
  std::optional<std::string> output;
  switch (request.op) {
    case ClientOp::get:
      if (response.found) output = response.value;
      last_seen_[key] = output;
      break;
    case ClientOp::put: last_seen_[key] = request.value; break;
    case ClientOp::del:
      output = response.found ? "true" : "false";
      last_seen_[key] = std::nullopt;
      break;
    case ClientOp::cas:
      output = response.cas_succeeded ? "true" : "false";
      if (response.cas_succeeded) last_seen_[key] = request.value;
      else last_seen_[key] = response.found ? std::optional<std::string>(response.value) : std::nullopt;
      break;
    default: break;
  }
  if (is_write(request.op)) {
    session_.write_ended(true, false, nullptr);
    acked_.push_back(AckedWrite{response.index, request.client_id, request.sequence,
                                std::string(client_op_name(request.op)) + " " + request.key + " by client " +
                                    std::to_string(request.client_id) + " sequence " + std::to_string(request.sequence)});
  }
  history_.complete_ok(op_->id, output, now_ns);
  op_.reset();
  schedule_next_invoke(now_ns);
}

void SimClient::on_response(uint64_t now_ns, uint64_t call, const ClientResponse& response) {
  ++changes_;
  if (!op_ || op_->calls.count(call) == 0) return;  // an answer to an operation already finished
  if (response.leader_hint != 0) leader_guess_ = response.leader_hint;
  // A simulated client reaches every node: a hint is reachable when it names another node.
  const bool hint_reachable = response.leader_hint != 0 && response.leader_hint != op_->target;
  // Only the attempt in flight moves the operation on, as in KvClient: an earlier attempt was
  // either answered already or given up on as possibly applied (on_no_answer). Its late "ok"
  // still ends the operation: the write took effect.
  if (call != op_->current_call && response.status != ClientStatus::ok) return;
  const Decision decision = op_->policy.on_answer(response, hint_reachable);
  switch (decision.kind) {
    case Decision::done: return finish_ok(now_ns, response);
    case Decision::retry: return follow(now_ns, decision, response.leader_hint);
    case Decision::fail:
      problems_.push_back("client " + std::to_string(slot_) + ": unexpected " + client_status_name(response.status) +
                          " for " + client_op_name(op_->request.op) + " " + op_->request.key + ": " + response.message);
      if (op_->counter) return end_counter_op(now_ns, Operation::fail, nullptr);
      history_.complete_fail(op_->id, now_ns);  // never recorded as ok: the checker stays honest
      op_.reset();
      return;
  }
}

void SimClient::on_refused(uint64_t now_ns, uint64_t call) {
  ++changes_;
  if (!op_ || op_->calls.count(call) == 0) return;
  follow(now_ns, op_->policy.on_no_answer(false), 0);
}

void SimClient::on_connection_lost(uint64_t now_ns, uint64_t call) {
  ++changes_;
  // Only the attempt in flight matters: an older one was already given up on.
  if (!op_ || call != op_->current_call || op_->retry_at_ns != 0) return;
  follow(now_ns, op_->policy.on_no_answer(true), 0);
}

}  // namespace keyval::sim
