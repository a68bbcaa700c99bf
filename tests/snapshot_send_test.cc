// Goal: a leader's snapshot transfer (actors/snapshot_send.h) sends within its window, goes
// back to the byte a follower expects once per loss, ignores answers to chunks sent before a
// rewind (duplicates included), and starts over only at the next tick after a failed write.
// Method: the window driven by hand-made answers, as the raft node drives it.
#define BOOST_TEST_MODULE snapshot_send_test
#include <boost/test/unit_test.hpp>

#include "actors/snapshot_send.h"

using namespace keyval;
using Answer = SnapshotSendWindow::Answer;

namespace {

constexpr uint64_t chunk = 256;
constexpr uint64_t window = 2 * chunk;  // two chunks unacknowledged
constexpr uint64_t total = 4 * chunk;

// The follower's answer to the chunk at `answered`, sent in `round`: it expects `expected` next.
raft::Message answer(uint64_t round, uint64_t answered, uint64_t expected, bool error = false, bool done = false) {
  raft::Message message;
  message.type = raft::MessageType::snapshot_chunk_response;
  message.chunk_round = round;
  message.reject_index = answered;
  message.chunk_offset = expected;
  message.chunk_error = error;
  message.chunk_done = done;
  return message;
}

// Sends every chunk the window allows; returns how many.
int send_all(SnapshotSendWindow& transfer) {
  int sent = 0;
  while (transfer.may_send(window, total)) {
    transfer.sent(chunk);
    ++sent;
  }
  return sent;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_send)

BOOST_AUTO_TEST_CASE(chunks_go_within_the_window_and_answers_open_it) {
  SnapshotSendWindow transfer;
  BOOST_TEST(send_all(transfer) == 2);
  BOOST_TEST((transfer.on_answer(answer(1, 0, chunk), total) == Answer::progress));
  BOOST_TEST(transfer.acked_offset() == chunk);
  BOOST_TEST(send_all(transfer) == 1);
  transfer.on_answer(answer(1, chunk, 2 * chunk), total);
  transfer.on_answer(answer(1, 2 * chunk, 3 * chunk), total);
  BOOST_TEST(send_all(transfer) == 1);  // the last chunk; nothing past the file
  BOOST_TEST((transfer.on_answer(answer(1, 3 * chunk, total, false, true), total) == Answer::complete));
}

// Chunk 0 is lost: the answer to chunk 256 asks for byte 0, and the transfer goes back there
// once. The answer's duplicate, and the answer to a chunk sent before the rewind, must not
// send it back again: each did, and the chunks in flight multiplied (simulator seed 9288).
BOOST_AUTO_TEST_CASE(answers_to_chunks_sent_before_a_rewind_rewind_nothing) {
  SnapshotSendWindow transfer;
  BOOST_TEST(send_all(transfer) == 2);  // chunks 0 and 256, round 1; chunk 0 is lost
  BOOST_TEST((transfer.on_answer(answer(1, chunk, 0), total) == Answer::progress));
  BOOST_TEST(transfer.next_offset() == 0u);
  BOOST_TEST(transfer.round() == 2u);
  BOOST_TEST(send_all(transfer) == 2);  // chunks 0 and 256 again, round 2
  BOOST_TEST(transfer.next_offset() == 2 * chunk);
  // The network duplicated the round-1 answer.
  BOOST_TEST((transfer.on_answer(answer(1, chunk, 0), total) == Answer::ignored));
  BOOST_TEST(transfer.next_offset() == 2 * chunk, "a stale answer rewound the transfer again");
  BOOST_TEST(transfer.round() == 2u);
  BOOST_TEST(send_all(transfer) == 0, "a stale answer opened the window again");
  // The round-2 answers move it on.
  BOOST_TEST((transfer.on_answer(answer(2, 0, chunk), total) == Answer::progress));
  BOOST_TEST(transfer.acked_offset() == chunk);
}

// A peer that sends no rounds answers with round 0: its answers count as the current round's.
BOOST_AUTO_TEST_CASE(an_answer_without_a_round_counts) {
  SnapshotSendWindow transfer;
  send_all(transfer);
  transfer.on_answer(answer(1, chunk, 0), total);  // round 2 now
  BOOST_TEST((transfer.on_answer(answer(0, 0, chunk), total) == Answer::progress));
  BOOST_TEST(transfer.acked_offset() == chunk);
}

// A follower that failed a write dropped what it had: the transfer starts over from the byte
// it names, but only at the next tick, and it is no progress.
BOOST_AUTO_TEST_CASE(a_failed_write_starts_over_at_the_next_tick) {
  SnapshotSendWindow transfer;
  send_all(transfer);
  transfer.on_answer(answer(1, 0, chunk), total);
  BOOST_TEST((transfer.on_answer(answer(1, chunk, 0, /*error=*/true), total) == Answer::failed));
  BOOST_TEST(transfer.next_offset() == 0u);
  BOOST_TEST(transfer.acked_offset() == 0u);
  BOOST_TEST(send_all(transfer) == 0, "a failed write restarted the transfer before the tick");
  BOOST_TEST(transfer.tick());
  BOOST_TEST(send_all(transfer) == 2);
  BOOST_TEST(!transfer.tick());
}

BOOST_AUTO_TEST_SUITE_END()
