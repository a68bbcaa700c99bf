// Fault steps shared by both runners (see fault_steps.h).
#include "sim/fault_steps.h"

#include <algorithm>
#include <set>

namespace keyval::sim {

bool step_needs_leader(const FaultStep& step) {
  for (const auto& group : step.groups) {
    for (const NodeRef& ref : group) {
      if (ref.kind != NodeRef::id) return true;
    }
  }
  return false;
}

ResolvedStep resolve_step(const FaultStep& step, uint64_t leader, uint64_t nodes, uint64_t random_value) {
  ResolvedStep resolved;
  std::vector<uint64_t> followers;
  for (uint64_t id = 1; id <= nodes; ++id) {
    if (id != leader) followers.push_back(id);
  }
  const uint64_t follower = followers.empty() ? 0 : followers[random_value % followers.size()];
  const char* separator = step.kind == StepKind::partition ? "|" : ">";
  for (const auto& group : step.groups) {
    std::vector<uint64_t> ids;
    std::string text;
    for (const NodeRef& ref : group) {
      const uint64_t id = ref.kind == NodeRef::leader ? leader : ref.kind == NodeRef::follower ? follower : ref.node;
      ids.push_back(id);
      text += (text.empty() ? "" : " ") + std::to_string(id);
      resolved.names_leader = resolved.names_leader || (leader != 0 && id == leader);
    }
    resolved.nodes += (resolved.nodes.empty() ? "" : separator) + text;
    resolved.groups.push_back(std::move(ids));
  }
  if (step.kind == StepKind::partition) {
    // A partition names every node it splits: it touches the leader when the leader's side is
    // no majority (a node left out of every group keeps all its links and counts on both sides).
    resolved.names_leader = false;
    for (const auto& group : resolved.groups) {
      if (std::find(group.begin(), group.end(), leader) == group.end() || leader == 0) continue;
      uint64_t side = nodes;
      for (const auto& other : resolved.groups) {
        if (&other != &group) side -= other.size();
      }
      resolved.names_leader = 2 * side <= nodes;
    }
  }
  return resolved;
}

std::vector<std::pair<uint64_t, uint64_t>> links_cut(const FaultStep& step, const ResolvedStep& resolved, uint64_t nodes) {
  std::vector<std::pair<uint64_t, uint64_t>> links;
  switch (step.kind) {
    case StepKind::partition:
      for (size_t a = 0; a < resolved.groups.size(); ++a) {
        for (size_t b = 0; b < resolved.groups.size(); ++b) {
          if (a == b) continue;
          for (uint64_t from : resolved.groups[a]) {
            for (uint64_t to : resolved.groups[b]) links.emplace_back(from, to);
          }
        }
      }
      break;
    case StepKind::oneway: links.emplace_back(resolved.groups[0][0], resolved.groups[1][0]); break;
    case StepKind::isolate: {
      const uint64_t node = resolved.groups[0][0];
      for (uint64_t other = 1; other <= nodes; ++other) {
        if (other == node) continue;
        links.emplace_back(node, other);
        links.emplace_back(other, node);
      }
      break;
    }
    default: break;
  }
  return links;
}

void account_steps(const std::vector<Operation>& history, const std::vector<uint64_t>& start_ns, uint64_t end_ns,
                   std::vector<CycleRecord>& rows) {
  std::vector<uint64_t> first_ack(rows.size(), UINT64_MAX);
  for (const Operation& op : history) {
    const uint64_t at = op.complete_ns ? *op.complete_ns : op.invoke_ns;
    // The step during which it completed: the last start at or before it, if before end_ns.
    auto after = std::upper_bound(start_ns.begin(), start_ns.end(), at);
    if (after != start_ns.begin() && at <= end_ns) {
      CycleRecord& row = rows[static_cast<size_t>(after - start_ns.begin() - 1)];
      (op.status == Operation::ok ? row.ops_acked : op.status == Operation::fail ? row.ops_failed : row.ops_unknown)++;
    }
    if (op.status != Operation::ok || op.op == Operation::get) continue;
    // Unavailability: every step that started at or before its invocation.
    for (size_t k = 0; k < rows.size() && start_ns[k] <= op.invoke_ns; ++k) {
      first_ack[k] = std::min(first_ack[k], *op.complete_ns);
    }
  }
  for (size_t k = 0; k < rows.size(); ++k) {
    rows[k].unavailable_ms = first_ack[k] == UINT64_MAX ? -1 : static_cast<double>(first_ack[k] - start_ns[k]) / 1e6;
  }
}

std::vector<ThroughputSample> throughput_of_history(const std::vector<Operation>& history, uint64_t end_ns,
                                                    double bucket_ms) {
  const uint64_t bucket_ns = static_cast<uint64_t>(bucket_ms * 1e6);
  std::vector<ThroughputSample> samples(end_ns / bucket_ns + 1);
  for (size_t i = 0; i < samples.size(); ++i) samples[i].at_ms = static_cast<double>(i) * bucket_ms;
  for (const Operation& op : history) {
    if (op.status != Operation::ok || *op.complete_ns > end_ns) continue;
    ++samples[*op.complete_ns / bucket_ns].acked;
  }
  return samples;
}

}  // namespace keyval::sim
