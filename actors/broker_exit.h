// How a broker with connections of its own quits: in a later cycle of the network thread than
// the exit message that stops it.
//
// Why: CAF 0.17's multiplexer merges the socket registrations asked for within one cycle of its
// event loop (default_multiplexer::new_event). A connection opened and closed in the same cycle
// (its read registration added, then removed) merges into nothing, and the multiplexer then
// never tells the connection it left the loop, so the connection's reference to itself is never
// dropped and it is never freed (LeakSanitizer: a direct leak from default_multiplexer::new_scribe).
// A broker that quits closes every connection it has, in that cycle: one it dialed or accepted
// in the same cycle leaked (tcp_transport_test under load, about one run in two with three
// runs in parallel).
//
// So on an exit message the broker stops opening connections (it sets the flag its dialing
// checks) and quits on a message sent to itself a little later, when every connection and
// listener it opened has been registered. Its listeners stay open until then: closing one in the
// exit handler leaked the listener of a node stopped right after it started (a busy port). A kill (exit_reason::kill) never reaches an
// exit handler: CAF terminates the broker at once, as a crash would.
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <utility>

namespace keyval {

using broker_quit_atom = caf::atom_constant<caf::atom("brokquit")>;
constexpr broker_quit_atom broker_quit_atom_v{};

// Longer than one cycle of the network thread by far; short enough not to slow a node's stop.
constexpr std::chrono::milliseconds broker_quit_delay{20};

// Installs the exit handler; `stopping` (the broker's state) is set on the first exit message.
// The broker's behavior must handle broker_quit_atom by quitting with the reason it carries.
// The quit message is sent without a sender: one naming the broker would keep it alive
// through its own mailbox (see schedule_reconnect in actors/tcp_transport.cc).
template <class Broker>
void quit_in_a_later_cycle(Broker* self, bool& stopping) {
  self->set_exit_handler([self, &stopping](caf::exit_msg& message) {
    if (stopping) return;
    stopping = true;
    caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), broker_quit_delay, broker_quit_atom_v,
                           std::move(message.reason));
  });
}

}  // namespace keyval
