// Restart-cycle experiments: the scenario parser's errors, the report files, and a short
// scenario on real `keyval node` processes (127.0.0.1, SIGKILL by PID).
#define BOOST_TEST_MODULE experiment_test
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "sim/scenario.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;

using keyval::testing::json_field;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval::sim {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

// The rows of a cycles.csv after its header, each by column name (every row as wide as the header).
std::vector<std::map<std::string, std::string>> cycle_rows(const std::string& path) {
  const auto lines = lines_of(read_text(path));
  BOOST_TEST_REQUIRE(!lines.empty(), path << " is empty");
  const auto header = fields_of(lines[0]);
  std::vector<std::map<std::string, std::string>> rows;
  for (size_t line = 1; line < lines.size(); ++line) {
    const auto fields = fields_of(lines[line]);
    BOOST_TEST_REQUIRE(fields.size() == header.size(), lines[line]);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string parse_error(const std::string& text) {
  auto parsed = parse_scenario(text, "s.scenario");
  BOOST_TEST_REQUIRE(!parsed.is_ok(), "parsed: " << text);
  return parsed.status().message();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(scenario_file)

BOOST_AUTO_TEST_CASE(every_setting_is_read) {
  auto parsed = parse_scenario(
      "# comment\nname rolling\nnodes 5\nclients 8   # trailing comment\nmix put 50 get 30 del 10 cas 10\n"
      "keys 50\nvalue-bytes 256\nrate 400\nkill node 4\nhow torn\nrandom 500ms..2s\ndown 1500ms\ncycles 7\n"
      "seed 9\nsettle 1m\nrecord csv plots\n",
      "s.scenario");
  BOOST_TEST_REQUIRE(parsed.is_ok(), parsed.status().to_string());
  const Scenario& s = *parsed;
  BOOST_TEST(s.name == "rolling");
  BOOST_TEST(s.nodes == 5u);
  BOOST_TEST(s.clients == 8u);
  BOOST_TEST((s.put_percent == 50 && s.get_percent == 30 && s.del_percent == 10 && s.cas_percent == 10));
  BOOST_TEST(s.keys == 50u);
  BOOST_TEST(s.value_bytes == 256u);
  BOOST_TEST(s.rate_ops_per_s == 400u);
  BOOST_TEST((s.target == KillTarget::node && s.target_node == 4));
  BOOST_TEST((s.how == KillHow::torn));
  BOOST_TEST((s.when == KillWhen::random && s.random_min_ms == 500 && s.random_max_ms == 2000));
  BOOST_TEST(s.down_ms == 1500u);
  BOOST_TEST(s.cycles == 7u);
  BOOST_TEST(s.seed == 9u);
  BOOST_TEST(s.settle_ms == 60000u);
  BOOST_TEST((s.record_csv && s.record_plots && !s.record_summary));
}

BOOST_AUTO_TEST_CASE(defaults_and_the_name_from_the_file) {
  auto parsed = parse_scenario("", "dir/leader-killed.scenario");
  BOOST_TEST_REQUIRE(parsed.is_ok());
  BOOST_TEST(parsed->name == "leader-killed");
  BOOST_TEST(parsed->nodes == 3u);
  BOOST_TEST((parsed->target == KillTarget::leader && parsed->how == KillHow::sigkill));
  BOOST_TEST((parsed->when == KillWhen::every && parsed->every_ms == 5000));
  BOOST_TEST(parsed->put_percent == 100u);
}

BOOST_AUTO_TEST_CASE(bad_lines_are_named_with_what_was_expected) {
  BOOST_TEST(contains(parse_error("nodes 3\nnodez 4\n"), "s.scenario line 2: unknown setting 'nodez'"));
  BOOST_TEST(contains(parse_error("nodes ten\n"), "line 1: 'nodes' expects a whole number in 1..9, got 'ten'"));
  BOOST_TEST(contains(parse_error("\n\nnodes 3\nnodes 4\n"), "line 4: 'nodes' is given twice"));
  BOOST_TEST(contains(parse_error("mix put 50 get 40\n"), "line 1: 'mix' percentages sum to 90, not 100"));
  BOOST_TEST(contains(parse_error("mix put 50 scan 50\n"), "'mix' expects put, get, del or cas, got 'scan'"));
  BOOST_TEST(contains(parse_error("every 5\n"), "line 1: 'every' expects a duration such as 500ms, 2s or 1m, got '5'"));
  BOOST_TEST(contains(parse_error("every 5s\nafter-writes 10\n"), "line 2: only one of 'every', 'after-writes' and 'random'"));
  BOOST_TEST(contains(parse_error("random 6s..2s\n"), "'random' range is reversed"));
  BOOST_TEST(contains(parse_error("kill leaders\n"), "'kill' expects leader, follower, random, all, replace, grow or 'node N', got 'leaders'"));
  BOOST_TEST(contains(parse_error("how crash\n"), "'how' expects sigkill, sigterm, torn or disk-full, got 'crash'"));
  BOOST_TEST(contains(parse_error("nodes 3\nkill node 5\n"), "'kill node 5' but the cluster has 3 nodes"));
  BOOST_TEST(contains(parse_error("record csv pictures\n"), "'record' expects 'all' or any of csv, summary, plots"));
  BOOST_TEST(contains(parse_error("rate fast\n"), "'rate' expects 'closed' or a number"));
}

BOOST_AUTO_TEST_CASE(replace_and_grow_are_read_and_their_conflicts_refused) {
  auto replace = parse_scenario("kill replace\nhow sigterm\ncycles 6\n", "s.scenario");
  BOOST_TEST_REQUIRE(replace.is_ok(), replace.status().to_string());
  BOOST_TEST((replace->target == KillTarget::replace && replace->how == KillHow::sigterm));
  BOOST_TEST(replace->changes_membership());
  BOOST_TEST(replace->members_added_per_cycle() == 1u);
  auto grow = parse_scenario("kill grow\n", "s.scenario");
  BOOST_TEST_REQUIRE(grow.is_ok(), grow.status().to_string());
  BOOST_TEST((grow->target == KillTarget::grow && grow->how == KillHow::sigkill));
  BOOST_TEST(grow->members_added_per_cycle() == 2u);
  BOOST_TEST(!parse_scenario("kill leader\n", "s.scenario")->changes_membership());
  BOOST_TEST(contains(parse_error("kill replace\nhow torn\n"),
                      "s.scenario line 2: 'kill replace' stops a removed node by sigkill or sigterm, not 'torn'"));
  BOOST_TEST(contains(parse_error("how disk-full\nkill grow\n"), "line 1: 'kill grow' stops a removed node by sigkill or sigterm"));
  BOOST_TEST(contains(parse_error("kill replace\ndown 1s\n"),
                      "s.scenario line 2: 'down' does not apply to 'kill replace': a removed node never comes back"));
  BOOST_TEST(contains(parse_error("kill replace grow\n"), "line 1: 'kill' expects leader, follower, random, all, replace, grow"));
  BOOST_TEST(contains(parse_error("kill replace\nkill grow\n"), "line 2: 'kill' is given twice"));
}

BOOST_AUTO_TEST_CASE(the_experiment_files_parse) {
  for (const char* name : {"replace", "grow-shrink", "leader-killed", "rolling-restarts", "torn-followers"}) {
    auto parsed = load_scenario(std::string(KEYVAL_SOURCE_DIR) + "/experiments/" + name + ".scenario");
    BOOST_TEST(parsed.is_ok(), name << ": " << parsed.status().to_string());
  }
}

BOOST_AUTO_TEST_CASE(membership_columns_are_written_last) {
  TempDir dir;
  ExperimentResult result;
  result.scenario.name = "unit";
  result.scenario.target = KillTarget::grow;
  result.mode = "simulation";
  CycleRecord record;
  record.cycle = 1;
  record.target_nodes = "1 2";
  record.how = "sigkill";
  record.catch_up_ms = 12.5;
  record.new_members = "4 5";
  record.voter_ms = 30;
  record.new_member_bytes = 4096;
  result.cycles.push_back(record);
  BOOST_TEST_REQUIRE(write_experiment_outputs(dir.path() + "/out", result).is_ok());
  auto rows = lines_of(read_text(dir.path() + "/out/cycles.csv"));
  BOOST_TEST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(contains(rows[1], ",4 5,30,4096"), rows[1]);
  const std::string summary = read_text(dir.path() + "/out/summary.json");
  BOOST_TEST(contains(summary, "\"voter_ms\":{\"count\":1,\"min\":30"), summary);
  BOOST_TEST(contains(summary, "\"new_member_bytes\":{\"count\":1,\"min\":4096"), summary);
  BOOST_TEST(contains(read_text(dir.path() + "/out/summary.txt"), "bytes to new"));
  BOOST_TEST(contains(read_text(dir.path() + "/out/new_member.svg"), "</svg>"));
}

BOOST_AUTO_TEST_CASE(outputs_hold_one_row_per_cycle_and_the_plots) {
  TempDir dir;
  ExperimentResult result;
  result.scenario.name = "unit";
  result.scenario.cycles = 2;
  result.mode = "processes";
  for (uint64_t k = 1; k <= 2; ++k) {
    CycleRecord record;
    record.cycle = k;
    record.target_nodes = std::to_string(k);
    record.how = "sigkill";
    record.killed_at_ms = 1000.0 * k;
    record.down_ms = 500;
    record.unavailable_ms = 100.0 * k;
    record.recovery_ms = 10.5 * k;
    record.recovery_wal_bytes = 4096 * k;
    record.ops_acked = 50;
    result.cycles.push_back(record);
  }
  result.throughput = {{0, 10}, {100, 12}, {200, 0}};
  result.acked_writes = 100;
  BOOST_TEST_REQUIRE(write_experiment_outputs(dir.path() + "/out", result).is_ok());
  auto rows = lines_of(read_text(dir.path() + "/out/cycles.csv"));
  BOOST_TEST_REQUIRE(rows.size() == 3u);
  BOOST_TEST(fields_of(rows[0]).size() == 22u);
  BOOST_TEST(fields_of(rows[2]).size() == 22u);
  // New columns go last: existing readers of the first 19 keep working.
  const std::string last_columns = ",ops_unknown,new_members,voter_ms,new_member_bytes";
  BOOST_TEST(rows[0].substr(rows[0].size() - last_columns.size()) == last_columns, rows[0]);
  BOOST_TEST(rows[2].rfind("2,2,sigkill,0,2000,", 0) == 0u, rows[2]);
  const std::string summary = read_text(dir.path() + "/out/summary.json");
  BOOST_TEST(json_field(summary, "ops_acked") == "100");
  BOOST_TEST(json_field(summary, "ok") == "true");
  BOOST_TEST(contains(read_text(dir.path() + "/out/summary.txt"), "result: ok"));
  for (const char* plot : {"recovery_vs_log_size.svg", "unavailability.svg", "throughput.svg"}) {
    const std::string svg = read_text(dir.path() + "/out/" + plot);
    BOOST_TEST(svg.rfind("<svg", 0) == 0u, plot);
    BOOST_TEST(contains(svg, "</svg>"), plot);
  }
  BOOST_TEST(rows[0].rfind("cycle,target_nodes,how,", 0) == 0u, rows[0]);  // the ids of the nodes taken down
  auto count = [](const std::string& text, const std::string& part) {
    size_t found = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++found;
    return found;
  };
  // Unavailability: one bar per cycle, no line joining separate cycles.
  const std::string unavailability = read_text(dir.path() + "/out/unavailability.svg");
  BOOST_TEST(count(unavailability, "fill=\"#ff7f0e\"") == 2u, unavailability);
  BOOST_TEST(!contains(unavailability, "<polyline"));
  // Throughput: each kill (red dashed) and each restart (blue dotted) marked.
  const std::string throughput = read_text(dir.path() + "/out/throughput.svg");
  BOOST_TEST(count(throughput, "stroke=\"#d62728\" stroke-dasharray=\"4 3\"") == 2u, throughput);
  BOOST_TEST(count(throughput, "stroke=\"#1f77b4\" stroke-dasharray=\"1 3\"") == 2u, throughput);
  result.lost_acked_writes = 1;
  BOOST_TEST(json_field(experiment_summary_json(result), "ok") == "false");
  // Problem texts may hold quotes and newlines (a linearizability explanation): still one
  // valid JSON line.
  result.problems = {"not linearizable:\nkey \"a\"\tread 1"};
  const std::string json = experiment_summary_json(result);
  BOOST_TEST(json.find('\n') == std::string::npos, json);
  BOOST_TEST(contains(json, "\"problems\":[\"not linearizable:\\nkey \\\"a\\\"\\tread 1\"]"), json);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(experiment_run)

// A short scenario on real processes: the leader killed twice, then a follower torn, all under
// load; every cycle recorded, nothing acknowledged lost, the load's history linearizable.
BOOST_AUTO_TEST_CASE(a_short_scenario_on_processes_records_every_cycle_and_loses_nothing) {
  TempDir dir;
  const std::string scenario = dir.file("short.scenario");
  std::ofstream(scenario) << "name short\nnodes 3\nclients 3\nmix put 80 get 20\nkill leader\nhow sigkill\n"
                             "every 700ms\ndown 300ms\ncycles 2\nsettle 300ms\n";
  auto run = run_keyval("experiment run " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(contains(run.output, "cycle 2 of 2"), run.output);  // the progress lines
  const std::string summary = run.last_line();
  BOOST_TEST(json_field(summary, "lost_acked_writes") == "0");
  BOOST_TEST(json_field(summary, "mode") == "processes");
  BOOST_TEST(std::stoull(json_field(summary, "acked_writes")) > 0u);
  BOOST_TEST(json_field(summary, "linearizable") == "yes", summary);  // the load's history, checked
  BOOST_TEST(!read_text(dir.file("out/history.jsonl")).empty());
  const auto cycles = cycle_rows(dir.file("out/cycles.csv"));
  BOOST_TEST_REQUIRE(cycles.size() == 2u, read_text(dir.file("out/cycles.csv")));
  for (size_t row = 1; row <= cycles.size(); ++row) {
    auto field = [&](const std::string& name) { return cycles[row - 1].at(name); };
    BOOST_TEST(field("cycle") == std::to_string(row));
    BOOST_TEST(field("was_leader") == "1");                       // the leader went down
    BOOST_TEST(field("leader_after") != field("target_nodes"));     // and another one took over
    BOOST_TEST(std::stod(field("unavailable_ms")) >= 0);
    BOOST_TEST(std::stoull(field("recovery_entries")) > 0u);      // it came back with its log
    BOOST_TEST(std::stod(field("recovery_ms")) >= 0);
    BOOST_TEST(std::stod(field("catch_up_ms")) >= 0);
    BOOST_TEST(std::stoull(field("ops_acked")) > 0u);
  }
  for (const char* output : {"summary.json", "summary.txt", "recovery_vs_log_size.svg", "unavailability.svg", "throughput.svg"}) {
    BOOST_TEST(!read_text(dir.file(std::string("out/") + output)).empty(), output);
  }

  // A torn write on a follower is cut by its recovery.
  std::ofstream(scenario, std::ios::trunc) << "nodes 3\nclients 2\nkill follower\nhow torn\nafter-writes 100\n"
                                              "down 200ms\ncycles 1\nsettle 200ms\n";
  run = run_keyval("experiment run " + scenario + " --out " + dir.file("torn"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  const auto torn = cycle_rows(dir.file("torn/cycles.csv"));
  BOOST_TEST_REQUIRE(torn.size() == 1u);
  BOOST_TEST(std::stoull(torn[0].at("torn_bytes_cut")) > 0u, read_text(dir.file("torn/cycles.csv")));
}

// kill replace on processes: two cycles, each a new node (--join, a new empty data directory)
// added, caught up and promoted, then the oldest member removed and stopped by PID; the
// replaced nodes' data directories are gone and nothing acknowledged was lost.
BOOST_AUTO_TEST_CASE(a_replace_scenario_on_processes_swaps_members_under_load) {
  TempDir dir;
  const std::string scenario = dir.file("replace.scenario");
  std::ofstream(scenario) << "name replace\nnodes 3\nclients 3\nmix put 80 get 20\nkill replace\nhow sigterm\n"
                             "every 500ms\ncycles 2\nsettle 300ms\n";
  auto run = run_keyval("experiment run " + scenario + " --out " + dir.file("out") + " --keep-data");
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(contains(run.output, "cycle 2 of 2"), run.output);
  const std::string summary = run.last_line();
  BOOST_TEST(json_field(summary, "lost_acked_writes") == "0");
  BOOST_TEST(std::stoull(json_field(summary, "acked_writes")) > 0u);
  const auto cycles = cycle_rows(dir.file("out/cycles.csv"));
  BOOST_TEST_REQUIRE(cycles.size() == 2u, read_text(dir.file("out/cycles.csv")));
  for (size_t row = 1; row <= cycles.size(); ++row) {
    auto field = [&](const std::string& name) { return cycles[row - 1].at(name); };
    BOOST_TEST(field("target_nodes") == std::to_string(row));       // nodes 1, then 2
    BOOST_TEST(field("new_members") == std::to_string(row + 3));  // nodes 4, then 5
    BOOST_TEST(std::stod(field("catch_up_ms")) >= 0);
    BOOST_TEST(std::stod(field("voter_ms")) >= 0);
    BOOST_TEST(std::stoull(field("new_member_bytes")) > 0u);
    BOOST_TEST(std::stod(field("unavailable_ms")) >= 0);
    BOOST_TEST(std::stoull(field("ops_acked")) > 0u);
  }
  BOOST_TEST(!std::filesystem::exists(dir.file("out/cluster/node1")));  // deleted with the member
  BOOST_TEST(!std::filesystem::exists(dir.file("out/cluster/node2")));
  BOOST_TEST(std::filesystem::exists(dir.file("out/cluster/node5")));
  BOOST_TEST(contains(read_text(dir.file("out/summary.txt")), "bytes to new"));
}

BOOST_AUTO_TEST_CASE(bad_usage_and_bad_files_exit_two_naming_the_line) {
  TempDir dir;
  std::ofstream(dir.file("bad.scenario")) << "nodes 3\ncycles many\n";
  auto run = run_keyval("experiment run " + dir.file("bad.scenario") + " --out " + dir.file("out"));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(contains(run.output, "bad.scenario line 2: 'cycles' expects a whole number"), run.output);
  run = run_keyval("experiment run " + dir.file("missing.scenario") + " --out " + dir.file("out"));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(contains(run.output, "cannot read scenario file"), run.output);
  run = run_keyval("experiment run " + dir.file("bad.scenario"));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(contains(run.output, "--out DIR is required"), run.output);
  std::ofstream(dir.file("full.scenario")) << "how disk-full\n";
  run = run_keyval("experiment run " + dir.file("full.scenario") + " --out " + dir.file("out"));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(contains(run.output, "disk-full is not supported on real processes"), run.output);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval::sim
