// The clean-stop mark of a node's LMDB (storage/lmdb_state.h) when two actors write it.
//
// The store_indexer (the log) and the state machine actor (the keys) each commit to the same
// relaxed environment. "clean" may be written only after the final sync that follows the
// last commit of both: a writer still committing after the mark could leave a power cut a
// torn LMDB that the next start trusts. So each writer reports its stop here, and the last
// one to stop syncs LMDB and marks it clean, provided every writer stopped cleanly (exit
// reason user_shutdown or normal, and no fail-stop of its own).
#pragma once

#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "storage/env.h"
#include "storage/store.h"

namespace keyval {

class LmdbCleanStop {
 public:
  // `env` null or `data_directory` empty: nothing is ever marked (a store without a directory
  // of its own, as in some tests).
  LmdbCleanStop(std::shared_ptr<Store> store, Env* env, std::string data_directory,
                std::function<void(const std::string&)> log);

  // A writer that will report its stop: call before it can commit.
  void add_writer();
  // A writer stopped with `reason`; `failed` when it fail-stopped. The last writer's report
  // syncs and marks, unless some writer's stop was not clean.
  void writer_stopped(const caf::error& reason, bool failed);

  // Whether a stop with this reason is clean (user_shutdown or normal).
  static bool clean_reason(const caf::error& reason);

 private:
  std::mutex mutex_;
  std::shared_ptr<Store> store_;
  Env* env_;
  std::string data_directory_;
  std::function<void(const std::string&)> log_;
  int writers_ = 0;
  bool unclean_ = false;
};

}  // namespace keyval
