// The simulated network (see sim_network.h).
#include "sim/sim_network.h"

#include <algorithm>

namespace keyval::sim {

bool chance(raft::SplitMix64& random, double p) {
  if (p <= 0) return false;
  return static_cast<double>(random.next() % 1'000'000) < p * 1'000'000.0;
}

void SimNetwork::send(uint64_t now_ns, Packet packet) {
  ++sent_;
  if (chance(random_, faults_.drop)) {
    ++dropped_;
    return;
  }
  // A client's request and its answer travel on the client's TCP connection, which delivers
  // each at most once: only peer messages are duplicated. Seed 18521: a duplicated put,
  // delivered after the first copy was answered "no leader", was proposed while its client had
  // recorded a definite failure; seed 4618: a duplicated "not the leader" answer moved a client
  // on from the attempt that had just reached the leader. The draw is made for every packet, so
  // the random stream, and every run without such a duplicate, is unchanged.
  const bool duplicate = chance(random_, faults_.duplicate);
  const int copies = duplicate && packet.kind == Packet::raft ? 2 : 1;
  uint64_t extra_ns = 0;
  if (packet.kind == Packet::raft && !extra_delay_ns_.empty()) {
    for (auto link : {std::make_pair(packet.from, packet.to), std::make_pair(uint64_t{0}, uint64_t{0})}) {
      auto found = extra_delay_ns_.find(link);
      if (found != extra_delay_ns_.end()) extra_ns = std::max(extra_ns, found->second);
    }
  }
  for (int copy = 0; copy < copies; ++copy) {
    uint64_t delay = random_.between(faults_.delay_ns_min, faults_.delay_ns_max);
    if (faults_.spike_ns_max > 0 && chance(random_, faults_.spike)) delay += random_.between(0, faults_.spike_ns_max);
    // The last copy takes the packet's bytes; a duplicate copies them.
    queue_.emplace(std::make_pair(now_ns + extra_ns + delay, ++sequence_), copy + 1 == copies ? std::move(packet) : packet);
  }
}

std::optional<uint64_t> SimNetwork::next_due_ns() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first.first;
}

std::optional<Packet> SimNetwork::pop_due() {
  Packet packet = std::move(queue_.begin()->second);
  queue_.erase(queue_.begin());
  if (is_cut(packet.from, packet.to)) {
    ++dropped_;
    return std::nullopt;
  }
  return packet;
}

}  // namespace keyval::sim
