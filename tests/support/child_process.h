// A child process for crash tests: fork() runs a function in a child that reports lines on
// a pipe; the parent reads them, sends SIGKILL or waits, and always reaps the child (the
// destructor kills and waits for one still running, so a failing test leaves no orphan).
//
// fork() copies only the calling thread: the parent must have no other thread (no
// caf::actor_system) when it forks, which the constructor checks. The child resets the
// signal handlers Boost.Test installed (a crash in the child must kill the child, never
// resume the test runner in it), dies with its parent (PR_SET_PDEATHSIG), and stops
// itself after lifetime_seconds_max in any case.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace keyval::testing {

// One write() per line, shorter than PIPE_BUF, so lines of concurrent threads never interleave.
void report_line(int fd, const std::string& line);

// Threads of this process (from /proc/self/task).
size_t thread_count();

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs in the child with the pipe's write end; returns the exit code.
  using Body = std::function<int(int report_fd)>;
  static constexpr unsigned lifetime_seconds_max = 30;

  // Forks; the child's stderr goes to `stderr_path`.
  ChildProcess(const Body& body, const std::string& stderr_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  enum class ReadEnd { stopped, deadline, end_of_pipe };
  // Reads lines until `stop` returns true for one, the deadline passes, or the pipe ends.
  ReadEnd read_until(Clock::time_point deadline, const std::function<bool(const std::string&)>& stop = nullptr);
  // SIGKILL, waitpid, then reads what the child wrote before it died.
  void kill();
  // Reads to the end of the pipe and reaps the child. False when the deadline passed first
  // (the child is still running).
  bool wait(Clock::time_point deadline);

  const std::vector<std::string>& lines() const { return lines_; }
  bool running() const { return pid_ > 0; }
  int wait_status() const { return wait_status_; }
  Clock::time_point started() const { return started_; }

 private:
  // Reads what is available (waiting at most timeout_ms); false at the end of the pipe.
  bool read_available(int timeout_ms, const std::function<bool(const std::string&)>& stop, bool* stopped);
  void reap();

  pid_t pid_ = -1;
  int read_fd_ = -1;
  int wait_status_ = 0;
  bool pipe_ended_ = false;
  std::string partial_;
  std::vector<std::string> lines_;
  Clock::time_point started_;
};

}  // namespace keyval::testing
