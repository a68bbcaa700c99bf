// keyval put|get|del|cas|status: one operation against a running cluster, through KvClient.
//
//   keyval put KEY VALUE            prints "OK (index I)"
//   keyval get KEY [--serializable] prints the value; exit 1 when the key is absent
//   keyval get --prefix P [range flags]   every key starting with P (as `range`)
//   keyval range FROM [TO] [--limit N] [--keys-only] [--count] [--serializable] [--page-bytes B]
//                                   the pairs with FROM <= key < TO (no TO: to the last key; FROM
//                                   "": the first key), one "KEY<TAB>VALUE" line each (--keys-only:
//                                   KEY; --count: only the number), then a summary on stderr;
//                                   paged by the nodes' 1 MiB answer bound. Linearizable per page
//                                   by default; --serializable reads one node's applied state.
//   keyval del KEY                  prints "deleted (index I)" or "absent, nothing deleted (index I)"
//   keyval cas KEY OLD NEW          sets NEW if the value is OLD; exit 1 when it is not
//   keyval cas KEY NEW --expect-absent   sets NEW only if KEY is absent; exit 1 when present
//   keyval status [--hash]          one line per node (each endpoint given and each member the
//                                   answers named, by node id), then a JSON line; exit 0 when any node answered
//                                   (--hash: each node's state hash too, and whether the replicas
//                                   agree; exit 1 when two hashed the same index differently)
// Flags: --endpoints HOST:PORT,... in any order, one reachable node is enough: the others are
// learned from its answers (default 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103), --timeout-ms T for the whole operation (default 5000), --request-timeout-ms R
// for one attempt (default min(1000, T)); TLS (docs/SECURITY.md): --tls-ca FILE (the CA that
// signed the nodes' certificates: every connection is TLS and the node's certificate is
// verified), --tls-cert FILE --tls-key FILE (this client's certificate, for nodes started with
// --client-ca).
// Exit codes: 0 done; 1 get found no key or cas did not match; 2 usage (bad flag, malformed
// endpoint, missing argument) or a request the cluster rejected as invalid; 3 the cluster did not
// complete it (no leader, unreachable, timed out: for a write the outcome may be unknown).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "client/kv_client.h"
#include "storage/kv_command.h"
#include "storage/kv_state_machine.h"

namespace keyval::commands {
namespace {

constexpr int exit_absent = 1;       // get: no such key; cas: the comparison did not match; status --hash: replicas differ
constexpr int exit_unavailable = 3;  // the cluster did not complete the operation; status: no node answered
constexpr int exit_no_quorum = 4;    // status: nodes answered, but not a majority of the voters
constexpr uint64_t timeout_ms_default = 5000;
constexpr uint64_t request_timeout_ms_default = 1000;
constexpr uint64_t timeout_ms_max = 3'600'000;
const char* const endpoints_default = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";

struct Invocation {
  std::vector<std::string> words;  // positional arguments (--hex: decoded; put/cas: the value last)
  std::unique_ptr<KvClient> client;
  bool expect_absent = false;
  bool hash = false;
  bool json = false;  // -w json / --json: one JSON object per result on stdout
  bool hex = false;   // --hex: keys and values given and printed in hex

  // A key or value as printed: as is, or in hex.
  std::string shown(const std::string& bytes) const { return hex ? cli::hex_encode(bytes) : bytes; }
};

// --hex and, for put and cas, where the value comes from.
std::vector<cli::FlagSpec> data_flag_specs(bool takes_value) {
  std::vector<cli::FlagSpec> specs = {
      {"hex", "", "keys and values (range bounds, --prefix, OLD) are given in hex and printed in hex", true}};
  if (takes_value) {
    specs.push_back({"value-file", "", "read the value (cas: NEW) from FILE; the value - reads standard input (raw bytes, any size)"});
  }
  return specs;
}

const char* const exit_codes_text =
    "exit: 0 done, 1 get: key absent / cas: no match, 2 usage or a request the cluster rejected as invalid,\n"
    "3 the cluster did not complete it (no leader, unreachable, timed out: a write's outcome may be unknown)";

// A client command's flag set: the shared client flags, and `own` before them.
cli::Command client_command(const std::string& path, const std::string& summary, const std::string& words,
                            const std::vector<cli::FlagSpec>& own = {}) {
  cli::Command command(path, summary, words);
  command.add(own).add(client_flag_specs()).footer(exit_codes_text);
  return command;
}

// Checks the positional count, reads and decodes the words and builds the client; a usage
// message on failure. `takes_value`: the last word is a value (put VALUE, cas NEW), which
// --value-file FILE gives instead, and "-" reads from standard input; a value read from a file
// or stdin is taken as it is, never hex-decoded.
Result<Invocation> parse(const cli::Flags& flags, size_t words, const std::string& expected, bool takes_value = false) {
  Invocation invocation;
  invocation.expect_absent = flags.has("expect-absent");
  invocation.hash = flags.has("hash");
  invocation.hex = flags.has("hex");
  KV_ASSIGN_OR_RETURN(invocation.json, json_output(flags));
  if (invocation.expect_absent) --words;  // cas KEY NEW: no OLD
  const bool value_from_file = takes_value && flags.has("value-file");
  if (value_from_file) --words;
  if (flags.positional().size() != words) {
    return Status::invalid_argument("expects " + (invocation.expect_absent ? std::string("KEY NEW --expect-absent")
                                                                            : expected) +
                                    (value_from_file ? " (the value from --value-file)" : "") + ", got " +
                                    std::to_string(flags.positional().size()) + " argument(s)");
  }
  invocation.words = flags.positional();
  std::optional<std::string> value;  // read, not typed
  if (value_from_file) {
    KV_ASSIGN_OR_RETURN(value, cli::read_all(flags.get("value-file")));
  } else if (takes_value && invocation.words.back() == "-") {
    KV_ASSIGN_OR_RETURN(value, cli::read_all("-"));
    invocation.words.pop_back();
  }
  if (invocation.hex) {
    for (std::string& word : invocation.words) {
      KV_ASSIGN_OR_RETURN(word, cli::hex_decode(word, "--hex: '" + word + "'"));
    }
  }
  if (value) invocation.words.push_back(std::move(*value));
  if (words > 0 && invocation.words[0].empty()) return Status::invalid_argument("KEY must not be empty");
  if (words > 0 && invocation.words[0].size() > kv_key_bytes_max) {
    return Status::invalid_argument("KEY is over " + std::to_string(kv_key_bytes_max) + " bytes");
  }
  KV_ASSIGN_OR_RETURN(invocation.client, client_from_flags(flags));
  return invocation;
}

// The error line and exit code of a failed operation.
int failed(const std::string& command, const Status& status) {
  std::cerr << "keyval " << command << ": " << status.message() << "\n";
  return status.code() == Code::invalid_argument ? cli::exit_usage : exit_unavailable;
}


}  // namespace

std::vector<cli::FlagSpec> output_flag_specs() {
  return {{"write-out", "text", "text, or json: one JSON object per result on stdout (the rest on stderr)", false, "w"},
          {"json", "", "the same as -w json", true}};
}

Result<bool> json_output(const cli::Flags& flags) {
  const std::string format = flags.get("write-out", "text");
  if (format != "text" && format != "json") {
    return Status::invalid_argument("-w/--write-out expects text or json, got '" + format + "'");
  }
  return format == "json" || flags.has("json");
}

std::vector<cli::FlagSpec> client_flag_specs() {
  std::vector<cli::FlagSpec> specs = output_flag_specs();
  std::vector<cli::FlagSpec> connection = {{"endpoints", endpoints_default, "client addresses of any nodes, HOST:PORT,... (one that answers is enough)"},
          {"timeout-ms", std::to_string(timeout_ms_default), "the whole operation, retries included"},
          {"request-timeout-ms", "min(" + std::to_string(request_timeout_ms_default) + ", --timeout-ms)", "one attempt"},
          {"tls-ca", "", "CA of the nodes' certificates: talk TLS and verify them (docs/SECURITY.md)"},
          {"tls-cert", "", "this client's certificate (nodes started with --client-ca)"},
          {"tls-key", "", "the key of --tls-cert"}};
  specs.insert(specs.end(), connection.begin(), connection.end());
  return specs;
}

Result<std::shared_ptr<TlsContext>> client_tls_from_flags(const cli::Flags& flags) {
  TlsFiles files{flags.get("tls-cert", ""), flags.get("tls-key", ""), flags.get("tls-ca", "")};
  if (files.ca.empty()) {
    if (!files.certificate.empty() || !files.key.empty()) {
      return Status::invalid_argument("--tls-cert and --tls-key need --tls-ca (the CA that signed the nodes' certificates)");
    }
    return std::shared_ptr<TlsContext>();
  }
  auto context = TlsContext::create(TlsRole::client, files);
  if (!context.is_ok()) return Status::invalid_argument(context.status().message());
  return *context;
}

Result<std::unique_ptr<KvClient>> client_from_flags(const cli::Flags& flags) {
  KV_ASSIGN_OR_RETURN(std::vector<Endpoint> endpoints, parse_endpoints(flags.get("endpoints", endpoints_default)));
  KvClientOptions options;
  KV_ASSIGN_OR_RETURN(options.operation_timeout_ms, flags.get_u64("timeout-ms", timeout_ms_default));
  KV_ASSIGN_OR_RETURN(options.request_timeout_ms,
                      flags.get_u64("request-timeout-ms",
                                    std::min(request_timeout_ms_default, options.operation_timeout_ms)));
  if (options.operation_timeout_ms == 0 || options.operation_timeout_ms > timeout_ms_max ||
      options.request_timeout_ms == 0 || options.request_timeout_ms > timeout_ms_max) {
    return Status::invalid_argument("--timeout-ms and --request-timeout-ms expect 1.." +
                                    std::to_string(timeout_ms_max));
  }
  KV_ASSIGN_OR_RETURN(options.tls, client_tls_from_flags(flags));
  return std::make_unique<KvClient>(std::move(endpoints), options);
}

int put_main(const std::vector<std::string>& args) {
  const cli::Command command = client_command("put", "set KEY to VALUE; prints \"OK (index I)\"",
                                              "KEY VALUE | KEY - | KEY --value-file FILE", data_flag_specs(true));
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto invocation = parse(flags, 2, "KEY VALUE", true);
  if (!invocation.is_ok()) return cli::usage_error("put", invocation.status().message());
  auto response = invocation->client->put(invocation->words[0], invocation->words[1]);
  if (!response.is_ok()) return failed("put", response.status());
  if (invocation->json) {
    std::cout << cli::JsonLine().add("command", "put").add("key", invocation->shown(invocation->words[0]))
                     .add("index", response->index).str() << "\n";
  } else {
    std::cout << "OK (index " << response->index << ")\n";
  }
  return cli::exit_ok;
}

// range and get --prefix: the flags beyond the client's own.
std::vector<cli::FlagSpec> range_flag_specs(bool with_data_flags) {
  std::vector<cli::FlagSpec> specs = with_data_flags ? data_flag_specs(false) : std::vector<cli::FlagSpec>();
  std::vector<cli::FlagSpec> range = {{"limit", "0 (no limit)", "at most N pairs"},
          {"page-bytes", "0 (the nodes' 1 MiB bound)", "bytes per answer"},
          {"keys-only", "", "print keys only", true},
          {"count", "", "print only the number of keys", true},
          {"serializable", "", "read one node's applied state, no ReadIndex (may be stale)", true}};
  specs.insert(specs.end(), range.begin(), range.end());
  return specs;
}

// How range and get --prefix print: -w json, --hex.
struct RangeOutput {
  bool json = false;
  bool hex = false;
};

int run_range(const std::string& command, KvClient& client, const std::string& from, const RangeOptions& options,
              const RangeOutput& output) {
  auto answer = client.range(from, options);
  if (!answer.is_ok()) return failed(command, answer.status());
  auto shown = [&](const std::string& bytes) { return output.hex ? cli::hex_encode(bytes) : bytes; };
  if (output.json) {
    // One object per pair, then the summary.
    if (!options.count_only) {
      for (const auto& [key, value] : answer->pairs) {
        cli::JsonLine pair;
        pair.add("key", shown(key));
        if (!options.keys_only) pair.add("value", shown(value));
        std::cout << pair.str() << "\n";
      }
    }
    std::cout << cli::JsonLine().add("command", command).add("count", answer->count).add("pages", answer->pages)
                     .add("index", answer->index).add_bool("serializable", options.serializable).str()
              << std::endl;
    return cli::exit_ok;
  }
  if (options.count_only) {
    std::cout << answer->count << "\n";
  } else {
    for (const auto& [key, value] : answer->pairs) {
      std::cout << shown(key);
      if (!options.keys_only) std::cout << "\t" << shown(value);
      std::cout << "\n";
    }
  }
  std::cerr << answer->count << (answer->count == 1 ? " key" : " keys") << " (" << answer->pages
            << (answer->pages == 1 ? " answer" : " answers") << ", read index " << answer->index
            << (options.serializable ? ", serializable" : "") << ")\n";
  return cli::exit_ok;
}

Result<RangeOutput> range_output(const cli::Flags& flags) {
  RangeOutput output;
  KV_ASSIGN_OR_RETURN(output.json, json_output(flags));
  output.hex = flags.has("hex");
  return output;
}

// A range bound or prefix as typed: as is, or hex-decoded (--hex).
Result<std::string> typed_key(const cli::Flags& flags, const std::string& text, const std::string& what) {
  if (!flags.has("hex")) return text;
  return cli::hex_decode(text, "--hex: " + what);
}

// The range flags of an invocation.
Result<RangeOptions> range_options(const cli::Flags& flags) {
  RangeOptions options;
  KV_ASSIGN_OR_RETURN(options.limit, flags.get_u64("limit", 0));
  KV_ASSIGN_OR_RETURN(options.page_bytes, flags.get_u64("page-bytes", 0));
  options.keys_only = flags.has("keys-only");
  options.count_only = flags.has("count");
  options.serializable = flags.has("serializable");
  if (options.keys_only && options.count_only) return Status::invalid_argument("--keys-only and --count exclude each other");
  return options;
}

int range_main(const std::vector<std::string>& args) {
  const cli::Command command = client_command(
      "range", "the pairs with FROM <= key < TO (no TO: to the last key), one \"KEY<TAB>VALUE\" line each; "
      "a summary on stderr", "FROM [TO]", range_flag_specs(true));
  cli::Flags parsed;
  if (auto exit = command.parse(args, parsed)) return *exit;
  const cli::Flags* flags = &parsed;
  std::vector<std::string> words = flags->positional();
  if (words.empty() || words.size() > 2) {
    return cli::usage_error("range", "expects FROM [TO], got " + std::to_string(words.size()) + " argument(s)");
  }
  for (size_t i = 0; i < words.size(); ++i) {
    auto bound = typed_key(parsed, words[i], i == 0 ? "FROM" : "TO");
    if (!bound.is_ok()) return cli::usage_error("range", bound.status().message());
    words[i] = *bound;
  }
  auto output = range_output(parsed);
  if (!output.is_ok()) return cli::usage_error("range", output.status().message());
  for (const std::string& bound : words) {
    if (bound.size() > kv_key_bytes_max) {
      return cli::usage_error("range", "a bound is over " + std::to_string(kv_key_bytes_max) + " bytes");
    }
  }
  auto options = range_options(*flags);
  if (!options.is_ok()) return cli::usage_error("range", options.status().message());
  if (words.size() == 2) {
    options->to = words[1];
    if (options->to.empty()) return cli::usage_error("range", "TO must not be empty (leave it out: to the last key)");
    if (options->to <= words[0]) return cli::usage_error("range", "TO must sort after FROM");
  }
  auto client = client_from_flags(*flags);
  if (!client.is_ok()) return cli::usage_error("range", client.status().message());
  return run_range("range", **client, words[0], *options, *output);
}

int get_prefix(const cli::Flags& flags) {
  if (!flags.positional().empty()) return cli::usage_error("get", "--prefix P takes no KEY");
  auto typed = typed_key(flags, flags.get("prefix"), "--prefix");
  if (!typed.is_ok()) return cli::usage_error("get", typed.status().message());
  const std::string prefix = *typed;
  auto output = range_output(flags);
  if (!output.is_ok()) return cli::usage_error("get", output.status().message());
  if (prefix.empty()) return cli::usage_error("get", "--prefix must not be empty (use `keyval range \"\"` for every key)");
  if (prefix.size() > kv_key_bytes_max) {
    return cli::usage_error("get", "--prefix is over " + std::to_string(kv_key_bytes_max) + " bytes");
  }
  auto options = range_options(flags);
  if (!options.is_ok()) return cli::usage_error("get", options.status().message());
  options->to = prefix_end(prefix);
  auto client = client_from_flags(flags);
  if (!client.is_ok()) return cli::usage_error("get", client.status().message());
  return run_range("get", **client, prefix, *options, *output);
}

int get_main(const std::vector<std::string>& args) {
  std::vector<cli::FlagSpec> own = {{"prefix", "", "every key starting with P, as `range` (the range flags go with it)"}};
  for (const cli::FlagSpec& spec : range_flag_specs(true)) own.push_back(spec);
  const cli::Command command =
      client_command("get", "print KEY's value (exit 1 when absent), or with --prefix P every pair under P", "KEY", own);
  cli::Flags parsed;
  if (auto exit = command.parse(args, parsed)) return *exit;
  const cli::Flags* flags = &parsed;
  if (flags->has("prefix")) return get_prefix(*flags);
  for (const char* name : {"limit", "page-bytes", "keys-only", "count"}) {
    if (flags->has(name)) return cli::usage_error("get", std::string("--") + name + " goes with --prefix");
  }
  auto invocation = parse(parsed, 1, "KEY");
  if (!invocation.is_ok()) return cli::usage_error("get", invocation.status().message());
  auto response = invocation->client->get(invocation->words[0], flags->has("serializable"));
  if (!response.is_ok()) return failed("get", response.status());
  const std::string key = invocation->shown(invocation->words[0]);
  if (invocation->json) {
    cli::JsonLine line;
    line.add("command", "get").add("key", key).add_bool("found", response->found);
    if (response->found) line.add("value", invocation->shown(response->value));
    std::cout << line.str() << "\n";
  }
  if (!response->found) {
    std::cerr << "keyval get: key '" << key << "' is absent\n";
    return exit_absent;
  }
  if (!invocation->json) std::cout << invocation->shown(response->value) << "\n";
  return cli::exit_ok;
}

int del_main(const std::vector<std::string>& args) {
  const cli::Command command =
      client_command("del", "delete KEY; prints \"deleted (index I)\" or \"absent, nothing deleted (index I)\"", "KEY",
                     data_flag_specs(false));
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto invocation = parse(flags, 1, "KEY");
  if (!invocation.is_ok()) return cli::usage_error("del", invocation.status().message());
  auto response = invocation->client->del(invocation->words[0]);
  if (!response.is_ok()) return failed("del", response.status());
  if (invocation->json) {
    std::cout << cli::JsonLine().add("command", "del").add("key", invocation->shown(invocation->words[0]))
                     .add_bool("deleted", response->found).add("index", response->index).str() << "\n";
    return cli::exit_ok;
  }
  std::cout << (response->found ? "deleted" : "absent, nothing deleted") << " (index " << response->index << ")\n";
  return cli::exit_ok;
}

int cas_main(const std::vector<std::string>& args) {
  std::vector<cli::FlagSpec> own = data_flag_specs(true);
  own.push_back({"expect-absent", "", "set NEW only if KEY is absent (no OLD)", true});
  const cli::Command command = client_command(
      "cas", "set KEY to NEW if its value is OLD (exit 1 when it is not); NEW may be - (stdin) or --value-file",
      "KEY OLD NEW | KEY NEW --expect-absent", own);
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto invocation = parse(flags, 3, "KEY OLD NEW (or KEY NEW --expect-absent)", true);
  if (!invocation.is_ok()) return cli::usage_error("cas", invocation.status().message());
  const auto& words = invocation->words;
  std::optional<std::string> expected;
  if (!invocation->expect_absent) expected = words[1];
  auto response = invocation->client->cas(words[0], expected, words.back());
  if (!response.is_ok()) return failed("cas", response.status());
  if (invocation->json) {
    cli::JsonLine line;
    line.add("command", "cas").add("key", invocation->shown(words[0])).add_bool("succeeded", response->cas_succeeded);
    if (response->cas_succeeded) {
      line.add("index", response->index);
    } else {
      line.add_bool("found", response->found);  // the value that did not match
      if (response->found) line.add("value", invocation->shown(response->value));
    }
    std::cout << line.str() << "\n";
    return response->cas_succeeded ? cli::exit_ok : exit_absent;
  }
  if (!response->cas_succeeded) {
    std::cout << "no match: the value is "
              << (response->found ? "'" + invocation->shown(response->value) + "'" : std::string("absent")) << "\n";
    return exit_absent;
  }
  std::cout << "OK (index " << response->index << ")\n";
  return cli::exit_ok;
}

namespace {

constexpr int status_hash_rounds_max = 3;          // status --hash asks again while replicas are at different indexes
constexpr uint64_t status_hash_round_pause_ms = 200;

std::string hex64(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(value));
  return text;
}

// One node's line and its JSON view.
std::string describe_view(const Result<ClientResponse>& view, cli::JsonLine& line) {
  std::ostringstream out;
  if (!view.is_ok()) {
    out << "unreachable (" << view.status().message() << ")";
    line.add("error", view.status().message());
    return out.str();
  }
  out << "role " << view->role << ", leader " << view->leader_hint << ", term " << view->term << ", commit "
      << view->commit_index << ", applied " << view->applied_index << ", snapshot " << view->snapshot_index
      << ", log " << view->first_index << ".." << view->last_index;
  if (view->hashed) out << ", hash " << hex64(view->state_hash) << " at " << view->hash_index;
  line.add("node_id", view->node_id).add("role", view->role).add("leader", view->leader_hint).add("term", view->term)
      .add("commit_index", view->commit_index).add("applied_index", view->applied_index)
      .add("snapshot_index", view->snapshot_index).add("first_index", view->first_index)
      .add("last_index", view->last_index);
  // A string: JSON readers lose precision on integers above 2^53.
  if (view->hashed) line.add("state_hash", hex64(view->state_hash)).add("hash_index", view->hash_index);
  return out.str();
}

// Whether the replicas that answered agree: equal hashes are equal states, whatever index each
// was read at; different hashes at the same applied index are replicas that diverged; different
// hashes at different indexes say nothing (writes were applied in between).
struct HashCheck {
  std::string verdict;  // "agree", "disagree", "different_indexes", "too_few"
  std::string line;     // for the operator
};

HashCheck check_hashes(const std::vector<NodeView>& views) {
  std::map<uint64_t, std::map<uint64_t, std::vector<uint64_t>>> nodes_by_index_and_hash;
  std::map<uint64_t, std::vector<uint64_t>> nodes_by_hash;
  uint64_t hashed = 0;
  for (const NodeView& node_view : views) {
    const auto& view = node_view.view;
    const uint64_t node = node_view.node_id;
    if (!view.is_ok() || !view->hashed) continue;
    nodes_by_index_and_hash[view->hash_index][view->state_hash].push_back(node);
    nodes_by_hash[view->state_hash].push_back(node);
    ++hashed;
  }
  auto nodes_text = [](const std::vector<uint64_t>& nodes) {
    std::string text;
    for (uint64_t node : nodes) text += (text.empty() ? "" : ",") + std::to_string(node);
    return text;
  };
  for (const auto& [index, by_hash] : nodes_by_index_and_hash) {
    if (by_hash.size() < 2) continue;
    std::string line = "replicas DISAGREE at index " + std::to_string(index) + ":";
    for (const auto& [hash, nodes] : by_hash) line += " " + hex64(hash) + " on node(s) " + nodes_text(nodes) + ";";
    line.pop_back();
    return {"disagree", line};
  }
  if (hashed < 2) return {"too_few", "replicas not compared: fewer than two nodes hashed their state"};
  if (nodes_by_hash.size() > 1) {
    return {"different_indexes",
            "replicas not compared: they hashed different applied indexes (writes in progress); try again"};
  }
  const uint64_t first_index = nodes_by_index_and_hash.begin()->first;
  const uint64_t last_index = nodes_by_index_and_hash.rbegin()->first;
  return {"agree", "replicas agree: hash " + hex64(nodes_by_hash.begin()->first) + " at index " +
                       std::to_string(first_index) +
                       (last_index != first_index ? ".." + std::to_string(last_index) : std::string()) +
                       " on nodes " + nodes_text(nodes_by_hash.begin()->second)};
}

// Whether the nodes that answered a status poll make a quorum: a majority of the voters of the
// configuration the cluster reports (member_list: the leader's when it can be reached, else
// any answering node's). A configuration that cannot be read counts as no quorum: nothing
// shows that one is reachable.
struct QuorumCheck {
  bool reachable = false;
  uint64_t voters = 0;
  uint64_t voters_answered = 0;
  std::string line;  // why not, for stderr
};

QuorumCheck check_quorum(KvClient& client, const std::vector<NodeView>& views) {
  QuorumCheck check;
  auto configuration = client.member_list();
  if (!configuration.is_ok() || configuration->status != ClientStatus::ok) {
    check.line = "no quorum reachable: the configuration could not be read (" +
                 (configuration.is_ok() ? configuration->message : configuration.status().message()) + ")";
    return check;
  }
  std::set<uint64_t> answered;
  for (const NodeView& view : views) {
    if (view.view.is_ok()) answered.insert(view.node_id);
  }
  for (const ConfigurationMember& member : configuration->configuration) {
    if (member.learner) continue;
    ++check.voters;
    if (answered.count(member.node_id)) ++check.voters_answered;
  }
  const uint64_t majority = check.voters / 2 + 1;
  check.reachable = check.voters > 0 && check.voters_answered >= majority;
  if (check.voters == 0) {
    check.line = "no quorum reachable: the configuration names no voters";
  } else if (!check.reachable) {
    check.line = "no quorum reachable: " + std::to_string(check.voters_answered) + " of " +
                 std::to_string(check.voters) + " voters answered (a quorum is " + std::to_string(majority) + ")";
  }
  return check;
}

}  // namespace

int status_main(const std::vector<std::string>& args) {
  const cli::Command command = client_command(
      "status", "one line per node, then a JSON line; exit 3 when no node answers, 4 when no quorum of voters does", "",
      {{"hash", "", "each node's state hash, and whether the replicas agree (exit 1 when they differ)", true}});
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  auto invocation = parse(flags, 0, "no arguments");
  if (!invocation.is_ok()) return cli::usage_error("status", invocation.status().message());
  KvClient& client = *invocation->client;
  std::vector<NodeView> views = client.status_all(invocation->hash);
  HashCheck hashes;
  for (int round = 1; invocation->hash; ++round) {
    hashes = check_hashes(views);
    if (hashes.verdict != "different_indexes" || round == status_hash_rounds_max) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(status_hash_round_pause_ms));
    views = client.status_all(true);
  }
  cli::Json nodes_json = cli::Json::array();
  uint64_t answered = 0;
  uint64_t leader = 0;
  for (const NodeView& node_view : views) {
    const Result<ClientResponse>& view = node_view.view;
    const uint64_t node = node_view.node_id;
    const std::string endpoint = node_view.endpoint.host.empty() ? "(client address unknown)" : node_view.endpoint.str();
    cli::JsonLine line;
    line.add("id", node).add("endpoint", endpoint);
    const std::string described = describe_view(view, line);
    if (!invocation->json) {
      std::cout << "node " << (node == 0 ? std::string("?") : std::to_string(node)) << " " << endpoint << ": "
                << described << "\n";
    }
    if (view.is_ok()) {
      ++answered;
      if (view->role == "leader") leader = node;
    }
    nodes_json.push_back(line.json());
  }
  if (invocation->hash && !invocation->json) std::cout << hashes.line << "\n";
  QuorumCheck quorum;
  if (answered > 0) quorum = check_quorum(client, views);
  // "leader" then "views", in that order: scripts read the leader with one pattern
  // (../shared/bench/compare.sh: "leader":N,"views").
  cli::JsonLine summary;
  summary.add("command", "status").add("nodes_answered", answered).add("nodes", static_cast<uint64_t>(views.size()));
  if (invocation->hash) summary.add("hashes", hashes.verdict);
  summary.add_bool("quorum", quorum.reachable).add("voters", quorum.voters).add("voters_answered", quorum.voters_answered);
  summary.add("leader", leader).add("views", nodes_json);
  std::cout << summary.str() << std::endl;
  if (answered == 0) {
    std::cerr << "keyval status: no node answered (no quorum reachable)\n";
    return exit_unavailable;
  }
  if (!quorum.reachable) {
    std::cerr << "keyval status: " << quorum.line << "\n";
    return exit_no_quorum;
  }
  if (invocation->hash && hashes.verdict == "disagree") {
    std::cerr << "keyval status: " << hashes.line << "\n";
    return exit_absent;
  }
  return cli::exit_ok;
}

}  // namespace keyval::commands
