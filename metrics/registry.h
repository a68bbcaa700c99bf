// A small metrics registry: counters, gauges and fixed-bucket histograms, optionally labelled,
// rendered in the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Why our own and not a client library: Debian has none for C++ that fits a CAF process, and
// what a node needs is small. The rules:
//   * Updates are lock-free (relaxed atomics): the actors that own the numbers (raft node, WAL
//     writer, client listener, ...) update them on their own threads; the HTTP listener reads
//     them at scrape time. A scrape may see one histogram observation half done (its bucket
//     counted, its sum not yet): the exposition format asks for nothing stronger.
//   * A series is created once, under the family's mutex, and lives as long as the registry:
//     a reference to it stays valid, so the owners keep references and never look them up on
//     the hot path. Labelled series of unbounded label sets are not offered: callers name
//     label values from a fixed vocabulary (operation names, outcomes).
//   * Histograms have fixed upper bounds chosen when the family is registered; the count is
//     the sum of the buckets, so the +Inf bucket always equals _count.
// Families render in the order they were registered; series in label order.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace keyval::metrics {

class Counter {
 public:
  void add(uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  void add(int64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  // `upper_bounds`: strictly increasing, finite; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);

  void observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per upper bound, then +Inf (== count)
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // upper_bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// Bucket bounds: `count` bounds from `start`, each `factor` times the last.
std::vector<double> exponential_bounds(double start, double factor, size_t count);

enum class MetricType { counter, gauge, histogram };

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  // HELP, TYPE and every series.
  void render(std::string& out) const;

 protected:
  virtual void render_series(std::string& out) const = 0;
  // `{a="x",b="y"` without the closing brace (a histogram adds le), "" without labels.
  std::string label_text(const std::vector<std::string>& values) const;

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;  // guards the series map, not the values
};

template <class Metric>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> upper_bounds = {})
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        upper_bounds_(std::move(upper_bounds)) {}

  // The series with these label values (one per label name, in order), created on first use.
  Metric& with(const std::vector<std::string>& label_values);

 protected:
  void render_series(std::string& out) const override;

 private:
  std::vector<double> upper_bounds_;  // histograms only
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

class Registry {
 public:
  Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                               std::vector<std::string> label_names = {});

  // The text exposition format 0.0.4, every family.
  std::string render() const;

 private:
  void add(std::unique_ptr<FamilyBase> family);  // names are unique (asserted)

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

// The exposition format's escapes: a label value escapes backslash, double quote and newline;
// HELP text escapes backslash and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
// A sample value or bucket bound: the shortest text that reads back as the same double;
// +Inf, -Inf and NaN as the format spells them.
std::string format_value(double value);

}  // namespace keyval::metrics
