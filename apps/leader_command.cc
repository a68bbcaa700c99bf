// keyval leader transfer [ID]: hand the cluster's leadership to node ID (Raft thesis §3.10;
// docs/LEADERSHIP.md), or with no ID to the leader's most up-to-date follower.
//
//   keyval leader transfer [ID] [--endpoints ...] [--timeout-ms T] [--request-timeout-ms R]
//
// Prints "leadership moved from node A to node B in term T (M ms)" and, last, a JSON line
// {"command":"leader transfer","from":A,"to":B,"term":T,"ms":M}. The client finds the leader
// as for any operation; the leader answers once the transfer is over.
// Exit codes as the other client commands: 0 done; 2 usage (bad flag or ID) or a transfer the
// cluster refused (to the leader itself, to an id that is not a voter); 3 the cluster did not
// complete it (no leader, unreachable, abandoned until the timeout).
#include <chrono>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/kv_client.h"

namespace keyval::commands {
namespace {

constexpr int exit_unavailable = 3;
const char* const command_name = "leader transfer";

int transfer_main(const std::vector<std::string>& args) {
  cli::Command command(command_name, "hand leadership to node ID (default: the most up-to-date follower); a JSON line",
                       "[ID]");
  command.add(client_flag_specs())
      .footer("exit: 0 done, 2 usage or a transfer the cluster refused, 3 not done (no leader, unreachable, timed out)");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  const std::vector<std::string>& words = flags.positional();
  if (words.size() > 1) return cli::usage_error(command_name, "expects [ID], got " + std::to_string(words.size()) + " arguments");
  uint64_t target = 0;
  if (!words.empty()) {
    auto parsed = cli::parse_u64(words[0], "ID");
    if (!parsed.is_ok() || *parsed == 0) return cli::usage_error(command_name, "ID must be a node id from 1");
    target = *parsed;
  }
  auto client = client_from_flags(flags);
  if (!client.is_ok()) return cli::usage_error(command_name, client.status().message());
  const auto started = std::chrono::steady_clock::now();
  Result<ClientResponse> response = (*client)->leader_transfer(target);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (!response.is_ok()) {
    std::cerr << "keyval " << command_name << ": " << response.status().message() << "\n";
    return response.status().code() == Code::invalid_argument ? cli::exit_usage : exit_unavailable;
  }
  auto json = json_output(flags);
  if (!json.is_ok()) return cli::usage_error(command_name, json.status().message());
  (*json ? std::cerr : std::cout) << "leadership moved from node " << response->node_id << " to node " << response->leader_hint
            << " in term " << response->term << " (" << static_cast<uint64_t>(ms) << " ms)\n";
  cli::JsonLine line;
  line.add("command", command_name).add("from", response->node_id).add("to", response->leader_hint)
      .add("term", response->term).add("ms", ms);
  std::cout << line.str() << std::endl;
  return cli::exit_ok;
}

}  // namespace

int leader_main(const std::vector<std::string>& args) {
  return cli::dispatch("leader", {{"transfer", "hand leadership to node ID", transfer_main}}, args,
                       "expects: leader transfer [ID]");
}

}  // namespace keyval::commands
