// Seed workers: forked processes that run a sweep's chunks (see seed_workers.h).
//
// Pipe format, worker to parent, one frame per seed: "<seed> <record bytes>\n" then the
// record's bytes. A worker that stops mid-frame is a worker that died: the parent keeps only
// whole frames.
#include "sim/seed_workers.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

namespace keyval::sim {
namespace {

// The parent's SIGINT/SIGTERM handler writes the signal's number here; the poll loop reads it.
int signal_pipe_write = -1;

void on_stop_signal(int signal_number) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  [[maybe_unused]] ssize_t written = ::write(signal_pipe_write, &byte, 1);
  errno = saved;
}

size_t threads_of_this_process() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoul(line.substr(8));
  }
  return 0;  // unknown: no /proc
}

bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string describe_exit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int number = WTERMSIG(wait_status);
    return "killed by signal " + std::to_string(number) + " (" + strsignal(number) + ")";
  }
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  return "ended with wait status " + std::to_string(wait_status);
}

struct Chunk {
  uint64_t first = 0, last = 0;
  std::vector<std::string> records;  // by seed, from first
  bool finished = false;
  std::optional<WorkerFailure> failure;
};

struct Worker {
  pid_t pid = -1;
  int read_fd = -1;
  uint64_t chunk = 0;
  std::string buffer;  // bytes read, not yet a whole frame
};

class WorkerPool {
 public:
  // About four chunks per worker, so the last ones finish close together.
  WorkerPool(uint64_t first, uint64_t last, uint64_t jobs, const SeedWorkerCalls& calls)
      : jobs_(jobs),
        calls_(calls),
        first_(first),
        last_(last),
        chunk_seeds_(std::clamp<uint64_t>((last - first) / (jobs * 4) + 1, 1, chunk_seeds_max)),
        chunk_count_((last - first) / chunk_seeds_ + 1) {}

  Status run();

 private:
  // Chunk `index`'s seeds; made when its worker starts, dropped once reported, so memory
  // follows the chunks in flight and not the range.
  Chunk make_chunk(uint64_t index) const {
    const uint64_t start = first_ + index * chunk_seeds_;
    return Chunk{start, last_ - start < chunk_seeds_ ? last_ : start + chunk_seeds_ - 1, {}, false, std::nullopt};
  }
  Status start_worker(uint64_t chunk);
  [[noreturn]] void work(uint64_t chunk, int write_fd);
  // Reads what the worker sent; false once its pipe has ended.
  bool read_from(Worker& worker);
  void take_frames(Worker& worker);
  void finish(Worker& worker);
  void report_finished_chunks();
  [[noreturn]] void stop_on_signal(int signal_number);

  const uint64_t jobs_;
  const SeedWorkerCalls& calls_;
  const uint64_t first_, last_;
  const uint64_t chunk_seeds_;  // seeds per chunk (the last may have fewer)
  const uint64_t chunk_count_;
  std::map<uint64_t, Chunk> chunks_;  // started and not yet reported, by index
  uint64_t next_to_start_ = 0;
  uint64_t next_to_report_ = 0;
  uint64_t seeds_done_ = 0;
  std::vector<Worker> workers_;
  int signal_pipe_[2] = {-1, -1};
  const pid_t parent_pid_ = ::getpid();
};

Status WorkerPool::start_worker(uint64_t chunk) {
  int fds[2];
  if (::pipe(fds) != 0) return Status::from_errno("pipe for a seed worker", "", errno);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);  // nothing buffered may be written twice, by the parent and the child
  // Held until the child has its default handlers back: a stop signal the child got in
  // between would otherwise run the parent's handler in the child.
  sigset_t stop_signals, before;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, &before);
  const pid_t pid = ::fork();
  if (pid != 0) ::sigprocmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::from_errno("fork a seed worker", "", error);
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    work(chunk, fds[1]);
  }
  ::close(fds[1]);
  chunks_.emplace(chunk, make_chunk(chunk));
  workers_.push_back(Worker{pid, fds[0], chunk, {}});
  return Status::ok();
}

void WorkerPool::work(uint64_t chunk, int write_fd) {
  // Die with the parent; it may have died between fork and here.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent_pid_) ::_exit(1);
  ::close(signal_pipe_[0]);
  ::close(signal_pipe_[1]);
  for (const Worker& other : workers_) ::close(other.read_fd);
  const Chunk seeds = make_chunk(chunk);
  for (uint64_t seed = seeds.first; seed <= seeds.last; ++seed) {
    const std::string record = calls_.run_seed(seed);
    if (!write_all(write_fd, std::to_string(seed) + " " + std::to_string(record.size()) + "\n" + record)) ::_exit(1);
  }
  // _exit: the parent's buffers and atexit handlers are the parent's, not this worker's.
  ::_exit(0);
}

bool WorkerPool::read_from(Worker& worker) {
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(worker.read_fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // end of pipe (an error reads as the worker having gone)
    worker.buffer.append(buffer, static_cast<size_t>(n));
    take_frames(worker);
    return true;
  }
}

void WorkerPool::take_frames(Worker& worker) {
  Chunk& chunk = chunks_.at(worker.chunk);
  for (;;) {
    const size_t newline = worker.buffer.find('\n');
    if (newline == std::string::npos) return;
    unsigned long long seed = 0, bytes = 0;
    if (std::sscanf(worker.buffer.c_str(), "%llu %llu", &seed, &bytes) != 2) {
      KV_ASSERT(false && "a seed worker wrote a frame header that is not '<seed> <bytes>'");
    }
    if (worker.buffer.size() < newline + 1 + bytes) return;  // the record is not all here yet
    KV_ASSERT(seed == chunk.first + chunk.records.size());
    chunk.records.push_back(worker.buffer.substr(newline + 1, bytes));
    worker.buffer.erase(0, newline + 1 + bytes);
    ++seeds_done_;
    if (calls_.on_progress) calls_.on_progress(seeds_done_, chunk.records.back());
  }
}

// The worker's pipe has ended: reap it and judge its chunk.
void WorkerPool::finish(Worker& worker) {
  ::close(worker.read_fd);
  int wait_status = 0;
  while (::waitpid(worker.pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  Chunk& chunk = chunks_.at(worker.chunk);
  chunk.finished = true;
  const uint64_t expected = chunk.last - chunk.first + 1;
  const bool clean = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  if (!clean || chunk.records.size() != expected) {
    WorkerFailure failure{chunk.first, chunk.last, chunk.records.size(), worker.pid, describe_exit(wait_status)};
    if (clean) failure.how = "exited after " + std::to_string(chunk.records.size()) + " of its seeds";
    chunk.failure = failure;
  }
  worker.pid = -1;
}

void WorkerPool::report_finished_chunks() {
  for (auto next = chunks_.find(next_to_report_); next != chunks_.end() && next->second.finished;
       next = chunks_.find(next_to_report_)) {
    const Chunk& chunk = next->second;
    for (size_t i = 0; i < chunk.records.size(); ++i) calls_.on_record(chunk.first + i, chunk.records[i]);
    if (chunk.failure) calls_.on_failure(*chunk.failure);
    chunks_.erase(next);
    ++next_to_report_;
  }
}

void WorkerPool::stop_on_signal(int signal_number) {
  for (const Worker& worker : workers_) ::kill(worker.pid, SIGKILL);
  for (const Worker& worker : workers_) {
    while (::waitpid(worker.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  std::cout.flush();
  std::cerr << "sim sweep: stopped by signal " << signal_number << ", " << workers_.size()
            << " worker(s) killed" << std::endl;
  std::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
  ::_exit(128 + signal_number);  // not reached unless the signal is blocked
}

Status WorkerPool::run() {
  if (threads_of_this_process() > 1) {
    return Status::invalid_argument("seed workers are forked, and this process has other threads");
  }
  if (::pipe(signal_pipe_) != 0) return Status::from_errno("pipe for signals", "", errno);
  signal_pipe_write = signal_pipe_[1];
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  Status status = Status::ok();
  while (status.is_ok() && (next_to_start_ < chunk_count_ || !workers_.empty())) {
    while (workers_.size() < jobs_ && next_to_start_ < chunk_count_) {
      status = start_worker(next_to_start_);
      if (!status.is_ok()) break;
      ++next_to_start_;
    }
    if (workers_.empty()) break;
    std::vector<pollfd> fds;
    fds.push_back(pollfd{signal_pipe_[0], POLLIN, 0});
    for (const Worker& worker : workers_) fds.push_back(pollfd{worker.read_fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      status = Status::from_errno("poll the seed workers", "", errno);
      break;
    }
    if (fds[0].revents != 0) {
      unsigned char signal_number = SIGTERM;
      [[maybe_unused]] ssize_t n = ::read(signal_pipe_[0], &signal_number, 1);
      stop_on_signal(signal_number);
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      if (!read_from(workers_[i])) finish(workers_[i]);
    }
    workers_.erase(std::remove_if(workers_.begin(), workers_.end(), [](const Worker& w) { return w.pid < 0; }),
                   workers_.end());
    report_finished_chunks();
  }
  if (!status.is_ok()) {  // the workers already running are not waited for: they are killed
    for (const Worker& worker : workers_) {
      ::kill(worker.pid, SIGKILL);
      ::waitpid(worker.pid, nullptr, 0);
      ::close(worker.read_fd);
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe_write = -1;
  ::close(signal_pipe_[0]);
  ::close(signal_pipe_[1]);
  return status;
}

}  // namespace

Status run_seeds_in_workers(uint64_t first, uint64_t last, uint64_t jobs, const SeedWorkerCalls& calls) {
  KV_ASSERT(first <= last && jobs >= 1 && jobs <= jobs_max);
  WorkerPool pool(first, last, jobs, calls);
  return pool.run();
}

}  // namespace keyval::sim
