// The scheduler a real node runs on: CAF 0.17's work sharing, with each wake-up costing one
// futex call instead of a chain of them, and the persistence actors on threads of their own.
//
// Why. Every hop of a put or a get (docs/DATAPATH.md) hands a message to another thread, and
// CAF 0.17 wakes a sleeping thread by signalling its condition variable *while holding the
// mutex the sleeper must take again*: the sleeper wakes, finds the mutex held, sleeps on it,
// and is woken a second time by the unlock ("hurry up and wait"). That holds for the shared
// queue of the work-sharing scheduler (policy::work_sharing::enqueue) and for the thread of
// every detached actor (detail::private_thread::resume, compiled into libcaf_core). Under one
// client's puts a follower made 23 futex calls and 20 voluntary context switches per put
// (`perf stat -e syscalls:sys_enter_futex`, /proc/PID/task/*/status), most of them this.
//
// What. NodeSharing is work sharing with the signal sent after the unlock, and only when a
// worker sleeps. spawn_on_own_thread() runs an actor on a thread of its own (what `detached`
// is for: the WAL writer's fdatasync, LMDB's commits block) woken the same way: the actor is
// spawned lazily, and the scheduler routes it, whenever it becomes ready, to its thread
// instead of the shared queue. Under any other scheduler (a test's default, the simulator's
// deterministic one) spawn_on_own_thread() spawns `detached` as before. And
// spawn_on_network_thread() runs an actor on CAF's multiplexer thread, beside the brokers
// (`keyval node --threads 0`, the default): its messages to and from them cross no thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/spawn_options.hpp>

namespace keyval {

// Where a placed actor runs whenever it becomes ready: a thread of its own, or the network
// thread.
class Lane {
 public:
  virtual ~Lane();
  virtual void push(caf::resumable* job) = 0;
  virtual void request_stop() {}
  virtual void join() {}
};

// The actors placed on lanes of their own (a thread, or the network thread), and those lanes.
// route() is called for every job the scheduler is given, from any thread, so it takes no
// lock: a slot's lane is stored before its job, and a job is routed only after its spawn
// returned (its first message comes from a thread that has seen the handle).
class OwnThreads {
 public:
  static constexpr size_t capacity = 32;

  OwnThreads();
  OwnThreads(const OwnThreads&) = delete;
  OwnThreads& operator=(const OwnThreads&) = delete;
  ~OwnThreads();

  // True when `job` has a thread of its own (it was given the job).
  bool route(caf::resumable* job);

  // A free slot for the next add(), or -1 when all `capacity` are taken (the caller then
  // spawns `detached`).
  int reserve();

  // Starts the thread of `slot` for `job`.
  void add_thread(int slot, caf::actor_system& system, caf::resumable* job, std::string name);

  // Runs `job` on the network thread (CAF's multiplexer), in `slot`.
  void add_network(int slot, caf::actor_system& system, caf::resumable* job);

  // The job is done (its thread calls this before it lets the job go).
  void remove(caf::resumable* job);

  // Asks every thread to stop once idle, and joins them (the scheduler's stop()).
  void stop_all();

 private:
  std::mutex lock_;  // reserve(), add() and stop_all() against each other
  std::atomic<caf::resumable*> jobs_[capacity] = {};
  void add(int slot, std::unique_ptr<Lane> lane, caf::resumable* job);

  std::atomic<Lane*> threads_[capacity] = {};
  std::unique_ptr<Lane> owned_[capacity];  // guarded by lock_
  bool reserved_[capacity] = {};                // guarded by lock_
  std::atomic<size_t> used_{0};                 // slots ever used: route() scans these
};

// CAF's work sharing (policy/work_sharing.hpp) but for the wake-ups, and with the jobs of
// OwnThreads routed to their threads.
class NodeSharing : public caf::policy::unprofiled {
 public:
  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::mutex lock;
    std::condition_variable cv;
    std::deque<caf::resumable*> queue;  // guarded by lock
    size_t sleeping = 0;                // workers waiting on cv; guarded by lock
    OwnThreads own_threads;
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    bool named = false;
  };

  template <class Coordinator>
  void enqueue(Coordinator* self, caf::resumable* job) {
    auto& data = d(self);
    if (data.own_threads.route(job)) return;
    bool wake = false;
    {
      std::lock_guard<std::mutex> guard(data.lock);
      data.queue.push_back(job);
      wake = data.sleeping > 0;
    }
    // After the unlock: the worker woken takes the lock without waiting for it.
    if (wake) data.cv.notify_one();
  }

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    enqueue(self, job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    if (!d(self).named) {
      name_this_thread("kv.worker");  // CAF names its workers "caf.multiplexer"
      d(self).named = true;
    }
    auto& data = d(self->parent());
    std::unique_lock<std::mutex> guard(data.lock);
    while (data.queue.empty()) {
      ++data.sleeping;
      data.cv.wait(guard);
      --data.sleeping;
    }
    caf::resumable* job = data.queue.front();
    data.queue.pop_front();
    return job;
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker*, UnaryFunction) {}

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator* self, UnaryFunction f) {
    auto& data = d(self);
    std::deque<caf::resumable*> jobs;
    {
      std::lock_guard<std::mutex> guard(data.lock);
      jobs.swap(data.queue);
    }
    for (caf::resumable* job : jobs) f(job);
  }

  static void name_this_thread(const char* name);
};

class NodeCoordinator : public caf::scheduler::coordinator<NodeSharing> {
 public:
  using coordinator::coordinator;

 protected:
  void stop() override;
};

// Installs NodeCoordinator on a config, as its scheduler module (CAF then makes none of its
// own); the number of workers comes from `scheduler.max-threads` (use_node_scheduler, node.h).
void use_node_coordinator(caf::actor_system_config& config);

// The system's OwnThreads, or null when it does not run NodeCoordinator.
OwnThreads* own_threads_of(caf::actor_system& system);

// Spawns `fun(xs...)` on a thread of its own, named `name` (at most 15 characters, as
// `top -H` shows it): under NodeCoordinator as described above, otherwise `detached`.
template <class F, class... Ts>
auto spawn_on_own_thread(caf::actor_system& system, const char* name, F fun, Ts&&... xs) {
  OwnThreads* threads = own_threads_of(system);
  const int slot = threads != nullptr ? threads->reserve() : -1;
  if (slot < 0) return system.spawn<caf::detached>(fun, std::forward<Ts>(xs)...);
  // Lazily: the actor is first scheduled by its first message, which cannot come before
  // its handle is returned, so it never starts on the shared queue.
  auto handle = system.spawn<caf::lazy_init>(fun, std::forward<Ts>(xs)...);
  threads->add_thread(slot, system, dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(handle)), name);
  return handle;
}

// The system's OwnThreads when its actors may run on the network thread: it runs
// NodeCoordinator, its middleman is loaded, and `wanted` (`keyval node --threads 0`).
OwnThreads* network_lanes_of(caf::actor_system& system, bool wanted);

// Spawns the actor class `Actor` (with its arguments) on the network thread when
// network_lanes_of() allows it, else on the scheduler's workers. The actors that carry the
// data path between sockets and persistence (the raft node, the client gateway) run there:
// each message a socket brings then reaches them without a hand-off to another thread.
template <class Actor, class... Ts>
auto spawn_on_network_thread(caf::actor_system& system, bool wanted, Ts&&... xs) {
  OwnThreads* lanes = network_lanes_of(system, wanted);
  const int slot = lanes != nullptr ? lanes->reserve() : -1;
  if (slot < 0) return system.spawn<Actor>(std::forward<Ts>(xs)...);
  auto handle = system.spawn<Actor, caf::lazy_init>(std::forward<Ts>(xs)...);
  lanes->add_network(slot, system, dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(handle)));
  return handle;
}

// The same for a function-based actor.
template <class F, class... Ts>
auto spawn_fun_on_network_thread(caf::actor_system& system, bool wanted, F fun, Ts&&... xs) {
  OwnThreads* lanes = network_lanes_of(system, wanted);
  const int slot = lanes != nullptr ? lanes->reserve() : -1;
  if (slot < 0) return system.spawn(fun, std::forward<Ts>(xs)...);
  auto handle = system.spawn<caf::lazy_init>(fun, std::forward<Ts>(xs)...);
  lanes->add_network(slot, system, dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(handle)));
  return handle;
}

}  // namespace keyval
