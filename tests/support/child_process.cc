// Forked child processes for the crash tests (child_process.h).
#include "tests/support/child_process.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <stdexcept>

namespace keyval::testing {
namespace {

constexpr int exit_body_threw = 120;
constexpr int exit_orphaned = 121;
constexpr int poll_slice_ms = 20;
constexpr size_t read_chunk_bytes = 64 << 10;
constexpr auto drain_time_max = std::chrono::seconds(10);

// Runs first in the child: nothing of the test runner's signal handling survives, and
// the child cannot outlive its parent or run away.
void prepare_child(pid_t parent, const std::string& stderr_path) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(exit_orphaned);
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    if (signal_number != SIGKILL && signal_number != SIGSTOP) ::signal(signal_number, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::alarm(ChildProcess::lifetime_seconds_max);
  int log = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log >= 0) {
    ::dup2(log, STDERR_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::close(log);
  }
}

}  // namespace

void report_line(int fd, const std::string& line) {
  std::string text = line.substr(0, PIPE_BUF - 2);
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  text += '\n';
  ssize_t written;
  do {
    written = ::write(fd, text.data(), text.size());
  } while (written < 0 && errno == EINTR);
}

size_t thread_count() {
  size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++count;
  }
  return count;
}

ChildProcess::ChildProcess(const Body& body, const std::string& stderr_path) {
  if (thread_count() != 1) {
    throw std::logic_error("fork() from a process with " + std::to_string(thread_count()) + " threads");
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t parent = ::getpid();
  started_ = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    ::close(fds[0]);
    prepare_child(parent, stderr_path);
    int code = exit_body_threw;
    try {
      code = body(fds[1]);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child: exception: %s\n", error.what());
    } catch (...) {
      std::fprintf(stderr, "child: unknown exception\n");
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  pid_ = pid;
  read_fd_ = fds[0];
  ::fcntl(read_fd_, F_SETFL, ::fcntl(read_fd_, F_GETFL) | O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  kill();
  if (read_fd_ >= 0) ::close(read_fd_);
}

bool ChildProcess::read_available(int timeout_ms, const std::function<bool(const std::string&)>& stop, bool* stopped) {
  if (pipe_ended_) return false;
  pollfd descriptor{read_fd_, POLLIN, 0};
  int ready = ::poll(&descriptor, 1, timeout_ms);
  if (ready <= 0) return true;
  char buffer[read_chunk_bytes];
  while (true) {
    ssize_t got = ::read(read_fd_, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return true;  // EAGAIN: all read for now
    if (got == 0) {
      pipe_ended_ = true;
      return false;
    }
    partial_.append(buffer, static_cast<size_t>(got));
    size_t begin = 0;
    for (size_t end; (end = partial_.find('\n', begin)) != std::string::npos; begin = end + 1) {
      lines_.push_back(partial_.substr(begin, end - begin));
      if (stop && !*stopped && stop(lines_.back())) *stopped = true;
    }
    partial_.erase(0, begin);
  }
}

ChildProcess::ReadEnd ChildProcess::read_until(Clock::time_point deadline,
                                               const std::function<bool(const std::string&)>& stop) {
  bool stopped = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    int slice = static_cast<int>(std::max<long long>(0, std::min<long long>(left, poll_slice_ms)));
    if (!read_available(slice, stop, &stopped)) return stopped ? ReadEnd::stopped : ReadEnd::end_of_pipe;
    if (stopped) return ReadEnd::stopped;
    if (Clock::now() >= deadline) return ReadEnd::deadline;
  }
}

void ChildProcess::reap() {
  if (pid_ <= 0) return;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
  pid_ = -1;
}

void ChildProcess::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap();
  }
  // The child is gone, and with it every write end: the pipe ends once drained.
  read_until(Clock::now() + drain_time_max);
}

bool ChildProcess::wait(Clock::time_point deadline) {
  if (read_until(deadline) != ReadEnd::end_of_pipe) return false;
  reap();
  return true;
}

}  // namespace keyval::testing
