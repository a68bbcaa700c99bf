// The Redis commands (redis_commands.h): arity and syntax checks, then a reply or a step of
// client requests. Each command is one small function; the table at the bottom names them.
#include "actors/redis_commands.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include "storage/decimal.h"
#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"

namespace keyval {
namespace {

// The Redis version whose commands and replies the gateway follows (HELLO, INFO): clients
// use it to choose features.
constexpr const char* redis_compatible_version = "7.0.0";

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool equals(const std::string& word, const char* lowercase) { return lower(word) == lowercase; }

const char* not_an_integer = "ERR value is not an integer or out of range";

RedisOutcome written() { return RedisOutcome{}; }

RedisOutcome error(RespWriter& out, const std::string& text) {
  out.error(text);
  return written();
}

RedisOutcome step(std::vector<ClientRequest> requests, RedisContinuation then, bool local = false) {
  RedisOutcome outcome;
  outcome.step = RedisStep{std::move(requests), local, std::move(then)};
  return outcome;
}

ClientRequest request_of(ClientOp op, std::string key = "") {
  ClientRequest request;
  request.op = op;
  request.key = std::move(key);
  return request;
}

// --- Connection and server commands --------------------------------------------------

RedisOutcome ping(const std::vector<std::string>& arguments, RespWriter& out) {
  if (arguments.size() > 2) return error(out, "ERR wrong number of arguments for 'ping' command");
  if (arguments.size() == 2) {
    out.bulk(arguments[1]);
  } else {
    out.simple("PONG");
  }
  return written();
}

RedisOutcome select(const std::vector<std::string>& arguments, RespWriter& out) {
  auto index = parse_signed_decimal(arguments[1]);
  if (!index) return error(out, not_an_integer);
  if (*index != 0) return error(out, "ERR DB index is out of range");
  out.simple("OK");
  return written();
}

// CONFIG GET answers the few parameters tools read at start (redis-benchmark reads `save` and
// `appendonly`); CONFIG SET changes nothing and says so.
RedisOutcome config(const std::vector<std::string>& arguments, RespWriter& out) {
  if (!equals(arguments[1], "get")) {
    return error(out, "ERR CONFIG " + lower(arguments[1]) + " is not supported: KeyVal is configured by its flags");
  }
  if (arguments.size() < 3) return error(out, "ERR wrong number of arguments for 'config|get' command");
  static const std::vector<std::pair<std::string, std::string>> parameters = {
      {"appendonly", "yes"}, {"appendfsync", "always"}, {"databases", "1"}, {"save", ""}};
  std::vector<std::pair<std::string, std::string>> matched;
  for (const auto& parameter : parameters) {
    for (size_t i = 2; i < arguments.size(); ++i) {
      if (resp_glob_match(lower(arguments[i]), parameter.first)) {
        matched.push_back(parameter);
        break;
      }
    }
  }
  out.map(matched.size());
  for (const auto& [name, value] : matched) {
    out.bulk(name);
    out.bulk(value);
  }
  return written();
}

// COMMAND: what redis-cli asks at start (COMMAND DOCS for its hints; an empty answer makes it
// use its own), COUNT, INFO and the plain list.
RedisOutcome command(const std::vector<std::string>& arguments, RespWriter& out) {
  const auto names = RedisCommands::command_names();
  if (arguments.size() >= 2 && equals(arguments[1], "count")) {
    out.integer(static_cast<int64_t>(names.size()));
    return written();
  }
  if (arguments.size() >= 2 && equals(arguments[1], "docs")) {
    out.map(0);
    return written();
  }
  std::vector<std::string> wanted = names;
  if (arguments.size() >= 2 && equals(arguments[1], "info")) {
    wanted.assign(arguments.begin() + 2, arguments.end());
  } else if (arguments.size() >= 2) {
    return error(out, "ERR unknown subcommand '" + arguments[1] + "'. Try COMMAND HELP.");
  }
  out.array(wanted.size());
  for (const std::string& name : wanted) {
    if (std::find(names.begin(), names.end(), lower(name)) == names.end()) {
      out.null_array();
      continue;
    }
    // name, arity, flags, first key, last key, step: the parts clients read.
    out.array(6);
    out.bulk(lower(name));
    out.integer(-1);
    out.set(0);
    out.integer(0);
    out.integer(0);
    out.integer(0);
  }
  return written();
}

// --- Key commands -----------------------------------------------------------------------

RedisOutcome get(const std::vector<std::string>& arguments) {
  return step({request_of(ClientOp::get, arguments[1])}, [](const auto& answers, RespWriter& out) {
    if (answers[0].found) {
      out.bulk(answers[0].value);
    } else {
      out.null();
    }
    return std::optional<RedisStep>();
  });
}

RedisOutcome strlen_of(const std::vector<std::string>& arguments) {
  return step({request_of(ClientOp::get, arguments[1])}, [](const auto& answers, RespWriter& out) {
    out.integer(answers[0].found ? static_cast<int64_t>(answers[0].value.size()) : 0);
    return std::optional<RedisStep>();
  });
}

RedisOutcome getdel(const std::vector<std::string>& arguments) {
  return step({request_of(ClientOp::del, arguments[1])}, [](const auto& answers, RespWriter& out) {
    if (answers[0].found) {
      out.bulk(answers[0].value);
    } else {
      out.null();
    }
    return std::optional<RedisStep>();
  });
}

// SET key value [NX|XX] [GET] [KEEPTTL]; expiry options are refused: keys do not expire.
RedisOutcome set(const std::vector<std::string>& arguments, RespWriter& out) {
  bool nx = false;
  bool xx = false;
  bool get_previous = false;
  for (size_t i = 3; i < arguments.size(); ++i) {
    const std::string option = lower(arguments[i]);
    if (option == "nx") {
      nx = true;
    } else if (option == "xx") {
      xx = true;
    } else if (option == "get") {
      get_previous = true;
    } else if (option == "keepttl") {
      // No key has a time to live, so there is none to keep.
    } else if (option == "ex" || option == "px" || option == "exat" || option == "pxat") {
      return error(out, "ERR SET " + arguments[i] + " is not supported: KeyVal keys do not expire (no TTLs)");
    } else {
      return error(out, "ERR syntax error");
    }
  }
  if (nx && xx) return error(out, "ERR syntax error");
  ClientRequest request = request_of(ClientOp::put, arguments[1]);
  request.value = arguments[2];
  if (nx || xx) {
    request.op = ClientOp::put_many;
    request.keys = {arguments[1]};
    request.values = {arguments[2]};
    request.key.clear();
    request.condition = static_cast<uint8_t>(nx ? PutCondition::all_absent : PutCondition::all_present);
  }
  const bool conditional = nx || xx;
  request.blind = !conditional && !get_previous;  // SET GET answers the value replaced: read it
  return step({std::move(request)}, [conditional, get_previous](const auto& answers, RespWriter& out) {
    const ClientResponse& answer = answers[0];
    if (get_previous) {
      if (answer.found) {
        out.bulk(answer.value);
      } else {
        out.null();
      }
    } else if (conditional && !answer.cas_succeeded) {
      out.null();
    } else {
      out.simple("OK");
    }
    return std::optional<RedisStep>();
  });
}

RedisOutcome del(const std::vector<std::string>& arguments) {
  ClientRequest request = request_of(ClientOp::del_many);
  request.keys.assign(arguments.begin() + 1, arguments.end());
  return step({std::move(request)}, [](const auto& answers, RespWriter& out) {
    out.integer(answers[0].number);
    return std::optional<RedisStep>();
  });
}

// EXISTS and MGET: one linearizable get per key, sent together.
RedisOutcome gets(const std::vector<std::string>& arguments, bool count_only) {
  std::vector<ClientRequest> requests;
  for (size_t i = 1; i < arguments.size(); ++i) requests.push_back(request_of(ClientOp::get, arguments[i]));
  return step(std::move(requests), [count_only](const auto& answers, RespWriter& out) {
    if (count_only) {
      int64_t found = 0;
      for (const ClientResponse& answer : answers) found += answer.found ? 1 : 0;
      out.integer(found);
      return std::optional<RedisStep>();
    }
    out.array(answers.size());
    for (const ClientResponse& answer : answers) {
      if (answer.found) {
        out.bulk(answer.value);
      } else {
        out.null();
      }
    }
    return std::optional<RedisStep>();
  });
}

RedisOutcome mset(const std::vector<std::string>& arguments, RespWriter& out, bool if_all_absent) {
  if (arguments.size() % 2 == 0) {
    return error(out, "ERR wrong number of arguments for '" + lower(arguments[0]) + "' command");
  }
  ClientRequest request = request_of(ClientOp::put_many);
  for (size_t i = 1; i + 1 < arguments.size(); i += 2) {
    request.keys.push_back(arguments[i]);
    request.values.push_back(arguments[i + 1]);
  }
  request.condition = static_cast<uint8_t>(if_all_absent ? PutCondition::all_absent : PutCondition::none);
  return step({std::move(request)}, [if_all_absent](const auto& answers, RespWriter& out) {
    if (if_all_absent) {
      out.integer(answers[0].cas_succeeded ? 1 : 0);
    } else {
      out.simple("OK");
    }
    return std::optional<RedisStep>();
  });
}

RedisOutcome increment(const std::string& key, int64_t delta) {
  ClientRequest request = request_of(ClientOp::increment, key);
  request.delta = delta;
  return step({std::move(request)}, [](const auto& answers, RespWriter& out) {
    out.integer(answers[0].number);
    return std::optional<RedisStep>();
  });
}

RedisOutcome increment_by(const std::vector<std::string>& arguments, RespWriter& out, bool negate) {
  auto delta = parse_signed_decimal(arguments[2]);
  if (!delta) return error(out, not_an_integer);
  if (negate && *delta == INT64_MIN) return error(out, "ERR decrement would overflow");
  return increment(arguments[1], negate ? -*delta : *delta);
}

RedisOutcome append(const std::vector<std::string>& arguments) {
  ClientRequest request = request_of(ClientOp::append, arguments[1]);
  request.value = arguments[2];
  return step({std::move(request)}, [](const auto& answers, RespWriter& out) {
    out.integer(answers[0].number);
    return std::optional<RedisStep>();
  });
}

ClientRequest range_request(std::string from, std::string to, uint64_t limit) {
  ClientRequest request = request_of(ClientOp::range, std::move(from));
  request.range_end = std::move(to);
  request.range_limit = limit;
  request.keys_only = true;
  return request;
}

// KEYS pattern: every key in the range the pattern's literal prefix allows, page by page
// (each page a linearizable range read), filtered by the pattern.
RedisStep keys_page(std::string pattern, std::string from, std::shared_ptr<std::vector<std::string>> found) {
  const std::string prefix = resp_glob_prefix(pattern);
  if (from < prefix) from = prefix;
  return RedisStep{{range_request(from, prefix_end(prefix), 0)}, false,
                   [pattern, found](const auto& answers, RespWriter& out) -> std::optional<RedisStep> {
                     const ClientResponse& page = answers[0];
                     for (const std::string& key : page.keys) {
                       if (resp_glob_match(pattern, key)) found->push_back(key);
                     }
                     if (page.more && !page.keys.empty()) {
                       return keys_page(pattern, page.keys.back() + std::string(1, '\0'), found);
                     }
                     out.array(found->size());
                     for (const std::string& key : *found) out.bulk(key);
                     return std::nullopt;
                   }};
}

RedisOutcome dbsize() {
  ClientRequest request = range_request("", "", 0);
  request.count_only = true;
  return step({std::move(request)}, [](const auto& answers, RespWriter& out) {
    out.integer(static_cast<int64_t>(answers[0].range_count));
    return std::optional<RedisStep>();
  });
}

using Handler = std::function<RedisOutcome(RedisCommands&, RedisSession&, const std::vector<std::string>&,
                                           RespWriter&, const RedisStats&)>;

struct CommandSpec {
  int arity;  // Redis's: N exactly N arguments with the name; -N at least N
  Handler handler;
};

}  // namespace

std::string RedisCommands::error_of(const ClientResponse& response) {
  switch (response.status) {
    case ClientStatus::rejected: {
      std::string message = response.message;
      if (message == "value is not an integer or out of range") return not_an_integer;
      return "ERR " + message;
    }
    case ClientStatus::timeout:
    case ClientStatus::unavailable:
      return std::string("ERR ") + client_status_name(response.status) +
             ": the command may or may not have taken effect (" + response.message + ")";
    case ClientStatus::not_leader:
    case ClientStatus::no_leader:
    case ClientStatus::lost:
      return std::string("TRYAGAIN no leader could take the command (") + client_status_name(response.status) +
             ": " + response.message + "); it did not take effect";
    default: return std::string("ERR ") + client_status_name(response.status) + ": " + response.message;
  }
}

uint64_t RedisCommands::remember_cursor(std::string resume_key) {
  const uint64_t cursor = next_cursor_++;
  cursors_[cursor] = std::move(resume_key);
  cursor_order_.push_back(cursor);
  while (cursor_order_.size() > config_.scan_cursors_max) {
    cursors_.erase(cursor_order_.front());
    cursor_order_.pop_front();
  }
  return cursor;
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: `count` keys examined per call (a range read
// of at most that many keys from where the cursor left off), those matching returned.
RedisOutcome RedisCommands::scan(const std::vector<std::string>& arguments, RespWriter& out) {
  std::string pattern = "*";
  uint64_t count = 10;
  bool only_other_types = false;
  for (size_t i = 2; i < arguments.size(); i += 2) {
    if (i + 1 >= arguments.size()) return error(out, "ERR syntax error");
    const std::string option = lower(arguments[i]);
    if (option == "match") {
      pattern = arguments[i + 1];
    } else if (option == "count") {
      auto parsed = parse_signed_decimal(arguments[i + 1]);
      if (!parsed) return error(out, not_an_integer);
      if (*parsed < 1) return error(out, "ERR syntax error");
      count = std::min<uint64_t>(static_cast<uint64_t>(*parsed), 100000);
    } else if (option == "type") {
      only_other_types = !equals(arguments[i + 1], "string");  // every value is a string
    } else {
      return error(out, "ERR syntax error");
    }
  }
  auto cursor = parse_signed_decimal(arguments[1]);
  if (!cursor || *cursor < 0) return error(out, "ERR invalid cursor");
  const std::string prefix = resp_glob_prefix(pattern);
  std::string from = prefix;
  if (*cursor != 0) {
    auto found = cursors_.find(static_cast<uint64_t>(*cursor));
    if (found == cursors_.end()) return error(out, "ERR invalid cursor (unknown or expired)");
    from = std::max(from, found->second);
  }
  if (only_other_types) {
    out.array(2);
    out.bulk("0");
    out.array(0);
    return written();
  }
  return step({range_request(from, prefix_end(prefix), count)},
              [this, pattern](const auto& answers, RespWriter& out) {
                const ClientResponse& page = answers[0];
                uint64_t next = 0;
                if (page.more && !page.keys.empty()) next = remember_cursor(page.keys.back() + std::string(1, '\0'));
                std::vector<const std::string*> matched;
                for (const std::string& key : page.keys) {
                  if (resp_glob_match(pattern, key)) matched.push_back(&key);
                }
                out.array(2);
                out.bulk(std::to_string(next));
                out.array(matched.size());
                for (const std::string* key : matched) out.bulk(*key);
                return std::optional<RedisStep>();
              });
}

// INFO [section ...]: this node's view (the status request goes to this node, not the leader).
RedisOutcome RedisCommands::info(const std::vector<std::string>& arguments, const RedisStats& stats) {
  std::vector<std::string> sections;
  for (size_t i = 1; i < arguments.size(); ++i) sections.push_back(lower(arguments[i]));
  auto wants = [sections](const char* name) {
    if (sections.empty()) return true;
    for (const std::string& section : sections) {
      if (section == name || section == "all" || section == "everything" || section == "default") return true;
    }
    return false;
  };
  const uint64_t node_id = config_.node_id;
  return step(
      {request_of(ClientOp::status)},
      [wants, stats, node_id](const auto& answers, RespWriter& out) {
        const ClientResponse& status = answers[0];
        std::string text;
        auto line = [&text](const std::string& key, const std::string& value) {
          text += key + ":" + value + "\r\n";
        };
        if (wants("server")) {
          text += "# Server\r\n";
          line("redis_version", redis_compatible_version);
          line("server_name", "keyval");
          line("redis_mode", "standalone");
          line("keyval_node_id", std::to_string(node_id));
          line("uptime_in_seconds", std::to_string((stats.now_ms - stats.started_at_ms) / 1000));
          text += "\r\n";
        }
        if (wants("clients")) {
          text += "# Clients\r\n";
          line("connected_clients", std::to_string(stats.connections_open));
          text += "\r\n";
        }
        if (wants("replication")) {
          text += "# Replication\r\n";
          line("role", status.role == "leader" ? "master" : "slave");
          line("raft_role", status.role);
          line("raft_term", std::to_string(status.term));
          line("raft_leader_id", std::to_string(status.leader_hint));
          line("raft_commit_index", std::to_string(status.commit_index));
          line("raft_applied_index", std::to_string(status.applied_index));
          line("raft_members", std::to_string(status.members.size()));
          text += "\r\n";
        }
        if (wants("persistence")) {
          text += "# Persistence\r\n";
          line("aof_enabled", "1");
          line("wal_first_index", std::to_string(status.first_index));
          line("wal_last_index", std::to_string(status.last_index));
          line("snapshot_index", std::to_string(status.snapshot_index));
          line("snapshot_term", std::to_string(status.snapshot_term));
          text += "\r\n";
        }
        if (wants("stats")) {
          text += "# Stats\r\n";
          line("total_connections_received", std::to_string(stats.connections_total));
          line("total_commands_processed", std::to_string(stats.commands_total));
          line("forwarded_requests", std::to_string(stats.forwarded_total));
          line("batched_read_commands", std::to_string(stats.batched_reads_total));
          text += "\r\n";
        }
        out.verbatim(text);
        return std::optional<RedisStep>();
      },
      /*local=*/true);
}

// HELLO [protover [AUTH user password] [SETNAME name]].
RedisOutcome RedisCommands::hello(RedisSession& session, const std::vector<std::string>& arguments, RespWriter& out) {
  int protocol = session.protocol;
  if (arguments.size() >= 2) {
    auto version = parse_signed_decimal(arguments[1]);
    if (!version) return error(out, "ERR Protocol version is not an integer or out of range");
    if (*version != 2 && *version != 3) return error(out, "NOPROTO unsupported protocol version");
    protocol = static_cast<int>(*version);
  }
  std::string name = session.name;
  bool authenticated = session.authenticated;
  for (size_t i = 2; i < arguments.size(); ++i) {
    const std::string option = lower(arguments[i]);
    if (option == "auth" && i + 2 < arguments.size()) {
      if (config_.password.empty() || arguments[i + 2] != config_.password ||
          (arguments[i + 1] != "default")) {
        return error(out, "WRONGPASS invalid username-password pair or user is disabled.");
      }
      authenticated = true;
      i += 2;
    } else if (option == "setname" && i + 1 < arguments.size()) {
      name = arguments[++i];
    } else {
      return error(out, "ERR Syntax error in HELLO option '" + arguments[i] + "'");
    }
  }
  if (!config_.password.empty() && !authenticated) {
    return error(out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
                      "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
                      "protocol version at the same time");
  }
  session.protocol = protocol;
  session.name = name;
  session.authenticated = authenticated;
  out.set_protocol(protocol);
  out.map(7);
  out.bulk("server");
  out.bulk("keyval");
  out.bulk("version");
  out.bulk(redis_compatible_version);
  out.bulk("proto");
  out.integer(protocol);
  out.bulk("id");
  out.integer(static_cast<int64_t>(session.id));
  out.bulk("mode");
  out.bulk("standalone");
  out.bulk("role");
  out.bulk("master");
  out.bulk("modules");
  out.array(0);
  return written();
}

RedisOutcome RedisCommands::client(RedisSession& session, const std::vector<std::string>& arguments, RespWriter& out) {
  const std::string sub = lower(arguments[1]);
  if (sub == "id" && arguments.size() == 2) {
    out.integer(static_cast<int64_t>(session.id));
  } else if (sub == "getname" && arguments.size() == 2) {
    if (session.name.empty()) {
      out.null();
    } else {
      out.bulk(session.name);
    }
  } else if (sub == "setname" && arguments.size() == 3) {
    for (char c : arguments[2]) {
      if (c < '!' || c > '~') return error(out, "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    session.name = arguments[2];
    out.simple("OK");
  } else if (sub == "setinfo" && arguments.size() == 4) {
    out.simple("OK");  // library name and version: accepted, not kept
  } else if (sub == "info" && arguments.size() == 2) {
    out.verbatim("id=" + std::to_string(session.id) + " addr=" + session.address + " name=" + session.name +
                 " db=0 resp=" + std::to_string(session.protocol) + "\n");
  } else {
    return error(out, "ERR unknown subcommand or wrong number of arguments for '" + arguments[1] + "'. Try CLIENT HELP.");
  }
  return written();
}

namespace {

const std::map<std::string, CommandSpec>& command_table() {
  static const std::map<std::string, CommandSpec> table = {
      {"ping", {-1, [](auto&, auto&, const auto& a, auto& out, const auto&) { return ping(a, out); }}},
      {"echo",
       {2, [](auto&, auto&, const auto& a, auto& out, const auto&) {
          out.bulk(a[1]);
          return written();
        }}},
      {"quit",
       {-1, [](auto&, auto&, const auto&, auto& out, const auto&) {
          out.simple("OK");
          RedisOutcome outcome;
          outcome.close = true;
          return outcome;
        }}},
      {"select", {2, [](auto&, auto&, const auto& a, auto& out, const auto&) { return select(a, out); }}},
      {"hello", {-1, [](auto& c, auto& s, const auto& a, auto& out, const auto&) { return c.hello(s, a, out); }}},
      {"client", {-2, [](auto& c, auto& s, const auto& a, auto& out, const auto&) { return c.client(s, a, out); }}},
      {"command", {-1, [](auto&, auto&, const auto& a, auto& out, const auto&) { return command(a, out); }}},
      {"config", {-2, [](auto&, auto&, const auto& a, auto& out, const auto&) { return config(a, out); }}},
      {"info", {-1, [](auto& c, auto&, const auto& a, auto&, const auto& st) { return c.info(a, st); }}},
      {"get", {2, [](auto&, auto&, const auto& a, auto&, const auto&) { return get(a); }}},
      {"set", {-3, [](auto&, auto&, const auto& a, auto& out, const auto&) { return set(a, out); }}},
      {"del", {-2, [](auto&, auto&, const auto& a, auto&, const auto&) { return del(a); }}},
      {"unlink", {-2, [](auto&, auto&, const auto& a, auto&, const auto&) { return del(a); }}},
      {"exists", {-2, [](auto&, auto&, const auto& a, auto&, const auto&) { return gets(a, true); }}},
      {"mget", {-2, [](auto&, auto&, const auto& a, auto&, const auto&) { return gets(a, false); }}},
      {"mset", {-3, [](auto&, auto&, const auto& a, auto& out, const auto&) { return mset(a, out, false); }}},
      {"msetnx", {-3, [](auto&, auto&, const auto& a, auto& out, const auto&) { return mset(a, out, true); }}},
      {"incr", {2, [](auto&, auto&, const auto& a, auto&, const auto&) { return increment(a[1], 1); }}},
      {"decr", {2, [](auto&, auto&, const auto& a, auto&, const auto&) { return increment(a[1], -1); }}},
      {"incrby", {3, [](auto&, auto&, const auto& a, auto& out, const auto&) { return increment_by(a, out, false); }}},
      {"decrby", {3, [](auto&, auto&, const auto& a, auto& out, const auto&) { return increment_by(a, out, true); }}},
      {"getdel", {2, [](auto&, auto&, const auto& a, auto&, const auto&) { return getdel(a); }}},
      {"strlen", {2, [](auto&, auto&, const auto& a, auto&, const auto&) { return strlen_of(a); }}},
      {"append", {3, [](auto&, auto&, const auto& a, auto&, const auto&) { return append(a); }}},
      {"scan", {-2, [](auto& c, auto&, const auto& a, auto& out, const auto&) { return c.scan(a, out); }}},
      {"keys",
       {2, [](auto&, auto&, const auto& a, auto&, const auto&) {
          RedisOutcome outcome;
          outcome.step = keys_page(a[1], "", std::make_shared<std::vector<std::string>>());
          return outcome;
        }}},
      {"dbsize", {1, [](auto&, auto&, const auto&, auto&, const auto&) { return dbsize(); }}},
  };
  return table;
}

}  // namespace

std::vector<std::string> RedisCommands::command_names() {
  std::vector<std::string> names;
  for (const auto& entry : command_table()) names.push_back(entry.first);
  names.push_back("auth");
  std::sort(names.begin(), names.end());
  return names;
}

bool RedisCommands::batched_read(const RedisSession& session, const std::vector<std::string>& arguments,
                                 bool* array) const {
  if (arguments.size() < 2 || arguments[0].size() > 4) return false;
  if (!config_.password.empty() && !session.authenticated) return false;
  const std::string name = lower(arguments[0]);
  if (name == "get") {
    if (arguments.size() != 2) return false;
    *array = false;
  } else if (name == "mget") {
    if (arguments.size() - 1 > get_batch_keys_max) return false;
    *array = true;
  } else {
    return false;
  }
  for (size_t i = 1; i < arguments.size(); ++i) {
    if (arguments[i].empty() || arguments[i].size() > kv_key_bytes_max) return false;
  }
  return true;
}

void RedisCommands::write_read_reply(RespWriter& out, bool array, const uint8_t* found, const std::string* values,
                                     size_t count) {
  if (array) out.array(count);
  for (size_t i = 0; i < count; ++i) {
    if (found[i] != 0) {
      out.bulk(values[i]);
    } else {
      out.null();
    }
  }
}

RedisOutcome RedisCommands::execute(RedisSession& session, const std::vector<std::string>& arguments,
                                    RespWriter& out, const RedisStats& stats) {
  KV_ASSERT(!arguments.empty());
  const std::string name = lower(arguments[0]);
  if (name == "auth") {
    if (arguments.size() < 2 || arguments.size() > 3) return error(out, "ERR wrong number of arguments for 'auth' command");
    if (config_.password.empty()) {
      return error(out, "ERR AUTH <password> called without any password configured for the default user. Are you "
                        "sure your configuration is correct?");
    }
    const bool user_ok = arguments.size() == 2 || arguments[1] == "default";
    if (!user_ok || arguments.back() != config_.password) {
      return error(out, "WRONGPASS invalid username-password pair or user is disabled.");
    }
    session.authenticated = true;
    out.simple("OK");
    return written();
  }
  const auto& table = command_table();
  auto found = table.find(name);
  if (found == table.end()) {
    std::string text = "ERR unknown command '" + arguments[0] + "', with args beginning with: ";
    for (size_t i = 1; i < arguments.size() && text.size() < 256; ++i) text += "'" + arguments[i] + "' ";
    return error(out, text);
  }
  if (!config_.password.empty() && !session.authenticated && name != "hello" && name != "quit") {
    return error(out, "NOAUTH Authentication required.");
  }
  const int arity = found->second.arity;
  const auto count = static_cast<int>(std::min<size_t>(arguments.size(), 1u << 30));
  if ((arity > 0 && count != arity) || (arity < 0 && count < -arity)) {
    return error(out, "ERR wrong number of arguments for '" + name + "' command");
  }
  return found->second.handler(*this, session, arguments, out, stats);
}

}  // namespace keyval
