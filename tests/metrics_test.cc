// Goal: the metrics registry renders the Prometheus text format right (HELP/TYPE per family,
// cumulative buckets, label escaping), the node's metric set is complete, the /health rule
// judges as documented, and the HTTP request parser accepts what scrapers send only.
// Method: plain objects, no actors or sockets: observe, render, compare the text line by line.
#define BOOST_TEST_MODULE metrics_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "metrics/health.h"
#include "metrics/http.h"
#include "metrics/node_metrics.h"
#include "metrics/registry.h"

namespace keyval::metrics {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_and_inf_equals_count) {
  Registry registry;
  Histogram& histogram = registry.histogram("keyval_test_seconds", "A test histogram", {0.001, 0.01, 0.1}).with({});
  for (double value : {0.0005, 0.001, 0.002, 0.05, 0.05, 5.0}) histogram.observe(value);
  const std::string text = registry.render();
  std::vector<std::string> expected = {
      "keyval_test_seconds_bucket{le=\"0.001\"} 2",  // 0.0005 and 0.001: a bound is inclusive
      "keyval_test_seconds_bucket{le=\"0.01\"} 3",
      "keyval_test_seconds_bucket{le=\"0.1\"} 5",
      "keyval_test_seconds_bucket{le=\"+Inf\"} 6",
  };
  BOOST_TEST(lines_starting(text, "keyval_test_seconds_bucket") == expected, text);
  BOOST_TEST(lines_starting(text, "keyval_test_seconds_count") == std::vector<std::string>{"keyval_test_seconds_count 6"});
  const double sum = ((((0.0005 + 0.001) + 0.002) + 0.05) + 0.05) + 5.0;  // in observation order
  BOOST_TEST(lines_starting(text, "keyval_test_seconds_sum") ==
             std::vector<std::string>{"keyval_test_seconds_sum " + format_value(sum)});
  BOOST_TEST(lines_starting(text, "# TYPE keyval_test_seconds") ==
             std::vector<std::string>{"# TYPE keyval_test_seconds histogram"});
}

BOOST_AUTO_TEST_CASE(labelled_histogram_puts_le_after_the_series_labels) {
  Registry registry;
  auto& family = registry.histogram("keyval_request_seconds", "Latency", {1}, {"operation"});
  family.with({"put"}).observe(0.5);
  const std::string text = registry.render();
  BOOST_TEST(contains(text, "keyval_request_seconds_bucket{operation=\"put\",le=\"1\"} 1\n"), text);
  BOOST_TEST(contains(text, "keyval_request_seconds_bucket{operation=\"put\",le=\"+Inf\"} 1\n"), text);
  BOOST_TEST(contains(text, "keyval_request_seconds_count{operation=\"put\"} 1\n"), text);
}

BOOST_AUTO_TEST_CASE(every_family_has_one_help_and_one_type_line_in_registration_order) {
  Registry registry;
  auto& counter = registry.counter("keyval_b_total", "Second", {"outcome"});
  counter.with({"ok"}).add(3);
  counter.with({"lost"}).add();
  registry.gauge("keyval_a", "First").with({}).set(-7);
  const std::string text = registry.render();
  const std::string expected =
      "# HELP keyval_b_total Second\n"
      "# TYPE keyval_b_total counter\n"
      "keyval_b_total{outcome=\"lost\"} 1\n"
      "keyval_b_total{outcome=\"ok\"} 3\n"
      "# HELP keyval_a First\n"
      "# TYPE keyval_a gauge\n"
      "keyval_a -7\n";
  BOOST_TEST(text == expected);
}

BOOST_AUTO_TEST_CASE(label_values_and_help_are_escaped) {
  BOOST_TEST(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  BOOST_TEST(escape_help("line\\one\ntwo \"quoted\"") == "line\\\\one\\ntwo \"quoted\"");
  Registry registry;
  registry.counter("keyval_x_total", "Help with a\nnewline", {"key"}).with({"say \"hi\""}).add();
  const std::string text = registry.render();
  BOOST_TEST(contains(text, "# HELP keyval_x_total Help with a\\nnewline\n"), text);
  BOOST_TEST(contains(text, "keyval_x_total{key=\"say \\\"hi\\\"\"} 1\n"), text);
}

BOOST_AUTO_TEST_CASE(values_render_as_the_shortest_text_that_reads_back) {
  BOOST_TEST(format_value(0.1) == "0.1");
  BOOST_TEST(format_value(0.00005) == "5e-05");
  BOOST_TEST(format_value(4096) == "4096");
  BOOST_TEST(format_value(1.0 / 3) == "0.3333333333333333");
  BOOST_TEST(format_value(1.0 / 0.0) == "+Inf");
}

BOOST_AUTO_TEST_CASE(concurrent_updates_are_all_counted) {
  Registry registry;
  Counter& counter = registry.counter("keyval_c_total", "c").with({});
  Histogram& histogram = registry.histogram("keyval_h", "h", {0.5}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.add();
        histogram.observe(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  BOOST_TEST(counter.value() == 40000u);
  Histogram::Snapshot snapshot = histogram.snapshot();
  BOOST_TEST(snapshot.count == 40000u);
  BOOST_TEST(snapshot.sum == 40000.0);
}

BOOST_AUTO_TEST_CASE(node_metrics_name_every_documented_family_with_its_type) {
  NodeMetrics node;
  node.set_role("leader");
  node.client_request("put", "ok", 0.002);
  const std::string text = node.render();
  const std::vector<std::string> families = {
      "keyval_raft_role gauge", "keyval_raft_proposals_total counter", "keyval_raft_proposal_results_total counter",
      "keyval_client_requests_total counter", "keyval_client_request_duration_seconds histogram",
      "keyval_node_serving gauge", "keyval_raft_term gauge", "keyval_raft_leader_id gauge",
      "keyval_raft_commit_index gauge", "keyval_raft_applied_index gauge",
      "keyval_wal_fsync_duration_seconds histogram", "keyval_wal_group_commit_entries histogram",
      "keyval_wal_written_bytes_total counter", "keyval_snapshots_taken_total counter",
      "keyval_snapshots_installed_total counter", "keyval_log_compactions_total counter",
      "keyval_client_connections gauge", "keyval_client_connections_accepted_total counter"};
  for (const std::string& family : families) BOOST_TEST(contains(text, "# TYPE " + family + "\n"), family);
  BOOST_TEST(lines_starting(text, "# TYPE").size() == families.size(), text);
  BOOST_TEST(contains(text, "keyval_raft_role{role=\"leader\"} 1\n"), text);
  BOOST_TEST(contains(text, "keyval_raft_role{role=\"follower\"} 0\n"), text);
  BOOST_TEST(contains(text, "keyval_client_requests_total{operation=\"put\",outcome=\"ok\"} 1\n"), text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(health)

using Clock = HealthRule::Clock;
using std::chrono::milliseconds;

HealthInput input(bool serving, uint64_t leader, uint64_t commit, uint64_t applied) {
  return HealthInput{serving, leader, commit, applied};
}

BOOST_AUTO_TEST_CASE(healthy_needs_serving_a_leader_and_applying) {
  HealthRule rule(milliseconds(5000));
  const Clock::time_point start = Clock::now();
  BOOST_TEST(rule.check(input(false, 1, 10, 10), start).reason == "recovering");
  BOOST_TEST(rule.check(input(true, 0, 10, 10), start).reason == "no leader");
  HealthVerdict ok = rule.check(input(true, 2, 10, 10), start);
  BOOST_TEST(ok.healthy);
  BOOST_TEST(ok.reason == "ok");
}

BOOST_AUTO_TEST_CASE(an_apply_stuck_behind_commit_for_the_bound_is_stalled) {
  HealthRule rule(milliseconds(5000));
  const Clock::time_point start = Clock::now();
  BOOST_TEST(rule.check(input(true, 1, 20, 10), start).healthy);                       // just fell behind
  BOOST_TEST(rule.check(input(true, 1, 25, 10), start + milliseconds(4999)).healthy);  // not for long yet
  HealthVerdict stalled = rule.check(input(true, 1, 25, 10), start + milliseconds(5000));
  BOOST_TEST(!stalled.healthy);
  BOOST_TEST(stalled.reason == "applying stalled: applied 10 commit 25");
}

BOOST_AUTO_TEST_CASE(an_apply_that_moves_or_catches_up_is_not_stalled) {
  HealthRule rule(milliseconds(5000));
  const Clock::time_point start = Clock::now();
  BOOST_TEST(rule.check(input(true, 1, 1000, 10), start).healthy);
  // Far behind but moving: healthy, and the stall is timed from the last move.
  BOOST_TEST(rule.check(input(true, 1, 2000, 500), start + milliseconds(4000)).healthy);
  BOOST_TEST(rule.check(input(true, 1, 2000, 500), start + milliseconds(8999)).healthy);
  BOOST_TEST(!rule.check(input(true, 1, 2000, 500), start + milliseconds(9000)).healthy);
  // Caught up: healthy at once, and a new lag starts a new clock.
  BOOST_TEST(rule.check(input(true, 1, 2000, 2000), start + milliseconds(9001)).healthy);
  BOOST_TEST(rule.check(input(true, 1, 2100, 2000), start + milliseconds(12000)).healthy);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http)

BOOST_AUTO_TEST_CASE(a_scrapers_request_is_parsed_and_its_length_reported) {
  const std::string first = "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: text/plain\r\n\r\n";
  const std::string both = first + "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
  HttpParseResult parsed = parse_http_request(both, 8192);
  BOOST_TEST(static_cast<int>(parsed.state) == static_cast<int>(HttpParseState::complete));
  BOOST_TEST(parsed.request.method == "GET");
  BOOST_TEST(parsed.request.path == "/metrics");
  BOOST_TEST(parsed.request.keep_alive);
  BOOST_TEST(parsed.head_bytes == first.size());
  HttpParseResult second = parse_http_request(both.substr(parsed.head_bytes), 8192);
  BOOST_TEST(second.request.path == "/health");
  BOOST_TEST(!second.request.keep_alive);
}

BOOST_AUTO_TEST_CASE(partial_heads_wait_and_oversized_or_malformed_ones_are_refused) {
  BOOST_TEST(static_cast<int>(parse_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n", 8192).state) ==
             static_cast<int>(HttpParseState::incomplete));
  BOOST_TEST(static_cast<int>(parse_http_request(std::string(100, 'a'), 64).state) ==
             static_cast<int>(HttpParseState::too_large));
  for (const std::string& bad : {std::string("GET\r\n\r\n"), std::string("GET /metrics HTTP/2.0\r\n\r\n"),
                                 std::string("GET metrics HTTP/1.1\r\n\r\n"),
                                 std::string("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
                                 std::string("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")}) {
    HttpParseResult parsed = parse_http_request(bad, 8192);
    BOOST_TEST(static_cast<int>(parsed.state) == static_cast<int>(HttpParseState::malformed), bad);
    BOOST_TEST(!parsed.error.empty());
  }
  // HTTP/1.0 closes unless told otherwise.
  BOOST_TEST(!parse_http_request("GET /health HTTP/1.0\n\n", 8192).request.keep_alive);
}

BOOST_AUTO_TEST_CASE(responses_carry_their_length) {
  const std::string response = http_response(503, "Service Unavailable", "text/plain", "no leader\n", false);
  BOOST_TEST(response.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0u);
  BOOST_TEST(contains(response, "Content-Length: 10\r\n"));
  BOOST_TEST(contains(response, "Connection: close\r\n\r\nno leader\n"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval::metrics
