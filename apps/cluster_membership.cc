// The operator's membership procedures on a LocalCluster (see cluster_membership.h).
#include "apps/cluster_membership.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client/kv_socket.h"
#include "raft/config.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

namespace keyval {
namespace {

constexpr uint64_t poll_ms = 20;

void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

KvClient client_of(LocalCluster& cluster, const std::vector<uint64_t>& members, uint64_t timeout_ms) {
  std::vector<Endpoint> endpoints;
  for (uint64_t id : members) endpoints.push_back(cluster.client_endpoints().at(id - 1));
  KvClientOptions options;
  options.operation_timeout_ms = timeout_ms;
  options.request_timeout_ms = 1000;
  return KvClient(endpoints, options);
}

const ConfigurationMember* find_member(const ClientResponse& view, uint64_t id) {
  for (const ConfigurationMember& member : view.configuration) {
    if (member.node_id == id) return &member;
  }
  return nullptr;
}

// The highest commit index the members answer with.
uint64_t highest_commit_index(LocalCluster& cluster, const std::vector<uint64_t>& members) {
  uint64_t highest = 0;
  auto views = cluster.status();
  for (uint64_t id : members) {
    if (views.at(id - 1).is_ok()) highest = std::max(highest, views[id - 1]->commit_index);
  }
  return highest;
}

// The leader's view says learner `id` is within the promote bound of the leader's log (what
// `keyval member add` waits for).
bool within_promote_bound(KvClient& client, uint64_t id) {
  auto view = client.member_list();
  if (!view.is_ok() || view->role != "leader") return false;
  const ConfigurationMember* member = find_member(*view, id);
  const ConfigurationMember* leader = find_member(*view, view->node_id);
  if (member == nullptr || leader == nullptr || member->match_index == 0) return false;
  return member->match_index + raft::Config{}.promote_lag_max >= leader->match_index;
}

bool applied(LocalCluster& cluster, uint64_t id, uint64_t index) {
  auto view = cluster.status().at(id - 1);
  return view.is_ok() && view->applied_index >= index;
}

// Promotes `id` once it is within the bound; asked again while the leader says learner_behind.
Status promote_when_close(KvClient& client, LocalCluster& cluster, MemberJoin& join, uint64_t deadline_ms) {
  std::string last = "not within the promote bound";
  while (steady_now_ms() < deadline_ms) {
    if (join.caught_up_ms == 0 && applied(cluster, join.id, join.commit_index)) join.caught_up_ms = steady_now_ms();
    if (!within_promote_bound(client, join.id)) {
      sleep_ms(poll_ms);
      continue;
    }
    auto promoted = client.member_promote(join.id);
    if (promoted.is_ok()) {
      join.voter_ms = steady_now_ms();
      return Status::ok();
    }
    last = promoted.status().message();
    if (last.find("learner_behind") == std::string::npos) return promoted.status();
  }
  return Status::io_error("node " + std::to_string(join.id) + " was not promoted in time (" + last + ")");
}

}  // namespace

std::optional<uint64_t> wal_record_bytes(const std::string& data_directory, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    WalOptions options;
    options.read_only = true;
    uint64_t bytes = 0;
    auto wal = Wal::open(posix_env(), data_directory + "/wal", options,
                         [&](const WalRecordInfo& record) { bytes += wal_format::record_bytes(record.payload_bytes); });
    if (wal.is_ok()) return bytes;
    sleep_ms(2);
  }
  return std::nullopt;
}

uint64_t live_wal_record_bytes(const std::string& data_directory) {
  WalOptions options;
  options.read_only = true;
  uint64_t bytes = 0;
  auto wal = Wal::open(posix_env(), data_directory + "/wal", options,
                       [&](const WalRecordInfo& record) { bytes += wal_format::record_bytes(record.payload_bytes); });
  return bytes;  // also when the open stopped at the record being written
}

uint64_t snapshot_bytes_received(const LocalCluster& cluster, uint64_t id, uint64_t from) {
  std::ifstream in(cluster.log_path(id));
  in.seekg(static_cast<std::streamoff>(from));
  uint64_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    const auto received = line.find(" received from node ");
    if (line.find("snapshot ") == std::string::npos || received == std::string::npos) continue;
    const auto colon = line.find(": ", received);
    if (colon == std::string::npos) continue;
    try {
      bytes += std::stoull(line.substr(colon + 2));
    } catch (const std::exception&) {
      // not the line it looks like
    }
  }
  return bytes;
}

Result<MemberJoin> join_new_member(LocalCluster& cluster, const std::vector<uint64_t>& members, uint64_t id,
                                   const MembershipTimeouts& timeouts) {
  MemberJoin join;
  join.id = id;
  KvClient client = client_of(cluster, members, timeouts.change_ms);
  join.asked_ms = steady_now_ms();
  auto added = client.member_add(id, cluster.peer_endpoint(id).str(), cluster.client_endpoints().at(id - 1).str());
  if (!added.is_ok()) return added.status().with_context("member add " + std::to_string(id));
  // A new member starts from a NEW, empty data directory.
  std::error_code ignored;
  std::filesystem::remove_all(cluster.data_directory(id), ignored);
  const uint64_t log_from = cluster.log_bytes(id);
  join.commit_index = highest_commit_index(cluster, members);
  join.started_ms = steady_now_ms();
  KV_RETURN_IF_ERROR(cluster.start(id));
  const uint64_t deadline = join.started_ms + timeouts.catch_up_ms;
  KV_RETURN_IF_ERROR(promote_when_close(client, cluster, join, deadline));
  while (join.caught_up_ms == 0) {
    if (applied(cluster, id, join.commit_index)) {
      join.caught_up_ms = steady_now_ms();
    } else if (steady_now_ms() >= deadline) {
      return Status::io_error("node " + std::to_string(id) + " did not apply index " + std::to_string(join.commit_index) +
                              " within " + std::to_string(timeouts.catch_up_ms) + " ms of its start");
    } else {
      sleep_ms(poll_ms);
    }
  }
  join.snapshot_bytes = snapshot_bytes_received(cluster, id, log_from);
  join.bytes_received = join.snapshot_bytes + live_wal_record_bytes(cluster.data_directory(id));
  return join;
}

Status remove_old_member(LocalCluster& cluster, const std::vector<uint64_t>& members, uint64_t id, int stop_signal,
                         const MembershipTimeouts& timeouts) {
  KvClient client = client_of(cluster, members, timeouts.change_ms);
  auto removed = client.member_remove(id);
  if (!removed.is_ok()) return removed.status().with_context("member remove " + std::to_string(id));
  cluster.signal(id, stop_signal);
  if (stop_signal != SIGKILL && !cluster.wait_exit(id, timeouts.stop_ms).is_ok()) cluster.signal(id, SIGKILL);
  std::error_code error;
  std::filesystem::remove_all(cluster.data_directory(id), error);
  if (error) return Status::io_error("cannot delete " + cluster.data_directory(id) + ": " + error.message());
  return Status::ok();
}

}  // namespace keyval
