// KvClient::snapshot_save (see kv_client.h): a backup of a live cluster into a file.
//
// The file is written where it cannot be mistaken for a backup until it is one:
//   PATH.part   chunks written at their offsets, fdatasynced, then read back and verified end
//               to end (every chunk CRC, the whole-file checksum, the index and term the
//               leader named, the size it announced);
//   PATH        renamed from PATH.part, then the directory fsynced.
// A crash or a failure before the rename leaves PATH as it was (an older backup stays valid);
// a failure removes PATH.part.
#include <algorithm>

#include "client/kv_client.h"
#include "client/kv_socket.h"
#include "storage/env.h"

namespace keyval {
namespace {


std::string said(const ClientResponse& response) {
  return std::string("said ") + client_status_name(response.status) +
         (response.message.empty() ? "" : ": " + response.message);
}

// Writes the chunks a node sends into the open .part file, checking each continues the file.
class ChunkSink {
 public:
  ChunkSink(File& file, const ClientResponse& begun) : file_(file), begun_(begun) {}

  Status add(const ClientResponse& chunk, uint64_t offset) {
    const std::string where = "chunk at offset " + std::to_string(offset);
    if (chunk.snapshot_index != begun_.snapshot_index || chunk.snapshot_term != begun_.snapshot_term) {
      return Status::corruption(where + ": the node sent snapshot " + std::to_string(chunk.snapshot_index) +
                                " (term " + std::to_string(chunk.snapshot_term) + "), not the one it began");
    }
    if (chunk.total_bytes != begun_.total_bytes) {
      return Status::corruption(where + ": the node now says the file has " + std::to_string(chunk.total_bytes) +
                                " bytes, not " + std::to_string(begun_.total_bytes));
    }
    if (chunk.chunk.empty() || chunk.chunk.size() > begun_.total_bytes - offset) {
      return Status::corruption(where + ": " + std::to_string(chunk.chunk.size()) + " bytes, with " +
                                std::to_string(begun_.total_bytes - offset) + " left of the file");
    }
    return file_.write_at(offset, reinterpret_cast<const uint8_t*>(chunk.chunk.data()), chunk.chunk.size());
  }

 private:
  File& file_;
  const ClientResponse& begun_;
};

}  // namespace

Result<ClientResponse> KvClient::snapshot_chunk(size_t slot, const ClientResponse& begun, uint64_t offset) {
  ClientRequest request;
  request.op = ClientOp::snapshot_chunk;
  request.snapshot_index = begun.snapshot_index;
  request.snapshot_term = begun.snapshot_term;
  request.chunk_offset = offset;
  std::string last_failure;
  // A chunk is read again on a lost answer or a busy node (reading is idempotent); the file
  // comes from the node that took it, the only one sure to have it.
  for (uint32_t attempt = 1; attempt <= options_.snapshot_chunk_attempts_max; ++attempt) {
    request.request_id = ++request_id_;
    bool sent = false;
    auto answer = exchange(slot, request, steady_now_ms() + options_.slow_request_timeout_ms, &sent);
    if (answer.is_ok() && answer->status == ClientStatus::ok) return answer;
    last_failure = answer.is_ok() ? said(*answer) : answer.status().message();
    const bool retry = !answer.is_ok() || answer->status == ClientStatus::timeout || answer->status == ClientStatus::busy;
    if (!retry) break;
  }
  return Status::io_error("chunk at offset " + std::to_string(offset) + " from " + nodes_.describe(slot) + ": " +
                          last_failure);
}

Status KvClient::snapshot_download(const std::string& part_path, const SnapshotSaveProgress& progress,
                                   ClientResponse* begun, bool* chunk_failed) {
  Env& env = posix_env();
  ClientRequest begin;
  begin.op = ClientOp::snapshot_begin;
  auto answer = run(begin, options_.slow_request_timeout_ms,
                    std::max(options_.operation_timeout_ms, options_.slow_request_timeout_ms));
  if (!answer.is_ok()) return answer.status().with_context("the leader took no snapshot");
  *begun = std::move(*answer);
  KV_ASSERT(leader_slot_.has_value());  // run() returned an ok answer: it came from there
  const size_t node = *leader_slot_;

  (void)env.remove(part_path);  // left by an earlier attempt
  auto opened = env.open_file(part_path, OpenMode::create_new);
  if (!opened.is_ok()) return opened.status().with_context("cannot create " + part_path);
  std::unique_ptr<File> file = std::move(*opened);
  ChunkSink sink(*file, *begun);
  uint64_t offset = 0;
  if (progress) progress(0, begun->total_bytes);
  while (offset < begun->total_bytes) {
    auto chunk = snapshot_chunk(node, *begun, offset);
    if (!chunk.is_ok()) {
      *chunk_failed = true;
      return chunk.status().with_context("reading snapshot " + std::to_string(begun->snapshot_index));
    }
    Status written = sink.add(*chunk, offset);
    if (!written.is_ok()) return written.with_context("writing " + part_path);
    offset += chunk->chunk.size();
    if (progress) progress(offset, begun->total_bytes);
  }
  Status synced = file->sync_data();
  if (!synced.is_ok()) return synced.with_context("syncing " + part_path);
  return Status::ok();
}

Result<SnapshotSummary> KvClient::snapshot_save(const std::string& path, const SnapshotSaveProgress& progress) {
  Env& env = posix_env();
  const std::string part_path = path + ".part";
  auto fail = [&](const std::string& what, const Status& status) -> Status {
    (void)env.remove(part_path);
    return status.with_context("snapshot save to " + path + (what.empty() ? "" : ": " + what));
  };

  // A node releases a snapshot once a newer one is its base, and a leader can stop: a backup
  // whose chunks cannot be read any more starts over with a fresh snapshot, a few times.
  ClientResponse begun;
  std::string earlier;
  for (uint32_t attempt = 1;; ++attempt) {
    bool chunk_failed = false;
    Status downloaded = snapshot_download(part_path, progress, &begun, &chunk_failed);
    if (downloaded.is_ok()) break;
    if (!chunk_failed || attempt >= options_.snapshot_save_attempts_max) {
      return fail(earlier, downloaded);
    }
    earlier += (earlier.empty() ? "attempt " : "; attempt ") + std::to_string(attempt) + ": " + downloaded.message();
  }

  auto summary = verify_snapshot_file(env, part_path);
  if (!summary.is_ok()) return fail("the received file does not verify", summary.status());
  if (summary->header.index != begun.snapshot_index || summary->header.term != begun.snapshot_term ||
      summary->file_bytes != begun.total_bytes) {
    return fail("the received file does not match the snapshot begun",
                Status::corruption("it holds index " + std::to_string(summary->header.index) + " term " +
                                   std::to_string(summary->header.term) + ", " + std::to_string(summary->file_bytes) +
                                   " bytes; the leader named index " + std::to_string(begun.snapshot_index) +
                                   " term " + std::to_string(begun.snapshot_term) + ", " +
                                   std::to_string(begun.total_bytes) + " bytes"));
  }
  Status renamed = env.rename(part_path, path);
  if (!renamed.is_ok()) return fail("renaming " + part_path, renamed);
  Status dir_synced = env.sync_dir(parent_directory(path));
  if (!dir_synced.is_ok()) return dir_synced.with_context("snapshot save to " + path + ": syncing its directory");
  return summary;
}

}  // namespace keyval
