#include "actors/node_scheduler.h"

#include <pthread.h>

#include <limits>
#include <vector>

#include <caf/execution_unit.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/multiplexer.hpp>

namespace keyval {

Lane::~Lane() = default;

// One actor's thread: runs the actor whenever the scheduler hands it over, sleeps otherwise.
class OwnThread : public Lane, public caf::execution_unit {
 public:
  OwnThread(caf::actor_system& system, OwnThreads* owner, std::string name)
      : caf::execution_unit(&system), owner_(owner), name_(std::move(name)) {}

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  // The actor is ready (the scheduler's routing). Called once per readiness: the actor is
  // scheduled again only after a run of it ends waiting for messages.
  void push(caf::resumable* job) override {
    bool wake = false;
    {
      std::lock_guard<std::mutex> guard(lock_);
      pending_ = job;
      wake = waiting_;
    }
    if (wake) cv_.notify_one();
  }

  void request_stop() override {
    {
      std::lock_guard<std::mutex> guard(lock_);
      stop_ = true;
    }
    cv_.notify_one();
  }

  void join() override {
    if (thread_.joinable()) thread_.join();
  }

  // What the actor sends to a ready actor goes through the scheduler (routed there).
  void exec_later(caf::resumable* job) override { system().scheduler().enqueue(job); }

 private:
  void run() {
    NodeSharing::name_this_thread(name_.c_str());
    system().thread_started();
    for (bool finished = false; !finished;) {
      caf::resumable* job = nullptr;
      {
        std::unique_lock<std::mutex> guard(lock_);
        while (pending_ == nullptr && !stop_) {
          waiting_ = true;
          cv_.wait(guard);
          waiting_ = false;
        }
        if (pending_ == nullptr) break;  // stopped while idle
        job = pending_;
        pending_ = nullptr;
      }
      // As CAF's worker::run, with no bound on the messages of one run.
      for (bool again = true; again;) {
        again = false;
        switch (job->resume(this, std::numeric_limits<size_t>::max())) {
          case caf::resumable::resume_later:
            again = true;
            break;
          case caf::resumable::done:
            owner_->remove(job);
            intrusive_ptr_release(job);
            finished = true;
            break;
          case caf::resumable::awaiting_message:
            intrusive_ptr_release(job);  // the reference the scheduling took
            break;
          case caf::resumable::shutdown_execution_unit:
            finished = true;
            break;
        }
      }
    }
    system().thread_terminates();
  }

  OwnThreads* owner_;
  std::string name_;
  std::thread thread_;
  std::mutex lock_;
  std::condition_variable cv_;
  caf::resumable* pending_ = nullptr;  // guarded by lock_
  bool waiting_ = false;               // guarded by lock_
  bool stop_ = false;                  // guarded by lock_
};

// An actor run by the network thread (CAF's multiplexer) whenever it becomes ready: posted
// to the multiplexer's event loop, from its own thread without a write to its pipe.
class NetworkLane : public Lane {
 public:
  NetworkLane(caf::io::network::multiplexer& multiplexer, OwnThreads* owner)
      : multiplexer_(multiplexer), owner_(owner) {}

  void push(caf::resumable* job) override {
    multiplexer_.post([this, job] { run(job); });
  }

 private:
  // A bounded run, so sockets are served between two of them.
  static constexpr size_t messages_per_run = 64;

  void run(caf::resumable* job) {
    switch (job->resume(&multiplexer_, messages_per_run)) {
      case caf::resumable::resume_later:
        push(job);  // after the events already waiting
        break;
      case caf::resumable::done:
        owner_->remove(job);
        intrusive_ptr_release(job);
        break;
      case caf::resumable::awaiting_message:
        intrusive_ptr_release(job);  // the reference the scheduling took
        break;
      case caf::resumable::shutdown_execution_unit:
        break;
    }
  }

  caf::io::network::multiplexer& multiplexer_;
  OwnThreads* owner_;
};

OwnThreads::OwnThreads() = default;
OwnThreads::~OwnThreads() { stop_all(); }

bool OwnThreads::route(caf::resumable* job) {
  const size_t used = used_.load(std::memory_order_acquire);
  for (size_t i = 0; i < used; ++i) {
    if (jobs_[i].load(std::memory_order_acquire) == job) {
      threads_[i].load(std::memory_order_acquire)->push(job);
      return true;
    }
  }
  return false;
}

int OwnThreads::reserve() {
  std::lock_guard<std::mutex> guard(lock_);
  for (size_t i = 0; i < capacity; ++i) {
    if (reserved_[i]) continue;
    // A slot whose actor is done: its thread has left remove() and is ending.
    if (owned_[i] != nullptr) {
      owned_[i]->join();
      threads_[i].store(nullptr, std::memory_order_release);
      owned_[i].reset();
    }
    reserved_[i] = true;
    return static_cast<int>(i);
  }
  return -1;
}

void OwnThreads::add_thread(int slot, caf::actor_system& system, caf::resumable* job, std::string name) {
  auto thread = std::make_unique<OwnThread>(system, this, std::move(name));
  thread->start();
  add(slot, std::move(thread), job);
}

void OwnThreads::add_network(int slot, caf::actor_system& system, caf::resumable* job) {
  add(slot, std::make_unique<NetworkLane>(system.middleman().backend(), this), job);
}

void OwnThreads::add(int slot, std::unique_ptr<Lane> lane, caf::resumable* job) {
  std::lock_guard<std::mutex> guard(lock_);
  const auto i = static_cast<size_t>(slot);
  owned_[i] = std::move(lane);
  // The thread before the job: route() reads the job, then the thread.
  threads_[i].store(owned_[i].get(), std::memory_order_release);
  jobs_[i].store(job, std::memory_order_release);
  if (used_.load(std::memory_order_relaxed) < i + 1) used_.store(i + 1, std::memory_order_release);
}

void OwnThreads::remove(caf::resumable* job) {
  std::lock_guard<std::mutex> guard(lock_);
  for (size_t i = 0; i < capacity; ++i) {
    if (jobs_[i].load(std::memory_order_relaxed) != job) continue;
    jobs_[i].store(nullptr, std::memory_order_release);
    reserved_[i] = false;
    return;
  }
}

void OwnThreads::stop_all() {
  std::vector<Lane*> threads;
  {
    std::lock_guard<std::mutex> guard(lock_);
    for (auto& thread : owned_) {
      if (thread == nullptr) continue;
      thread->request_stop();
      threads.push_back(thread.get());
    }
  }
  // Outside the lock: a thread ending its actor takes it in remove().
  for (Lane* thread : threads) thread->join();
}

void NodeSharing::name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

void NodeCoordinator::stop() {
  // Every actor is done by now (the system awaits them first); their threads are ending.
  data().own_threads.stop_all();
  coordinator::stop();
}

void use_node_coordinator(caf::actor_system_config& config) {
  config.module_factories.push_back(
      [](caf::actor_system& system) -> caf::actor_system::module* { return new NodeCoordinator(system); });
}

OwnThreads* own_threads_of(caf::actor_system& system) {
  auto* coordinator = dynamic_cast<NodeCoordinator*>(&system.scheduler());
  return coordinator != nullptr ? &coordinator->data().own_threads : nullptr;
}

OwnThreads* network_lanes_of(caf::actor_system& system, bool wanted) {
  if (!wanted || !system.has_middleman()) return nullptr;
  return own_threads_of(system);
}

}  // namespace keyval
