// The metrics registry (see registry.h).
#include "metrics/registry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "storage/status.h"

namespace keyval::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    KV_ASSERT(std::isfinite(upper_bounds_[i]));
    KV_ASSERT(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i]);
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) {
  // Buckets are few (tens): a linear scan beats a binary search's branches at this size.
  size_t bucket = 0;
  while (bucket < upper_bounds_.size() && value > upper_bounds_[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.cumulative.reserve(upper_bounds_.size() + 1);
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    snapshot.count += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(snapshot.count);
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> exponential_bounds(double start, double factor, size_t count) {
  KV_ASSERT(start > 0 && factor > 1);
  std::vector<double> bounds;
  double bound = start;
  for (size_t i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

std::string escape_label_value(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    if (c == '\\') escaped += "\\\\";
    else if (c == '"') escaped += "\\\"";
    else if (c == '\n') escaped += "\\n";
    else escaped += c;
  }
  return escaped;
}

std::string escape_help(std::string_view help) {
  std::string escaped;
  escaped.reserve(help.size());
  for (char c : help) {
    if (c == '\\') escaped += "\\\\";
    else if (c == '\n') escaped += "\\n";
    else escaped += c;
  }
  return escaped;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

namespace {

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

void sample(std::string& out, const std::string& name, const std::string& labels, const std::string& value) {
  out += name;
  if (!labels.empty()) out += labels + "}";
  out += ' ';
  out += value;
  out += '\n';
}

// A label set, with the histogram's `le` appended to whatever labels the series has.
std::string with_le(const std::string& labels, const std::string& bound) {
  return (labels.empty() ? "{" : labels + ",") + "le=\"" + bound + "\"";
}

}  // namespace

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}

void FamilyBase::render(std::string& out) const {
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + type_name(type_) + "\n";
  std::lock_guard<std::mutex> guard(mutex_);
  render_series(out);
}

std::string FamilyBase::label_text(const std::vector<std::string>& values) const {
  if (values.empty()) return "";
  std::string text = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    text += label_names_[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  return text;
}

template <class Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& label_values) {
  KV_ASSERT(label_values.size() == label_names_.size());
  std::lock_guard<std::mutex> guard(mutex_);
  auto& series = series_[label_values];
  if (!series) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      series = std::make_unique<Histogram>(upper_bounds_);
    } else {
      series = std::make_unique<Metric>();
    }
  }
  return *series;
}

template <>
void Family<Counter>::render_series(std::string& out) const {
  for (const auto& [labels, counter] : series_) sample(out, name_, label_text(labels), std::to_string(counter->value()));
}

template <>
void Family<Gauge>::render_series(std::string& out) const {
  for (const auto& [labels, gauge] : series_) sample(out, name_, label_text(labels), std::to_string(gauge->value()));
}

template <>
void Family<Histogram>::render_series(std::string& out) const {
  for (const auto& [label_values, histogram] : series_) {
    const std::string labels = label_text(label_values);
    Histogram::Snapshot snapshot = histogram->snapshot();
    const auto& bounds = histogram->upper_bounds();
    for (size_t i = 0; i < bounds.size(); ++i) {
      sample(out, name_ + "_bucket", with_le(labels, format_value(bounds[i])), std::to_string(snapshot.cumulative[i]));
    }
    sample(out, name_ + "_bucket", with_le(labels, "+Inf"), std::to_string(snapshot.count));
    sample(out, name_ + "_sum", labels, format_value(snapshot.sum));
    sample(out, name_ + "_count", labels, std::to_string(snapshot.count));
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Family<Counter>& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Counter>>(std::move(name), std::move(help), MetricType::counter,
                                                  std::move(label_names));
  auto& result = *family;
  add(std::move(family));
  return result;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family =
      std::make_unique<Family<Gauge>>(std::move(name), std::move(help), MetricType::gauge, std::move(label_names));
  auto& result = *family;
  add(std::move(family));
  return result;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                       std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Histogram>>(std::move(name), std::move(help), MetricType::histogram,
                                                    std::move(label_names), std::move(upper_bounds));
  auto& result = *family;
  add(std::move(family));
  return result;
}

void Registry::add(std::unique_ptr<FamilyBase> family) {
  std::lock_guard<std::mutex> guard(mutex_);
  // Two families of one name would render as one with two TYPE lines: a programming error.
  for (const auto& existing : families_) KV_ASSERT(existing->name() != family->name());
  families_.push_back(std::move(family));
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard<std::mutex> guard(mutex_);
  for (const auto& family : families_) family->render(out);
  return out;
}

}  // namespace keyval::metrics
