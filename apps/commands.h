// The keyval subcommands. Each takes the words after its name and returns the
// process exit code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "client/kv_client.h"

namespace keyval::commands {

int wal_main(const std::vector<std::string>& args);          // keyval wal dump|verify
int bench_main(const std::vector<std::string>& args);        // keyval bench wal|store|recovery|kv
int bench_wal_main(const std::vector<std::string>& args);    // keyval bench wal
// keyval bench wal --sync group --writers K: through the wal_writer actor.
int bench_wal_group_main(uint64_t entries, uint64_t value_bytes, uint64_t writers, const std::string& directory);
int bench_store_main(const std::vector<std::string>& args);  // keyval bench store
int bench_recovery_main(const std::vector<std::string>& args);  // keyval bench recovery
int demo_main(const std::vector<std::string>& args);         // keyval demo
int sim_main(const std::vector<std::string>& args);          // keyval sim
// Against a running cluster (apps/client_commands.cc): exit 0 done, 1 absent / no match,
// 2 usage, 3 the cluster did not complete it.
int put_main(const std::vector<std::string>& args);          // keyval put KEY VALUE
int get_main(const std::vector<std::string>& args);          // keyval get KEY | get --prefix P
int range_main(const std::vector<std::string>& args);        // keyval range FROM [TO]
int del_main(const std::vector<std::string>& args);          // keyval del KEY
int cas_main(const std::vector<std::string>& args);          // keyval cas KEY OLD NEW | KEY NEW --expect-absent
int status_main(const std::vector<std::string>& args);       // keyval status [--hash]
// keyval snapshot save|status|restore (apps/snapshot_command.cc): exit 0 done, 1 a damaged
// file or a refused restore, 2 usage, 3 the cluster did not complete the backup.
int snapshot_main(const std::vector<std::string>& args);
// The flags every command against a running cluster takes (--endpoints, --timeout-ms,
// --request-timeout-ms, TLS), with their defaults, and the client they describe
// (apps/client_commands.cc).
std::vector<cli::FlagSpec> client_flag_specs();
// -w/--write-out text|json and --json (part of client_flag_specs), and whether they ask for JSON:
// then a command prints one JSON object per result on stdout and its other lines on stderr.
std::vector<cli::FlagSpec> output_flag_specs();
Result<bool> json_output(const cli::Flags& flags);
Result<std::unique_ptr<KvClient>> client_from_flags(const cli::Flags& flags);
// --tls-ca, --tls-cert, --tls-key (part of client_flag_specs): a client TLS context, or null
// when --tls-ca is not given (plaintext).
Result<std::shared_ptr<TlsContext>> client_tls_from_flags(const cli::Flags& flags);
int cluster_main(const std::vector<std::string>& args);      // keyval cluster start|demo
int experiment_main(const std::vector<std::string>& args);   // keyval experiment run (apps/experiment_command.cc)
int node_main(const std::vector<std::string>& args);         // keyval node (apps/node_command.cc)
int bench_kv_main(const std::vector<std::string>& args);     // keyval bench kv (apps/bench_kv.cc)
// keyval leader transfer [ID] (apps/leader_command.cc): exit 0 done, 2 usage, 3 not done.
int leader_main(const std::vector<std::string>& args);
// keyval member list|add|promote|remove (apps/member_command.cc): exit 0 done, 2 usage or refused, 3 not done.
int member_main(const std::vector<std::string>& args);
// keyval bench transfer (apps/bench_transfer.cc): write unavailability across a transfer.
int bench_transfer_main(const std::vector<std::string>& args);
// keyval bench snapshot, keyval bench size (apps/bench_snapshot.cc): their own 3-node clusters.
int bench_snapshot_main(const std::vector<std::string>& args);
int bench_size_main(const std::vector<std::string>& args);
// keyval bench replace (apps/bench_replace.cc): a follower of a loaded cluster replaced.
int bench_replace_main(const std::vector<std::string>& args);

}  // namespace keyval::commands
