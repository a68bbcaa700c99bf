// The scenario file parser (see scenario.h).
#include "sim/scenario.h"

#include "storage/decimal.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace keyval::sim {
namespace {

constexpr uint64_t nodes_max = 9;
constexpr uint64_t clients_max = 256;
constexpr uint64_t cycles_max = 10000;
constexpr uint64_t duration_ms_max = 24ull * 3600 * 1000;

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

bool whole_number(const std::string& text, uint64_t* value) {
  auto parsed = parse_decimal(text);
  if (parsed) *value = *parsed;
  return parsed.has_value();
}

// "250ms", "2s", "1m" -> milliseconds.
bool duration(const std::string& text, uint64_t* ms) {
  struct Unit {
    const char* suffix;
    uint64_t ms;
  };
  for (Unit unit : {Unit{"ms", 1}, Unit{"s", 1000}, Unit{"m", 60000}}) {
    const std::string suffix = unit.suffix;
    if (text.size() <= suffix.size() || text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    uint64_t number = 0;
    if (!whole_number(text.substr(0, text.size() - suffix.size()), &number)) return false;
    if (number > duration_ms_max / unit.ms) return false;
    *ms = number * unit.ms;
    return true;
  }
  return false;
}

bool name_word(const std::string& text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  Result<Scenario> parse(const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      ++line_;
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::vector<std::string> words = words_of(line);
      if (words.empty()) continue;
      const std::string& setting = words[0];
      if (!seen_.insert(setting).second && known(setting)) return error("'" + setting + "' is given twice");
      std::vector<std::string> values(words.begin() + 1, words.end());
      if (is_step(setting)) {
        KV_RETURN_IF_ERROR(step(setting, values, line));
        continue;
      }
      if (conflicts_with_steps(setting)) conflicting_.emplace_back(setting, line_);
      KV_RETURN_IF_ERROR(apply(setting, values));
    }
    return finish();
  }

 private:
  static bool known(const std::string& setting) {
    static const std::set<std::string> names = {"name", "nodes", "clients", "mix",   "keys",  "value-bytes",
                                                "rate", "kill",  "how",     "every", "after-writes", "random",
                                                "down", "cycles", "seed",   "settle", "record"};
    return names.count(setting) != 0;
  }

  static bool is_step(const std::string& setting) {
    static const std::set<std::string> names = {"partition", "oneway", "isolate", "delay", "heal", "pause", "fill-disk"};
    return names.count(setting) != 0;
  }
  static bool conflicts_with_steps(const std::string& setting) {
    static const std::set<std::string> names = {"kill", "how", "down", "cycles", "every", "after-writes", "random"};
    return names.count(setting) != 0;
  }

  // "2", "leader", "follower"; false when it is none of them (or an id out of 1..nodes_max).
  static bool node_ref(const std::string& text, NodeRef* ref) {
    if (text == "leader" || text == "follower") {
      ref->kind = text == "leader" ? NodeRef::leader : NodeRef::follower;
      return true;
    }
    ref->kind = NodeRef::id;
    return whole_number(text, &ref->node) && ref->node >= 1 && ref->node <= nodes_max;
  }

  // "1,2" -> refs; an error names the step and the word.
  Status group(const std::string& setting, const std::string& text, std::vector<NodeRef>* refs) {
    std::istringstream in(text);
    for (std::string word; std::getline(in, word, ',');) {
      NodeRef ref;
      if (!node_ref(word, &ref)) {
        return error("'" + setting + "' expects nodes as an id (1.." + std::to_string(nodes_max) +
                     "), leader or follower, got '" + word + "'");
      }
      refs->push_back(ref);
    }
    if (refs->empty() || text.back() == ',') return error("'" + setting + "' expects a list of nodes such as 1,2, got '" + text + "'");
    return Status::ok();
  }

  // A fault step (see scenario.h). `line` is the text without its comment.
  Status step(const std::string& setting, std::vector<std::string> values, const std::string& line) {
    FaultStep step;
    step.text = std::string(words_of(line).empty() ? "" : line);
    step.text = step.text.substr(step.text.find_first_not_of(" \t"));
    step.text = step.text.substr(0, step.text.find_last_not_of(" \t") + 1);
    // The hold: "for D" or a bare duration as the last word (a delay's first duration is the delay).
    const bool is_delay = setting == "delay";
    const size_t durations_before_hold = is_delay ? 1 : 0;
    if (values.size() >= 2 && values[values.size() - 2] == "for") {
      KV_RETURN_IF_ERROR(time(setting, values.back(), &step.hold_ms));
      values.resize(values.size() - 2);
    } else if (!values.empty() && values.size() > durations_before_hold && std::isdigit(static_cast<unsigned char>(values.back()[0])) &&
               duration(values.back(), &step.hold_ms)) {
      values.pop_back();
    }
    if (step.hold_ms == 0) return error("'" + setting + "' lasts 0 ms: give it a duration above 0");
    const std::string usage = setting == "partition"   ? "groups of nodes such as 1,2|3"
                              : setting == "oneway"    ? "a directed link such as 1>2"
                              : setting == "delay"     ? "a duration such as 50ms, then maybe a directed link such as 1>2"
                              : setting == "heal"      ? "nothing but maybe 'for DURATION'"
                                                       : "one node: an id, leader or follower";
    auto expects = [&] { return error("'" + setting + "' expects " + usage); };
    if (setting == "partition") {
      step.kind = StepKind::partition;
      if (values.size() != 1) return expects();
      std::istringstream in(values[0]);
      for (std::string text; std::getline(in, text, '|');) {
        step.groups.emplace_back();
        KV_RETURN_IF_ERROR(group(setting, text, &step.groups.back()));
      }
      if (step.groups.size() < 2 || values[0].back() == '|') return expects();
    } else if (setting == "oneway" || (setting == "delay" && values.size() == 2)) {
      step.kind = setting == "oneway" ? StepKind::oneway : StepKind::delay;
      if (values.size() != (setting == "oneway" ? 1u : 2u)) return expects();
      const std::string& link = values.back();
      if (link.find('>') == std::string::npos) return expects();
      const size_t arrow = link.find('>');
      NodeRef from, to;
      if (!node_ref(link.substr(0, arrow), &from) || !node_ref(link.substr(arrow + 1), &to)) return expects();
      step.groups = {{from}, {to}};
    } else if (setting == "delay") {
      step.kind = StepKind::delay;
      if (values.size() != 1) return expects();
    } else if (setting == "heal") {
      step.kind = StepKind::heal;
      if (!values.empty()) return expects();
    } else {
      step.kind = setting == "isolate" ? StepKind::isolate : setting == "pause" ? StepKind::pause : StepKind::fill_disk;
      NodeRef ref;
      if (values.size() != 1 || !node_ref(values[0], &ref)) return expects();
      step.groups = {{ref}};
    }
    if (step.kind == StepKind::delay) {
      KV_RETURN_IF_ERROR(time(setting, values[0], &step.delay_ms));
      if (step.delay_ms == 0 || step.delay_ms > 60000) return error("'delay' expects a delay of 1ms..60s, got '" + values[0] + "'");
    }
    step_lines_.push_back(line_);
    scenario_.steps.push_back(std::move(step));
    return Status::ok();
  }

  // Ids named by the steps are in the cluster; groups and links name distinct nodes.
  Status check_steps() {
    const Scenario& s = scenario_;
    if (!conflicting_.empty() && s.has_steps()) {
      return Status::invalid_argument(source_ + " line " + std::to_string(conflicting_.front().second) + ": '" +
                                      conflicting_.front().first +
                                      "' does not apply to a scenario of fault steps (partition, oneway, isolate, "
                                      "delay, heal, pause, fill-disk)");
    }
    for (size_t k = 0; k < s.steps.size(); ++k) {
      std::set<std::string> named;
      for (const auto& refs : s.steps[k].groups) {
        for (const NodeRef& ref : refs) {
          const std::string where = source_ + " line " + std::to_string(step_lines_[k]) + ": ";
          if (ref.kind == NodeRef::id && ref.node > s.nodes) {
            return Status::invalid_argument(where + "'" + s.steps[k].text + "' names node " + std::to_string(ref.node) +
                                            " but the cluster has " + std::to_string(s.nodes) + " nodes");
          }
          if (!named.insert(ref.str()).second) {
            return Status::invalid_argument(where + "'" + s.steps[k].text + "' names " + ref.str() + " twice");
          }
          if (ref.kind == NodeRef::follower && s.nodes < 2) {
            return Status::invalid_argument(where + "'follower' needs at least 2 nodes");
          }
        }
      }
    }
    return Status::ok();
  }

  Status error(const std::string& what) const {
    return Status::invalid_argument(source_ + " line " + std::to_string(line_) + ": " + what);
  }

  Status one_value(const std::string& setting, const std::vector<std::string>& values, const std::string& expected) {
    if (values.size() != 1) return error("'" + setting + "' expects " + expected);
    return Status::ok();
  }

  Status number(const std::string& setting, const std::vector<std::string>& values, uint64_t min, uint64_t max,
                uint64_t* out) {
    const std::string expected = "a whole number in " + std::to_string(min) + ".." + std::to_string(max);
    KV_RETURN_IF_ERROR(one_value(setting, values, expected));
    uint64_t value = 0;
    if (!whole_number(values[0], &value) || value < min || value > max) {
      return error("'" + setting + "' expects " + expected + ", got '" + values[0] + "'");
    }
    *out = value;
    return Status::ok();
  }

  Status time(const std::string& setting, const std::string& text, uint64_t* out) {
    if (!duration(text, out)) return error("'" + setting + "' expects a duration such as 500ms, 2s or 1m, got '" + text + "'");
    return Status::ok();
  }

  Status when_once() {
    if (when_set_) return error("only one of 'every', 'after-writes' and 'random' may be given");
    when_set_ = true;
    return Status::ok();
  }

  Status apply(const std::string& setting, const std::vector<std::string>& values) {
    Scenario& s = scenario_;
    if (setting == "name") {
      KV_RETURN_IF_ERROR(one_value(setting, values, "one word of [A-Za-z0-9._-]"));
      if (!name_word(values[0])) return error("'name' expects one word of [A-Za-z0-9._-], got '" + values[0] + "'");
      s.name = values[0];
    } else if (setting == "nodes") {
      KV_RETURN_IF_ERROR(number(setting, values, 1, nodes_max, &s.nodes));
    } else if (setting == "clients") {
      KV_RETURN_IF_ERROR(number(setting, values, 1, clients_max, &s.clients));
    } else if (setting == "keys") {
      KV_RETURN_IF_ERROR(number(setting, values, 1, 10'000'000, &s.keys));
    } else if (setting == "value-bytes") {
      KV_RETURN_IF_ERROR(number(setting, values, 0, 1 << 20, &s.value_bytes));
    } else if (setting == "cycles") {
      KV_RETURN_IF_ERROR(number(setting, values, 1, cycles_max, &s.cycles));
    } else if (setting == "seed") {
      KV_RETURN_IF_ERROR(number(setting, values, 0, UINT64_MAX / 2, &s.seed));
    } else if (setting == "mix") {
      return mix(values);
    } else if (setting == "rate") {
      const std::string expected = "'closed' or a number of operations per second (1..1000000)";
      KV_RETURN_IF_ERROR(one_value(setting, values, expected));
      if (values[0] == "closed") {
        s.rate_ops_per_s = 0;
      } else if (!whole_number(values[0], &s.rate_ops_per_s) || s.rate_ops_per_s == 0 || s.rate_ops_per_s > 1'000'000) {
        return error("'rate' expects " + expected + ", got '" + values[0] + "'");
      }
    } else if (setting == "kill") {
      const std::string expected = "leader, follower, random, all, replace, grow or 'node N'";
      if (values.size() == 2 && values[0] == "node") {
        if (!whole_number(values[1], &s.target_node) || s.target_node == 0) {
          return error("'kill node' expects a node id above 0, got '" + values[1] + "'");
        }
        s.target = KillTarget::node;
        return Status::ok();
      }
      KV_RETURN_IF_ERROR(one_value(setting, values, expected));
      for (KillTarget target : {KillTarget::leader, KillTarget::follower, KillTarget::random, KillTarget::all,
                                KillTarget::replace, KillTarget::grow}) {
        if (values[0] == kill_target_name(target)) {
          s.target = target;
          return Status::ok();
        }
      }
      return error("'kill' expects " + expected + ", got '" + values[0] + "'");
    } else if (setting == "how") {
      how_line_ = line_;
      const std::string expected = "sigkill, sigterm, torn or disk-full";
      KV_RETURN_IF_ERROR(one_value(setting, values, expected));
      for (KillHow how : {KillHow::sigkill, KillHow::sigterm, KillHow::torn, KillHow::disk_full}) {
        if (values[0] == kill_how_name(how)) {
          s.how = how;
          return Status::ok();
        }
      }
      return error("'how' expects " + expected + ", got '" + values[0] + "'");
    } else if (setting == "every") {
      KV_RETURN_IF_ERROR(when_once());
      KV_RETURN_IF_ERROR(one_value(setting, values, "a duration such as 5s"));
      KV_RETURN_IF_ERROR(time(setting, values[0], &s.every_ms));
      if (s.every_ms == 0) return error("'every' must be above 0");
      s.when = KillWhen::every;
    } else if (setting == "after-writes") {
      KV_RETURN_IF_ERROR(when_once());
      KV_RETURN_IF_ERROR(number(setting, values, 1, 1'000'000'000, &s.after_writes));
      s.when = KillWhen::after_writes;
    } else if (setting == "random") {
      KV_RETURN_IF_ERROR(when_once());
      const std::string expected = "a range of durations such as 2s..6s";
      KV_RETURN_IF_ERROR(one_value(setting, values, expected));
      auto dots = values[0].find("..");
      if (dots == std::string::npos) return error("'random' expects " + expected + ", got '" + values[0] + "'");
      KV_RETURN_IF_ERROR(time(setting, values[0].substr(0, dots), &s.random_min_ms));
      KV_RETURN_IF_ERROR(time(setting, values[0].substr(dots + 2), &s.random_max_ms));
      if (s.random_min_ms > s.random_max_ms) return error("'random' range is reversed: " + values[0]);
      s.when = KillWhen::random;
    } else if (setting == "down") {
      down_line_ = line_;
      KV_RETURN_IF_ERROR(one_value(setting, values, "a duration such as 1s"));
      KV_RETURN_IF_ERROR(time(setting, values[0], &s.down_ms));
    } else if (setting == "settle") {
      KV_RETURN_IF_ERROR(one_value(setting, values, "a duration such as 1s"));
      KV_RETURN_IF_ERROR(time(setting, values[0], &s.settle_ms));
    } else if (setting == "record") {
      return record(values);
    } else {
      return error("unknown setting '" + setting +
                   "' (expected name, nodes, clients, mix, keys, value-bytes, rate, kill, how, every, "
                   "after-writes, random, down, cycles, seed, settle or record; or a fault step: partition, "
                   "oneway, isolate, delay, heal, pause, fill-disk)");
    }
    return Status::ok();
  }

  Status mix(const std::vector<std::string>& values) {
    const std::string expected = "pairs of an operation (put, get, del, cas) and a percent, summing to 100";
    if (values.empty() || values.size() % 2 != 0) return error("'mix' expects " + expected);
    Scenario& s = scenario_;
    s.put_percent = s.get_percent = s.del_percent = s.cas_percent = 0;
    std::set<std::string> named;
    uint64_t total = 0;
    for (size_t i = 0; i < values.size(); i += 2) {
      uint64_t percent = 0;
      if (!whole_number(values[i + 1], &percent) || percent > 100) {
        return error("'mix' expects a percent 0..100 after '" + values[i] + "', got '" + values[i + 1] + "'");
      }
      if (!named.insert(values[i]).second) return error("'mix' names '" + values[i] + "' twice");
      uint32_t* slot = values[i] == "put"   ? &s.put_percent
                       : values[i] == "get" ? &s.get_percent
                       : values[i] == "del" ? &s.del_percent
                       : values[i] == "cas" ? &s.cas_percent
                                            : nullptr;
      if (slot == nullptr) return error("'mix' expects put, get, del or cas, got '" + values[i] + "'");
      *slot = static_cast<uint32_t>(percent);
      total += percent;
    }
    if (total != 100) return error("'mix' percentages sum to " + std::to_string(total) + ", not 100");
    return Status::ok();
  }

  Status record(const std::vector<std::string>& values) {
    const std::string expected = "'all' or any of csv, summary, plots";
    if (values.empty()) return error("'record' expects " + expected);
    Scenario& s = scenario_;
    s.record_csv = s.record_summary = s.record_plots = false;
    for (const std::string& value : values) {
      if (value == "all") {
        s.record_csv = s.record_summary = s.record_plots = true;
      } else if (value == "csv") {
        s.record_csv = true;
      } else if (value == "summary") {
        s.record_summary = true;
      } else if (value == "plots") {
        s.record_plots = true;
      } else {
        return error("'record' expects " + expected + ", got '" + value + "'");
      }
    }
    return Status::ok();
  }

  Result<Scenario> finish() {
    Scenario& s = scenario_;
    KV_RETURN_IF_ERROR(check_steps());
    if (s.has_steps()) s.cycles = s.steps.size();
    if (s.target == KillTarget::node && s.target_node > s.nodes) {
      return Status::invalid_argument(source_ + ": 'kill node " + std::to_string(s.target_node) + "' but the cluster has " +
                                      std::to_string(s.nodes) + " nodes");
    }
    if (s.target == KillTarget::follower && s.nodes < 2) {
      return Status::invalid_argument(source_ + ": 'kill follower' needs at least 2 nodes");
    }
    if (s.changes_membership()) {
      const std::string kill = std::string("'kill ") + kill_target_name(s.target) + "'";
      if (s.how != KillHow::sigkill && s.how != KillHow::sigterm) {
        return Status::invalid_argument(source_ + " line " + std::to_string(how_line_) + ": " + kill +
                                        " stops a removed node by sigkill or sigterm, not '" + kill_how_name(s.how) + "'");
      }
      if (down_line_ != 0) {
        return Status::invalid_argument(source_ + " line " + std::to_string(down_line_) + ": 'down' does not apply to " +
                                        kill + ": a removed node never comes back");
      }
    }
    if (s.name.empty()) {
      std::string base = source_.substr(source_.find_last_of('/') + 1);
      base = base.substr(0, base.find('.'));
      s.name = name_word(base) ? base : "scenario";
    }
    return s;
  }

  std::string source_;
  size_t line_ = 0;
  std::set<std::string> seen_;
  bool when_set_ = false;
  size_t how_line_ = 0, down_line_ = 0;  // where they were given (0: not given)
  std::vector<std::pair<std::string, size_t>> conflicting_;  // settings that steps exclude, with their lines
  std::vector<size_t> step_lines_;  // the line of each step
  Scenario scenario_;
};

}  // namespace

const char* kill_target_name(KillTarget target) {
  switch (target) {
    case KillTarget::leader: return "leader";
    case KillTarget::follower: return "follower";
    case KillTarget::random: return "random";
    case KillTarget::all: return "all";
    case KillTarget::node: return "node";
    case KillTarget::replace: return "replace";
    case KillTarget::grow: return "grow";
  }
  return "?";
}

const char* kill_how_name(KillHow how) {
  switch (how) {
    case KillHow::sigkill: return "sigkill";
    case KillHow::sigterm: return "sigterm";
    case KillHow::torn: return "torn";
    case KillHow::disk_full: return "disk-full";
  }
  return "?";
}

std::string NodeRef::str() const {
  return kind == leader ? "leader" : kind == follower ? "follower" : std::to_string(node);
}

const char* step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::partition: return "partition";
    case StepKind::oneway: return "oneway";
    case StepKind::isolate: return "isolate";
    case StepKind::delay: return "delay";
    case StepKind::heal: return "heal";
    case StepKind::pause: return "pause";
    case StepKind::fill_disk: return "fill-disk";
  }
  return "?";
}

bool Scenario::fills_disk() const {
  return std::any_of(steps.begin(), steps.end(), [](const FaultStep& step) { return step.kind == StepKind::fill_disk; });
}

Result<Scenario> parse_scenario(const std::string& text, const std::string& source) {
  return Parser(source).parse(text);
}

Result<Scenario> load_scenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalid_argument("cannot read scenario file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_scenario(text.str(), path);
}

}  // namespace keyval::sim
