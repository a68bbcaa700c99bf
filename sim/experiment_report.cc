// Experiment outputs (see scenario.h): cycles.csv, summary.json, summary.txt and SVG plots,
// written without any plotting dependency.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/history_json.h"
#include "sim/scenario.h"

namespace keyval::sim {
namespace {

std::string number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return std::to_string(static_cast<int64_t>(value));
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

const char* const csv_header =
    "cycle,target_nodes,how,was_leader,killed_at_ms,down_ms,leader_before,leader_after,unavailable_ms,"
    "recovery_entries,recovery_wal_bytes,recovery_ms,torn_bytes_cut,catch_up_ms,log_entries,log_bytes,"
    "ops_acked,ops_failed,ops_unknown,new_members,voter_ms,new_member_bytes";

std::string csv_row(const CycleRecord& r) {
  std::ostringstream row;
  row << r.cycle << "," << r.target_nodes << "," << r.how << "," << (r.was_leader ? 1 : 0) << "," << number(r.killed_at_ms)
      << "," << number(r.down_ms) << "," << r.leader_before << "," << r.leader_after << "," << number(r.unavailable_ms)
      << "," << r.recovery_entries << "," << r.recovery_wal_bytes << "," << number(r.recovery_ms) << ","
      << r.torn_bytes_cut << "," << number(r.catch_up_ms) << "," << r.log_entries << "," << r.log_bytes << ","
      << r.ops_acked << "," << r.ops_failed << "," << r.ops_unknown << "," << r.new_members << ","
      << number(r.voter_ms) << "," << r.new_member_bytes;
  return row.str();
}

struct Stats {
  double min = 0, median = 0, max = 0;
  size_t count = 0;
};

Stats stats_of(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return v < 0; }), values.end());
  Stats stats;
  stats.count = values.size();
  if (values.empty()) return stats;
  std::sort(values.begin(), values.end());
  stats.min = values.front();
  stats.max = values.back();
  stats.median = values[values.size() / 2];
  return stats;
}

// A figure for summary.json: a whole number as one, else rounded to 3 decimals (as number()).
nlohmann::ordered_json json_number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return static_cast<int64_t>(value);
  return std::round(value * 1000) / 1000;
}

nlohmann::ordered_json stats_json(const Stats& stats) {
  nlohmann::ordered_json json;
  json["count"] = stats.count;
  json["min"] = json_number(stats.min);
  json["median"] = json_number(stats.median);
  json["max"] = json_number(stats.max);
  return json;
}

// --- SVG ---------------------------------------------------------------------------------

enum class Style { dots, line, bars };

struct Series {
  std::vector<std::pair<double, double>> points;
  Style style = Style::dots;  // a line joins points that belong together (a time series); bars
                              // stand alone (one per cycle: no line implies values in between)
  std::string color;
};

// Vertical dashed lines at x, one color per kind (kills, restarts).
struct Markers {
  std::vector<double> at;
  std::string color;
  std::string dash;
};

// A nice round step for about `ticks` intervals over [0, max].
double tick_step(double max, int ticks) {
  if (max <= 0) return 1;
  double raw = max / ticks;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= factor * power) return factor * power;
  }
  return 10 * power;
}

std::string svg_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<Series>& series, const std::vector<Markers>& markers = {}) {
  const double width = 720, height = 400, left = 80, right = 20, top = 40, bottom = 60;
  double x_max = 0, y_max = 0;
  for (const Series& s : series) {
    for (auto [x, y] : s.points) {
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  }
  bool bars = false;
  for (const Series& s : series) bars |= s.style == Style::bars;
  if (bars) x_max += 1;  // room for the last bar
  for (const Markers& kind : markers) {
    for (double m : kind.at) x_max = std::max(x_max, m);
  }
  const double x_step = tick_step(x_max, 8), y_step = tick_step(y_max, 5);
  x_max = std::max(x_step, std::ceil(x_max / x_step) * x_step);
  y_max = std::max(y_step, std::ceil(y_max / y_step) * y_step);
  auto px = [&](double x) { return left + x / x_max * (width - left - right); };
  auto py = [&](double y) { return height - bottom - y / y_max * (height - top - bottom); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << title << "</text>\n";
  for (double x = 0; x <= x_max + x_step / 2; x += x_step) {
    svg << "<line x1=\"" << px(x) << "\" y1=\"" << py(0) << "\" x2=\"" << px(x) << "\" y2=\"" << py(y_max)
        << "\" stroke=\"#eee\"/>\n<text x=\"" << px(x) << "\" y=\"" << py(0) + 16 << "\" text-anchor=\"middle\">"
        << number(x) << "</text>\n";
  }
  for (double y = 0; y <= y_max + y_step / 2; y += y_step) {
    svg << "<line x1=\"" << px(0) << "\" y1=\"" << py(y) << "\" x2=\"" << px(x_max) << "\" y2=\"" << py(y)
        << "\" stroke=\"#eee\"/>\n<text x=\"" << px(0) - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">"
        << number(y) << "</text>\n";
  }
  svg << "<line x1=\"" << px(0) << "\" y1=\"" << py(0) << "\" x2=\"" << px(x_max) << "\" y2=\"" << py(0)
      << "\" stroke=\"black\"/>\n<line x1=\"" << px(0) << "\" y1=\"" << py(0) << "\" x2=\"" << px(0) << "\" y2=\""
      << py(y_max) << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 18 << "\" text-anchor=\"middle\">" << x_label
      << "</text>\n<text x=\"18\" y=\"" << (top + height - bottom) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
      << (top + height - bottom) / 2 << ")\">" << y_label << "</text>\n";
  for (const Markers& kind : markers) {
    for (double m : kind.at) {
      svg << "<line x1=\"" << px(m) << "\" y1=\"" << py(0) << "\" x2=\"" << px(m) << "\" y2=\"" << py(y_max)
          << "\" stroke=\"" << kind.color << "\" stroke-dasharray=\"" << kind.dash << "\"/>\n";
    }
  }
  for (const Series& s : series) {
    if (s.style == Style::bars) {
      const double bar_width = std::max(2.0, (px(1) - px(0)) * 0.6);
      for (auto [x, y] : s.points) {
        svg << "<rect x=\"" << px(x) - bar_width / 2 << "\" y=\"" << py(y) << "\" width=\"" << bar_width
            << "\" height=\"" << py(0) - py(y) << "\" fill=\"" << s.color << "\"/>\n";
      }
    } else if (s.style == Style::line && s.points.size() > 1) {
      svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"";
      for (auto [x, y] : s.points) svg << px(x) << "," << py(y) << " ";
      svg << "\"/>\n";
    } else {
      for (auto [x, y] : s.points) {
        svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"4\" fill=\"" << s.color << "\"/>\n";
      }
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::io_error("cannot write " + path);
  return Status::ok();
}

// Membership cycles (kill replace, kill grow): who left, who joined, how long until the new
// node(s) applied the cluster's commit index and were voters, and what was sent to them.
std::string membership_table(const ExperimentResult& result) {
  std::ostringstream table;
  char line[256];
  std::snprintf(line, sizeof line, "%5s %9s %9s %13s %13s %16s\n", "cycle", "removed", "joined", "caught up", "voter after",
                "bytes to new");
  table << line;
  auto ms = [](double value) { return value < 0 ? std::string("-") : number(value) + " ms"; };
  for (const CycleRecord& r : result.cycles) {
    std::snprintf(line, sizeof line, "%5llu %9s %9s %13s %13s %16llu\n", static_cast<unsigned long long>(r.cycle),
                  r.target_nodes.c_str(), r.new_members.c_str(), ms(r.catch_up_ms).c_str(), ms(r.voter_ms).c_str(),
                  static_cast<unsigned long long>(r.new_member_bytes));
    table << line;
  }
  return table.str();
}

std::string summary_table(const ExperimentResult& result) {
  std::ostringstream table;
  const Scenario& s = result.scenario;
  table << "experiment " << s.name << " (" << result.mode << "): " << s.nodes << " nodes, " << s.clients << " clients, ";
  if (s.has_steps()) {
    table << s.steps.size() << " fault steps:";
    for (size_t k = 0; k < s.steps.size(); ++k) table << (k ? "; " : " ") << s.steps[k].text;
  } else {
    table << "kill " << kill_target_name(s.target) << " by " << kill_how_name(s.how) << ", " << s.cycles << " cycles";
  }
  table << ", seed " << s.seed << "\n\n";
  char line[256];
  std::snprintf(line, sizeof line, "%5s %8s %9s %6s %7s %13s %9s %11s %9s %11s %10s %7s %6s %7s\n", "cycle", "nodes",
                "how", "leader", "new", "unavailable", "recovered", "recovery", "torn cut", "caught up", "log bytes",
                "acked", "failed", "unknown");
  table << line;
  auto ms = [](double value) { return value < 0 ? std::string("-") : number(value) + " ms"; };
  for (const CycleRecord& r : result.cycles) {
    std::snprintf(line, sizeof line, "%5llu %8s %9s %6s %7lld %13s %9llu %11s %9llu %11s %10llu %7llu %6llu %7llu\n",
                  static_cast<unsigned long long>(r.cycle), r.target_nodes.c_str(), r.how.c_str(), r.was_leader ? "yes" : "no",
                  static_cast<long long>(r.leader_after), ms(r.unavailable_ms).c_str(),
                  static_cast<unsigned long long>(r.recovery_entries), ms(r.recovery_ms).c_str(),
                  static_cast<unsigned long long>(r.torn_bytes_cut), ms(r.catch_up_ms).c_str(),
                  static_cast<unsigned long long>(r.log_bytes), static_cast<unsigned long long>(r.ops_acked),
                  static_cast<unsigned long long>(r.ops_failed), static_cast<unsigned long long>(r.ops_unknown));
    table << line;
  }
  if (s.changes_membership()) {
    table << "\n" << membership_table(result);
  }
  table << "\nacknowledged writes checked: " << result.acked_writes << ", lost: " << result.lost_acked_writes << "\n";
  if (!result.linearizable.empty()) {
    table << "history: " << result.history_operations << " operations, linearizable: " << result.linearizable;
    if (!result.history_path.empty()) table << " (" << result.history_path << ")";
    table << "\n";
  }
  for (const std::string& problem : result.problems) table << "problem: " << problem << "\n";
  table << (result.ok() ? "result: ok\n" : "result: FAILED\n");
  return table.str();
}

}  // namespace

std::string experiment_summary_json(const ExperimentResult& result) {
  std::vector<double> unavailable, recovery, catch_up, voter, new_member_bytes;
  uint64_t acked = 0, failed = 0, unknown = 0;
  for (const CycleRecord& r : result.cycles) {
    unavailable.push_back(r.unavailable_ms);
    voter.push_back(r.voter_ms);
    if (!r.new_members.empty()) new_member_bytes.push_back(static_cast<double>(r.new_member_bytes));
    recovery.push_back(r.recovery_ms);
    catch_up.push_back(r.catch_up_ms);
    acked += r.ops_acked;
    failed += r.ops_failed;
    unknown += r.ops_unknown;
  }
  nlohmann::ordered_json json;
  json["experiment"] = result.scenario.name;
  json["mode"] = result.mode;
  json["seed"] = result.scenario.seed;
  json["cycles"] = result.cycles.size();
  json["duration_ms"] = json_number(result.duration_ms);
  json["ops_acked"] = acked;
  json["ops_failed"] = failed;
  json["ops_unknown"] = unknown;
  json["unavailable_ms"] = stats_json(stats_of(unavailable));
  json["recovery_ms"] = stats_json(stats_of(recovery));
  json["catch_up_ms"] = stats_json(stats_of(catch_up));
  json["voter_ms"] = stats_json(stats_of(voter));
  json["new_member_bytes"] = stats_json(stats_of(new_member_bytes));
  json["acked_writes"] = result.acked_writes;
  json["lost_acked_writes"] = result.lost_acked_writes;
  if (!result.linearizable.empty()) {
    json["linearizable"] = result.linearizable;
    json["history_operations"] = result.history_operations;
    json["history"] = result.history_path;
  }
  json["problems"] = result.problems;
  json["ok"] = result.ok();
  return json_text(json);
}

Status write_experiment_outputs(const std::string& directory, const ExperimentResult& result) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return Status::io_error("cannot create " + directory + ": " + error.message());
  const Scenario& s = result.scenario;
  if (s.record_csv) {
    std::string csv = std::string(csv_header) + "\n";
    for (const CycleRecord& r : result.cycles) csv += csv_row(r) + "\n";
    KV_RETURN_IF_ERROR(write_text(directory + "/cycles.csv", csv));
  }
  if (s.record_summary) {
    KV_RETURN_IF_ERROR(write_text(directory + "/summary.json", experiment_summary_json(result) + "\n"));
    KV_RETURN_IF_ERROR(write_text(directory + "/summary.txt", summary_table(result)));
  }
  if (s.record_plots) {
    const std::string unit = result.mode == "simulation" ? " (virtual)" : "";
    Series recovery{{}, Style::dots, "#1f77b4"};
    Series unavailable{{}, Style::bars, "#ff7f0e"};
    Markers kills{{}, "#d62728", "4 3"};
    Markers restarts{{}, "#1f77b4", "1 3"};
    for (const CycleRecord& r : result.cycles) {
      if (r.recovery_ms >= 0) recovery.points.push_back({static_cast<double>(r.recovery_wal_bytes) / 1024.0, r.recovery_ms});
      unavailable.points.push_back({static_cast<double>(r.cycle), std::max(0.0, r.unavailable_ms)});
      kills.at.push_back(r.killed_at_ms / 1000.0);
      // A node that comes back (not a replaced or removed one) restarts after its time down.
      if (r.down_ms > 0) restarts.at.push_back((r.killed_at_ms + r.down_ms) / 1000.0);
    }
    KV_RETURN_IF_ERROR(write_text(directory + "/recovery_vs_log_size.svg",
                                  svg_plot(s.name + ": recovery time against log size", "WAL at restart (KiB)",
                                           "recovery (ms" + unit + ")", {recovery})));
    KV_RETURN_IF_ERROR(write_text(directory + "/unavailability.svg",
                                  svg_plot(s.name + ": unavailability per cycle", "cycle",
                                           "kill to first acknowledged write (ms" + unit + ")", {unavailable})));
    if (s.changes_membership()) {
      Series caught_up{{}, Style::bars, "#1f77b4"};
      Series voter{{}, Style::dots, "#9467bd"};
      for (const CycleRecord& r : result.cycles) {
        if (r.catch_up_ms >= 0) caught_up.points.push_back({static_cast<double>(r.cycle), r.catch_up_ms});
        if (r.voter_ms >= 0) voter.points.push_back({static_cast<double>(r.cycle), r.voter_ms});
      }
      KV_RETURN_IF_ERROR(write_text(directory + "/new_member.svg",
                                    svg_plot(s.name + ": new member caught up (blue) and voter (purple)", "cycle",
                                             "since its start / its addition (ms" + unit + ")", {caught_up, voter})));
    }
    Series throughput{{}, Style::line, "#2ca02c"};
    const double per_second = 1000.0 / result.bucket_ms;
    for (const ThroughputSample& sample : result.throughput) {
      throughput.points.push_back({sample.at_ms / 1000.0, static_cast<double>(sample.acked) * per_second});
    }
    KV_RETURN_IF_ERROR(write_text(directory + "/throughput.svg",
                                  svg_plot(s.name + ": acknowledged operations per second (kills red dashed, "
                                                    "restarts blue dotted)",
                                           "time (s" + unit + ")", "ops/s", {throughput}, {kills, restarts})));
  }
  return Status::ok();
}

}  // namespace keyval::sim
