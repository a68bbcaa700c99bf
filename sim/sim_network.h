// The simulated network: packets between nodes (raft messages) and between clients and
// nodes (client requests and responses), each delivered at a virtual time the seeded
// generator picks. Faults: delay (with rare long spikes, which also reorders), loss,
// duplication, and cut links (a partition is a set of cut links; a one-way partition cuts
// one direction). A link is checked when a packet is due, so a cut also drops what was in
// flight. Deterministic: ordered containers, ties broken by send order.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "raft/random.h"

namespace keyval::sim {

struct Packet {
  enum Kind : uint8_t { raft, client_request, client_response };
  Kind kind = raft;
  uint64_t from = 0;  // node id, or a client's endpoint id
  uint64_t to = 0;
  uint64_t call = 0;  // client packets: the request's call id
  std::vector<uint8_t> bytes;
};

struct NetworkFaults {
  uint64_t delay_ns_min = 500'000;
  uint64_t delay_ns_max = 2'000'000;
  double drop = 0;         // probability a packet is lost
  double duplicate = 0;    // probability a packet is delivered twice
  double spike = 0;        // probability of a long delay (up to spike_ns_max)
  uint64_t spike_ns_max = 0;
};

// Probability `p` with the seeded generator.
bool chance(raft::SplitMix64& random, double p);

class SimNetwork {
 public:
  explicit SimNetwork(raft::SplitMix64& random) : random_(random) {}

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }
  size_t in_flight() const { return queue_.size(); }  // packets sent and not yet delivered or dropped

  // Queues `packet`, sent at now_ns (maybe lost, maybe twice, each copy with its own delay).
  void send(uint64_t now_ns, Packet packet);

  void cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void heal() { cut_.clear(); }
  // A fixed extra delay on the raft packets of one directed link, or (from = to = 0) of every
  // link, added to the random one; clear_delays() removes them all.
  void add_delay(uint64_t from, uint64_t to, uint64_t delay_ns) { extra_delay_ns_[{from, to}] = delay_ns; }
  void clear_delays() { extra_delay_ns_.clear(); }
  bool is_cut(uint64_t from, uint64_t to) const { return cut_.count({from, to}) > 0; }
  bool partitioned() const { return !cut_.empty(); }

  std::optional<uint64_t> next_due_ns() const;
  // The earliest due packet, removed; nullopt when it was sent over a link cut since (lost).
  std::optional<Packet> pop_due();

  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }

 private:
  raft::SplitMix64& random_;
  NetworkFaults faults_;
  std::map<std::pair<uint64_t, uint64_t>, Packet> queue_;  // by (due ns, send sequence)
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> extra_delay_ns_;  // (0, 0): every link
  uint64_t sequence_ = 0;
  uint64_t sent_ = 0, dropped_ = 0;
};

}  // namespace keyval::sim
