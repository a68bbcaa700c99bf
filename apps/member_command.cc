// keyval member list|add|promote|remove: membership changes for operators (docs/MEMBERSHIP.md;
// Raft thesis §4.1, one server at a time).
//
//   keyval member list
//   keyval member add ID --peer HOST:PORT --client HOST:PORT [--learner] [--catch-up-timeout-ms T]
//   keyval member promote ID
//   keyval member remove ID
//   (each with --endpoints ..., --timeout-ms T, --request-timeout-ms R as the other client commands)
//
// Each prints what it did and the configuration now in use (one line per member: voter or
// learner, peer and client address, and in the leader's view its match index), and last a JSON
// line {"command":"member add",...,"configuration_index":I,"committed":true,"leader":L,
// "members":[{"id":1,"voter":true,"peer":"...","client":"...","match":M},...]}.
// `member add` without --learner adds a learner, waits until its log is within the promote
// bound of the leader's (raft::Config::promote_lag_max entries; it says so while it waits), then
// promotes it; after --catch-up-timeout-ms (default 60000) it gives up, leaving it a learner.
// Exit codes as the other client commands: 0 done; 2 usage, or a change the cluster refused
// (the message says why: one change at a time, an id already a member, a learner far behind,
// the last voter); 3 the cluster did not complete it (or a learner that did not catch up).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/endpoint.h"
#include "client/kv_client.h"
#include "client/kv_socket.h"
#include "raft/config.h"

namespace keyval::commands {
namespace {

constexpr int exit_unavailable = 3;
constexpr uint64_t catch_up_timeout_ms_default = 60000;
constexpr uint64_t catch_up_poll_ms = 200;
constexpr uint64_t catch_up_report_ms = 1000;  // a "waiting" line at most this often

// -w json: stdout carries only the JSON line; the lines for people go to stderr.
bool json_mode = false;
std::ostream& text_out() { return json_mode ? std::cerr : std::cout; }

int failed(const std::string& command, const Status& status) {
  std::cerr << "keyval " << command << ": " << status.message() << "\n";
  return status.code() == Code::invalid_argument ? cli::exit_usage : exit_unavailable;
}

const ConfigurationMember* find_member(const ClientResponse& view, uint64_t id) {
  for (const ConfigurationMember& member : view.configuration) {
    if (member.node_id == id) return &member;
  }
  return nullptr;
}

// The leader's own entry in its view: its last durable index, what a member catches up to.
uint64_t leader_index(const ClientResponse& view) {
  const ConfigurationMember* leader = find_member(view, view.node_id);
  return leader != nullptr ? leader->match_index : 0;
}

void print_configuration(const ClientResponse& view) {
  text_out() << "configuration at index " << view.configuration_index << " ("
            << (view.configuration_committed ? "committed" : "not yet committed") << "), leader "
            << (view.leader_hint == 0 ? std::string("unknown") : "node " + std::to_string(view.leader_hint))
            << ", as node " << view.node_id << " (" << view.role << ") sees it:\n";
  const bool leads = view.role == "leader";
  for (const ConfigurationMember& member : view.configuration) {
    text_out() << "  node " << member.node_id << (member.learner ? " learner" : " voter  ") << "  peer "
              << member.peer_address << "  client "
              << (member.client_address.empty() ? std::string("(unknown)") : member.client_address);
    if (leads) text_out() << "  match " << member.match_index;
    text_out() << "\n";
  }
}

cli::Json configuration_json(const ClientResponse& view) {
  cli::Json members = cli::Json::array();
  for (const ConfigurationMember& member : view.configuration) {
    cli::JsonLine item;
    item.add("id", member.node_id).add_bool("voter", !member.learner).add("peer", member.peer_address)
        .add("client", member.client_address);
    if (view.role == "leader") item.add("match", member.match_index);
    members.push_back(item.json());
  }
  return members;
}

void add_configuration(cli::JsonLine& line, const ClientResponse& view) {
  line.add("configuration_index", view.configuration_index).add_bool("committed", view.configuration_committed)
      .add("leader", view.leader_hint).add("answered_by", view.node_id).add("role", view.role)
      .add("members", configuration_json(view));
}

// Prints the configuration the client sees now (from the leader when it can), and the JSON line.
int finish(KvClient& client, const std::string& command, cli::JsonLine& line) {
  auto view = client.member_list();
  if (!view.is_ok()) return failed(command, view.status());
  print_configuration(*view);
  add_configuration(line, *view);
  std::cout << line.str() << std::endl;
  return cli::exit_ok;
}

const char* const exit_codes_text =
    "exit: 0 done, 2 usage or a change the cluster refused (the message says why), 3 the cluster did not complete it";

// A member subcommand's flags (its own, then the shared client flags) parsed from `args`, and
// the client they describe; the exit code to end with instead when they are bad or --help.
std::optional<int> parse_member(const std::string& path, const std::string& summary, const std::string& words,
                                const std::vector<cli::FlagSpec>& own, const std::vector<std::string>& args,
                                cli::Flags& flags, std::unique_ptr<KvClient>& client) {
  cli::Command command(path, summary, words);
  command.add(own).add(client_flag_specs()).footer(exit_codes_text);
  if (auto exit = command.parse(args, flags)) return exit;
  auto json = json_output(flags);
  if (!json.is_ok()) return cli::usage_error(path, json.status().message());
  json_mode = *json;
  auto made = client_from_flags(flags);
  if (!made.is_ok()) return cli::usage_error(path, made.status().message());
  client = std::move(*made);
  return std::nullopt;
}

Result<uint64_t> parse_id(const std::vector<std::string>& words, const std::string& command) {
  if (words.size() != 1) {
    return Status::invalid_argument("expects ID, got " + std::to_string(words.size()) + " arguments");
  }
  auto parsed = cli::parse_u64(words[0], "ID");
  if (!parsed.is_ok() || *parsed == 0) return Status::invalid_argument(command + ": ID must be a node id from 1");
  return *parsed;
}

int list_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  std::unique_ptr<KvClient> client_owner;
  if (auto exit = parse_member("member list", "the configuration in use: voters, learners, addresses, match indexes",
                               "", {}, args, flags, client_owner)) {
    return *exit;
  }
  KvClient& client = *client_owner;
  if (!flags.positional().empty()) return cli::usage_error("member list", "expects no arguments");
  auto view = client.member_list();
  if (!view.is_ok()) return failed("member list", view.status());
  print_configuration(*view);
  cli::JsonLine line;
  line.add("command", "member list");
  add_configuration(line, *view);
  std::cout << line.str() << std::endl;
  return cli::exit_ok;
}

// Polls the leader's view until learner `id` is within the promote bound; false on timeout.
bool wait_for_catch_up(KvClient& client, uint64_t id, uint64_t timeout_ms, std::string* last_seen) {
  const uint64_t lag_max = raft::Config{}.promote_lag_max;
  const uint64_t deadline = steady_now_ms() + timeout_ms;
  uint64_t reported_at = 0;
  while (true) {
    auto view = client.member_list();
    if (view.is_ok() && view->role == "leader") {
      const ConfigurationMember* member = find_member(*view, id);
      const uint64_t target = leader_index(*view);
      const uint64_t match = member != nullptr ? member->match_index : 0;
      *last_seen = "its log at " + std::to_string(match) + " of the leader's " + std::to_string(target);
      // The leader promotes a learner only once its log holds the configuration in use
      // (raft/membership.cc, check_conf_change): until then it would not vote.
      if (member != nullptr && match > 0 && match >= view->configuration_index && match + lag_max >= target) {
        return true;
      }
      if (steady_now_ms() - reported_at >= catch_up_report_ms) {
        text_out() << "waiting for node " << id << " to catch up: " << *last_seen << " (promoted within "
                  << lag_max << " entries)" << std::endl;
        reported_at = steady_now_ms();
      }
    }
    if (steady_now_ms() >= deadline) return false;
    ::usleep(catch_up_poll_ms * 1000);
  }
}

int add_main(const std::vector<std::string>& args) {
  const std::string command = "member add";
  cli::Flags flags;
  std::unique_ptr<KvClient> client_owner;
  if (auto exit = parse_member(
          command, "add node ID as a learner; without --learner, wait until it caught up and promote it", "ID",
          {{"peer", "", "the new node's peer address HOST:PORT; required"},
           {"client", "", "the new node's client address HOST:PORT; required"},
           {"learner", "", "leave it a learner (promote it later with `member promote`)", true},
           {"catch-up-timeout-ms", std::to_string(catch_up_timeout_ms_default), "how long to wait for it to catch up"}},
          args, flags, client_owner)) {
    return *exit;
  }
  KvClient& client = *client_owner;
  auto id = parse_id(flags.positional(), command);
  if (!id.is_ok()) return cli::usage_error(command, id.status().message());
  if (!flags.has("peer") || !flags.has("client")) return cli::usage_error(command, "--peer HOST:PORT and --client HOST:PORT are required");
  for (const char* flag : {"peer", "client"}) {
    auto endpoint = parse_endpoint(flags.get(flag));
    if (!endpoint.is_ok()) return cli::usage_error(command, std::string("--") + flag + ": " + endpoint.status().message());
  }
  auto timeout_ms = flags.get_u64("catch-up-timeout-ms", catch_up_timeout_ms_default);
  if (!timeout_ms.is_ok()) return cli::usage_error(command, timeout_ms.status().message());
  const bool learner = flags.has("learner");
  auto added = client.member_add(*id, flags.get("peer"), flags.get("client"));
  if (!added.is_ok()) return failed(command, added.status());
  text_out() << "added node " << *id << " as a learner at index " << added->index << " (term " << added->term
            << "): peer " << flags.get("peer") << ", client " << flags.get("client") << std::endl;
  cli::JsonLine line;
  line.add("command", command).add("id", *id).add("added_index", added->index);
  if (learner) {
    line.add_bool("learner", true);
    return finish(client, command, line);
  }
  std::string last_seen = "no view from the leader";
  const uint64_t deadline = steady_now_ms() + *timeout_ms;
  while (true) {
    const uint64_t left = deadline > steady_now_ms() ? deadline - steady_now_ms() : 0;
    if (!wait_for_catch_up(client, *id, left, &last_seen)) {
      std::cerr << "keyval " << command << ": node " << *id << " did not catch up within " << *timeout_ms
                << " ms (" << last_seen << "): it stays a learner. Is it running (keyval node --id " << *id
                << " --join ...)? Promote it later with: keyval member promote " << *id << "\n";
      return exit_unavailable;
    }
    auto promoted = client.member_promote(*id);
    if (promoted.is_ok()) {
      text_out() << "promoted node " << *id << " to voter at index " << promoted->index << " (term "
                << promoted->term << ")" << std::endl;
      line.add_bool("learner", false).add("promoted_index", promoted->index);
      return finish(client, command, line);
    }
    // Behind again (the leader's log grew meanwhile): wait and ask again while time is left.
    if (promoted.status().message().find("learner_behind") == std::string::npos || steady_now_ms() >= deadline) {
      std::cerr << "keyval " << command << ": node " << *id << " was added as a learner but not promoted: "
                << promoted.status().message() << "\n";
      return promoted.status().code() == Code::invalid_argument ? cli::exit_usage : exit_unavailable;
    }
  }
}

int promote_main(const std::vector<std::string>& args) {
  const std::string command = "member promote";
  cli::Flags flags;
  std::unique_ptr<KvClient> client_owner;
  if (auto exit = parse_member(command, "make learner ID a voter", "ID", {}, args, flags, client_owner)) return *exit;
  KvClient& client = *client_owner;
  auto id = parse_id(flags.positional(), command);
  if (!id.is_ok()) return cli::usage_error(command, id.status().message());
  auto promoted = client.member_promote(*id);
  if (!promoted.is_ok()) return failed(command, promoted.status());
  text_out() << "promoted node " << *id << " to voter at index " << promoted->index << " (term " << promoted->term
            << ")" << std::endl;
  cli::JsonLine line;
  line.add("command", command).add("id", *id).add("index", promoted->index).add("term", promoted->term);
  return finish(client, command, line);
}

int remove_main(const std::vector<std::string>& args) {
  const std::string command = "member remove";
  cli::Flags flags;
  std::unique_ptr<KvClient> client_owner;
  if (auto exit = parse_member(command, "remove member ID (the leader hands over first when it is ID)", "ID", {}, args,
                               flags, client_owner)) {
    return *exit;
  }
  KvClient& client = *client_owner;
  auto id = parse_id(flags.positional(), command);
  if (!id.is_ok()) return cli::usage_error(command, id.status().message());
  auto removed = client.member_remove(*id);
  if (!removed.is_ok()) return failed(command, removed.status());
  text_out() << "removed node " << *id << " at index " << removed->index << " (term " << removed->term
            << ", by leader node " << removed->node_id << ")" << std::endl;
  cli::JsonLine line;
  line.add("command", command).add("id", *id).add("index", removed->index).add("term", removed->term)
      .add("by", removed->node_id);
  return finish(client, command, line);
}

}  // namespace

int member_main(const std::vector<std::string>& args) {
  return cli::dispatch("member",
                       {{"list", "the configuration in use", list_main},
                        {"add", "add node ID (a learner, promoted once caught up)", add_main},
                        {"promote", "make learner ID a voter", promote_main},
                        {"remove", "remove member ID", remove_main}},
                       args, "expects: member list | add ID --peer H:P --client H:P [--learner] | promote ID | remove ID");
}

}  // namespace keyval::commands
