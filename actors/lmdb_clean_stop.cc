// The clean-stop mark shared by LMDB's writers (see lmdb_clean_stop.h).
#include "actors/lmdb_clean_stop.h"

#include <iostream>

#include "storage/lmdb_state.h"

namespace keyval {

LmdbCleanStop::LmdbCleanStop(std::shared_ptr<Store> store, Env* env, std::string data_directory,
                             std::function<void(const std::string&)> log)
    : store_(std::move(store)), env_(env), data_directory_(std::move(data_directory)), log_(std::move(log)) {}

bool LmdbCleanStop::clean_reason(const caf::error& reason) {
  return !reason || reason == caf::exit_reason::user_shutdown || reason == caf::exit_reason::normal;
}

void LmdbCleanStop::add_writer() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++writers_;
}

void LmdbCleanStop::writer_stopped(const caf::error& reason, bool failed) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed || !clean_reason(reason)) unclean_ = true;
  if (--writers_ > 0 || unclean_) return;
  if (env_ == nullptr || data_directory_.empty()) return;
  if (!store_->sync().is_ok()) return;
  Status marked = mark_lmdb_clean(*env_, data_directory_);
  if (marked.is_ok()) return;
  std::string line = "lmdb: could not mark LMDB clean: " + marked.to_string();
  if (log_) log_(line);
  else std::cerr << line << std::endl;
}

}  // namespace keyval
