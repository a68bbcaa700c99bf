// Runs the seeds of a sweep (`keyval sim --seeds A..B --jobs N`) in N forked worker
// processes and hands their results back in seed order, as a serial sweep would produce them.
//
// Why fork and not re-exec of the binary with a sub-range: the parent forks before it has run
// any simulation, so it is single-threaded (no CAF actor system exists yet) and a child gets
// the parsed flags and options as they are, with nothing to rebuild from a command line and
// no dependence on /proc/self/exe; a worker is still a process of its own, so a seed that
// aborts or is killed takes only its worker down, and the parent names the range it lost.
//
// Method: the range is cut into chunks of consecutive seeds (at most chunk_seeds_max); a
// worker is forked per chunk, at most `jobs` at a time, so a slow chunk does not hold up the
// rest. A worker runs its seeds one after the other and writes one framed record per seed
// to its pipe, then exits 0. The parent polls the pipes, and reports a chunk once every
// chunk before it has been reported, so records reach the caller in seed order.
//
// A worker that exits without having sent every record of its chunk (killed, crashed,
// non-zero exit) is a WorkerFailure naming its seeds, the seed it was running and how it
// died; its remaining seeds are not run again. SIGINT or SIGTERM to the parent kills every
// live worker by its PID (SIGKILL), reaps it, and then the parent dies of the same signal.
// A worker dies with its parent (PR_SET_PDEATHSIG) if the parent is killed outright.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "storage/status.h"

namespace keyval::sim {

// At most this many consecutive seeds per worker process: small enough that the last
// chunks finish close together and progress moves, large enough that fork costs nothing.
constexpr uint64_t chunk_seeds_max = 20;
// More workers than this is a typo, not a machine.
constexpr uint64_t jobs_max = 256;

// Seeds that were given to a worker that did not finish them.
struct WorkerFailure {
  uint64_t first_seed = 0;
  uint64_t last_seed = 0;
  uint64_t seeds_reported = 0;  // records received: seed first_seed + seeds_reported was running
  pid_t pid = 0;
  std::string how;  // "killed by signal 9 (Killed)", "exited with status 134", ...
};

struct SeedWorkerCalls {
  // Runs in a worker: one seed's record (any bytes).
  std::function<std::string(uint64_t seed)> run_seed;
  // In the parent, in seed order: a seed's record.
  std::function<void(uint64_t seed, const std::string& record)> on_record;
  // In the parent, at the failed chunk's place in seed order (after the records it sent).
  std::function<void(const WorkerFailure& failure)> on_failure;
  // In the parent, each time a record arrives (any order): how many seeds are done so far,
  // and that record.
  std::function<void(uint64_t seeds_done, const std::string& record)> on_progress;
};

// Runs seeds first..last across `jobs` (1..jobs_max) workers. Returns ok when every worker
// could be started (a worker that died is reported through on_failure, not here); an error
// when the process has other threads (fork would copy only one of them) or fork or pipe fail.
Status run_seeds_in_workers(uint64_t first, uint64_t last, uint64_t jobs, const SeedWorkerCalls& calls);

}  // namespace keyval::sim
