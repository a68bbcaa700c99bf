// Writes the fuzzers' seed corpora (tests/fuzz/corpus/<fuzzer>/): valid encodings of every
// format each harness reads, made with KeyVal's own encoders, so the fuzzers start from
// inputs that pass the first checks. Run by hand when a format changes:
//   build-fuzz/make_fuzz_seeds tests/fuzz/corpus .
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/raft_wire.h"
#include "actors/record_batch.h"
#include "sim/sim_disk.h"
#include "storage/codec.h"
#include "storage/kv_command.h"
#include "storage/snapshot_file.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

using namespace keyval;
using keyval::sim::SimDisk;

namespace {

std::string root;

void write_seed(const std::string& fuzzer, const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = root + "/" + fuzzer + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::vector<uint8_t> tagged(uint8_t tag, const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out{tag};
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

std::vector<uint8_t> text(uint8_t tag, const std::string& body) {
  return tagged(tag, std::vector<uint8_t>(body.begin(), body.end()));
}

std::vector<uint8_t> read_all(SimDisk& disk, const std::string& path) {
  auto file = disk.open_file(path, OpenMode::read_only);
  if (!file.is_ok()) return {};
  auto size = (*file)->size();
  std::vector<uint8_t> bytes(size.is_ok() ? *size : 0);
  if (!bytes.empty()) (void)(*file)->read_at(0, bytes.data(), bytes.size());
  return bytes;
}

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

Command put_command() {
  Command command;
  command.client_id = 7;
  command.sequence = 3;
  command.kind = CommandKind::put;
  command.key = "key";
  command.value = "value";
  return command;
}

void wal_seeds() {
  SimDisk disk;
  (void)disk.create_dir("/wal");
  WalOptions options;
  options.segment_bytes = 1 << 20;
  options.preallocate = false;
  auto wal = Wal::open(disk, "/wal", options);
  if (!wal.is_ok()) {
    std::fprintf(stderr, "%s\n", wal.status().to_string().c_str());
    std::exit(1);
  }
  (void)(*wal)->save_metadata(Metadata{2, 1});
  for (uint64_t index = 1; index <= 4; ++index) {
    (void)(*wal)->append(Entry{index, 1, encode_command(put_command())});
  }
  (void)(*wal)->truncate_suffix_after(3);
  (void)(*wal)->append(Entry{4, 2, {}});
  (void)(*wal)->save_snapshot(SnapshotMetadata{2, 1, {Member{1, "127.0.0.1:7201"}}});
  (void)(*wal)->sync();
  const std::string segment = "/wal/" + wal_format::segment_file_name(1, 1);
  std::vector<uint8_t> file = read_all(disk, segment);
  write_seed("wal_segment", "one_segment", tagged(0, file));
  std::vector<uint8_t> record(file.begin() + std::min<size_t>(file.size(), wal_format::segment_header_bytes), file.end());
  std::vector<uint8_t> salted(4);
  const uint32_t salt = wal_format::segment_salt(1);
  for (int i = 0; i < 4; ++i) salted[i] = static_cast<uint8_t>(salt >> (8 * i));
  salted.insert(salted.end(), record.begin(), record.end());
  write_seed("wal_record", "records", salted);
}

void codec_seeds() {
  write_seed("storage_codec", "entry", tagged(0, encode_entry(Entry{5, 2, encode_command(put_command())})));
  write_seed("storage_codec", "metadata", tagged(1, encode_metadata(Metadata{3, 2})));
  write_seed("storage_codec", "snapshot", tagged(2, encode_snapshot_metadata(SnapshotMetadata{9, 2, {Member{1, "a:1"}, Member{2, "b:2"}}})));
  write_seed("storage_codec", "command", tagged(3, encode_command(put_command())));
  Command cas = put_command();
  cas.kind = CommandKind::cas;
  cas.expected = "old";
  write_seed("storage_codec", "cas", tagged(3, encode_command(cas)));
  CommandResult result;
  result.index = 5;
  result.found = true;
  result.value = "before";
  write_seed("storage_codec", "result", tagged(4, encode_result(result)));
  write_seed("storage_codec", "results", tagged(5, encode_results({result, result})));
  write_seed("storage_codec", "session", tagged(6, encode_session(Session{3, result})));
  ConfigurationEntry configuration;
  configuration.kind = ConfChangeKind::add_learner;
  configuration.node_id = 4;
  configuration.members = {Member{1, "a:1", "a:101"}, Member{4, "d:4", "d:104", true}};
  write_seed("storage_codec", "configuration", tagged(7, encode_configuration_entry(configuration)));
}

void wire_seeds() {
  raft::Message append;
  append.type = raft::MessageType::append_entries;
  append.from = 1;
  append.to = 2;
  append.term = 3;
  append.prev_log_index = 4;
  append.prev_log_term = 2;
  append.leader_commit = 4;
  append.entries = {Entry{5, 3, encode_command(put_command())}, Entry{6, 3, {}}};
  write_seed("wire", "append", tagged(0, encode_raft_message(append, "127.0.0.1:7101")));
  raft::Message chunk;
  chunk.type = raft::MessageType::snapshot_chunk;
  chunk.snapshot_index = 9;
  chunk.snapshot_term = 2;
  chunk.chunk_total_bytes = 4;
  chunk.chunk_data = {1, 2, 3, 4};
  chunk.chunk_done = true;
  write_seed("wire", "chunk", tagged(0, encode_raft_message(chunk, "")));
  ClientRequest request;
  request.request_id = 1;
  request.client_id = 7;
  request.sequence = 1;
  request.op = ClientOp::cas;
  request.key = "k";
  request.value = "v";
  request.expected = "old";
  write_seed("wire", "request", tagged(1, encode_client_request(request)));
  ClientResponse response;
  response.request_id = 1;
  response.status = ClientStatus::not_leader;
  response.leader_hint = 2;
  response.message = "not the leader";
  write_seed("wire", "response", tagged(2, encode_client_response(response)));
  write_seed("wire", "batch", tagged(3, encode_record_batch({Record::log(5, 3, bytes_of("x")),
                                                               Record::metadata(Metadata{3, 1}),
                                                               Record::truncate_after(4)})));
  write_seed("wire", "entries", tagged(4, encode_entries({Entry{5, 3, bytes_of("x")}})));
  RecoveredState state;
  state.metadata = Metadata{3, 1};
  state.snapshot = SnapshotMetadata{4, 2, {Member{1, "a:1"}}};
  state.first_index = 3;
  state.last_index = 5;
  state.last_term = 3;
  write_seed("wire", "recovered", tagged(5, encode_recovered_state(state, "summary")));
  write_seed("wire", "get_batch", tagged(8, encode_get_batch({"a", "key-2"}, 7)));
  ClientResponse header;
  header.leader_hint = 2;
  header.node_id = 2;
  header.index = 9;
  write_seed("wire", "get_batch_answer", tagged(9, encode_get_batch_answer(header, {1, 0}, {"value", ""})));
}

void snapshot_seeds() {
  SimDisk disk;
  SnapshotHeader header;
  header.index = 9;
  header.term = 2;
  header.configuration = {Member{1, "127.0.0.1:7201"}, Member{2, "127.0.0.1:7202"}};
  auto writer = SnapshotWriter::create(disk, "/snapshot", header, 4096);
  if (!writer.is_ok()) {
    std::fprintf(stderr, "%s\n", writer.status().to_string().c_str());
    std::exit(1);
  }
  for (int i = 0; i < 50; ++i) (void)(*writer)->add_kv("key" + std::to_string(i), std::string(40, 'v'));
  (void)(*writer)->add_session(7, StoredSession{5, encode_session(Session{3, CommandResult{}})});
  auto finished = (*writer)->finish();
  if (!finished.is_ok()) {
    std::fprintf(stderr, "%s\n", finished.status().to_string().c_str());
    std::exit(1);
  }
  write_seed("snapshot_file", "small", read_all(disk, "/snapshot"));
}

void text_seeds(const std::string& source) {
  for (const char* name : {"leader-killed", "rolling-restarts", "torn-followers"}) {
    std::ifstream in(source + "/experiments/" + name + ".scenario");
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_seed("text_parsers", name, text(0, body));
  }
  write_seed("text_parsers", "endpoints", text(1, "127.0.0.1:7101,[::1]:7102,localhost:7103"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR SOURCE_DIR\n");
    return 2;
  }
  root = argv[1];
  for (const char* fuzzer : {"wal_segment", "wal_record", "storage_codec", "wire", "snapshot_file", "text_parsers"}) {
    std::string dir = root + "/" + fuzzer;
    std::string command = "mkdir -p '" + dir + "'";
    if (std::system(command.c_str()) != 0) return 1;
  }
  wal_seeds();
  codec_seeds();
  wire_seeds();
  snapshot_seeds();
  text_seeds(argv[2]);
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
