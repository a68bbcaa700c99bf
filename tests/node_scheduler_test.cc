// Goal: the node's scheduler (actors/node_scheduler.h) runs each placed actor where it was
// placed, on a thread of its own or on the network thread, and loses no wake-up.
// Method: real actor systems; actors report the thread they run on (its name, its id), and
// long request chains between a scheduled actor and a placed one must complete.
#define BOOST_TEST_MODULE node_scheduler_test
#include <boost/test/unit_test.hpp>

#include <pthread.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/node.h"
#include "actors/node_scheduler.h"

using namespace keyval;

namespace {

using where_atom = caf::atom_constant<caf::atom("where")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using relay_atom = caf::atom_constant<caf::atom("relay")>;

uint64_t this_thread_id() { return std::hash<std::thread::id>{}(std::this_thread::get_id()); }

std::string this_thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// (Each actor takes an argument: CAF 0.17.6 dereferences a null argument tuple when a
// function actor is spawned with none, which the sanitizer build reports.)

// Answers where it runs; counts pings back.
caf::behavior reporter(caf::event_based_actor*, int) {
  return {
      [](where_atom) { return caf::make_message(this_thread_name(), this_thread_id()); },
      [](ping_atom, int n) { return n; },
  };
}

// A scheduled actor that sends `count` requests to `target`, one at a time, and answers the
// number answered.
caf::behavior relay(caf::event_based_actor* self, int) {
  return {
      [self](relay_atom, caf::actor target, int count) -> caf::result<int> {
        auto promise = self->make_response_promise<int>();
        auto done = std::make_shared<int>(0);
        auto next = std::make_shared<std::function<void()>>();
        *next = [self, target, count, promise, done, next]() mutable {
          if (*done == count) {
            promise.deliver(*done);
            *next = nullptr;  // breaks the cycle
            return;
          }
          self->request(target, std::chrono::seconds(30), ping_atom::value, *done)
              .then([done, next](int n) {
                if (n == *done) ++*done;
                (*next)();
              });
        };
        (*next)();
        return promise;
      },
  };
}

struct Where {
  std::string name;
  uint64_t id = 0;
};

Where ask_where(caf::actor_system& system, const caf::actor& actor) {
  caf::scoped_actor self{system};
  Where where;
  self->request(actor, std::chrono::seconds(10), where_atom::value)
      .receive([&](std::string& name, uint64_t id) { where = {name, id}; },
               [&](caf::error& error) { BOOST_FAIL("no answer: " << system.render(error)); });
  return where;
}

int run_relay(caf::actor_system& system, const caf::actor& target, int count) {
  auto relayer = system.spawn(relay, 0);
  caf::scoped_actor self{system};
  int answered = -1;
  self->request(relayer, std::chrono::seconds(60), relay_atom::value, target, count)
      .receive([&](int n) { answered = n; },
               [&](caf::error& error) { BOOST_FAIL("relay failed: " << system.render(error)); });
  self->send_exit(relayer, caf::exit_reason::user_shutdown);
  return answered;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_actor_on_its_own_thread_runs_there_and_loses_no_wake_up) {
  caf::actor_system_config config;
  use_node_scheduler(config, 1);
  caf::actor_system system{config};
  BOOST_REQUIRE(own_threads_of(system) != nullptr);
  caf::actor placed = spawn_on_own_thread(system, "kv.test", reporter, 0);
  const Where first = ask_where(system, placed);
  BOOST_TEST(first.name == "kv.test");
  BOOST_TEST(first.id != this_thread_id());
  // Twenty thousand requests, each answered before the next is sent: both sides sleep
  // between messages, so a lost wake-up would stall the chain (and time out).
  BOOST_TEST(run_relay(system, placed, 20000) == 20000);
  const Where later = ask_where(system, placed);
  BOOST_TEST(later.id == first.id);
  BOOST_TEST(later.name == "kv.test");
  caf::anon_send_exit(placed, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(threads_of_actors_that_quit_are_reused_beyond_the_capacity) {
  caf::actor_system_config config;
  use_node_scheduler(config, 1);
  caf::actor_system system{config};
  for (size_t round = 0; round < OwnThreads::capacity * 3; ++round) {
    caf::actor placed = spawn_on_own_thread(system, "kv.round", reporter, 0);
    BOOST_TEST_CONTEXT("round " << round) {
      BOOST_TEST(ask_where(system, placed).name == "kv.round");
    }
    caf::scoped_actor self{system};
    self->monitor(placed);
    self->send_exit(placed, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {});
  }
}

BOOST_AUTO_TEST_CASE(the_scheduler_workers_are_named_and_the_rest_is_as_before) {
  caf::actor_system_config config;
  use_node_scheduler(config, 1);
  caf::actor_system system{config};
  caf::actor scheduled = system.spawn(reporter, 0);
  BOOST_TEST(ask_where(system, scheduled).name == "kv.worker");
  BOOST_TEST(run_relay(system, scheduled, 2000) == 2000);
  caf::anon_send_exit(scheduled, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(without_the_node_scheduler_an_actor_of_its_own_runs_detached) {
  caf::actor_system_config config;  // CAF's default scheduler (a test's, the simulator's)
  caf::actor_system system{config};
  BOOST_TEST(own_threads_of(system) == nullptr);
  caf::actor placed = spawn_on_own_thread(system, "kv.test", reporter, 0);
  const Where where = ask_where(system, placed);
  BOOST_TEST(where.name == "caf.actor");  // CAF's name for a detached actor's thread
  BOOST_TEST(where.id != this_thread_id());
  caf::anon_send_exit(placed, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(an_actor_on_the_network_thread_runs_on_the_multiplexers_thread) {
  caf::actor_system_config config;
  config.load<caf::io::middleman>();
  use_node_scheduler(config, 1);
  caf::actor_system system{config};
  auto& multiplexer = system.middleman().backend();
  caf::actor on_network = spawn_fun_on_network_thread(system, true, reporter, 0);
  const Where where = ask_where(system, on_network);
  BOOST_TEST(where.id == std::hash<std::thread::id>{}(multiplexer.thread_id()));
  BOOST_TEST(run_relay(system, on_network, 20000) == 20000);
  BOOST_TEST(ask_where(system, on_network).id == where.id);
  // Not wanted (`keyval node --threads 1` and more): a scheduler worker runs it.
  caf::actor on_worker = spawn_fun_on_network_thread(system, false, reporter, 0);
  const Where worker = ask_where(system, on_worker);
  BOOST_TEST(worker.name == "kv.worker");
  BOOST_TEST(worker.id != where.id);
  caf::anon_send_exit(on_network, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(on_worker, caf::exit_reason::user_shutdown);
}
