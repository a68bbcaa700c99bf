// keyval: one binary, one subcommand per job.
#include <iostream>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"

namespace {

void print_usage(std::ostream& out) {
  out << "usage: keyval <command> [args]\n"
         "\n"
         "commands:\n"
         "  demo [--dir D] [--entries N]      write, reopen and verify a WAL + LMDB store (storage check)\n"
         "  wal dump DIR [--from I] [--to J]  one line per WAL record\n"
         "  wal verify DIR                    check every record (a data directory: WAL + LMDB);\n"
         "                                    exit 0 clean, 1 torn tail, 3 corruption\n"
         "  bench wal --entries N --value-bytes B --sync none|each|batch:K [--dir D --keep]\n"
         "  bench store [--entries N] [--value-bytes B] [--sync durable|relaxed|both] [--dir D --keep]\n"
         "  bench recovery --entries N --value-bytes B [--indexed-percent P] [--dir D --keep]\n"
         "  sim --seed S | --seeds A..B [--nodes N] [--ops N] [--faults none|network|crash|disk|all]\n"
         "      [--history FILE] [--trace] [--increment-percent P] [--value-bytes B]\n"
         "                                    deterministic cluster simulation; exit 0 when no violation\n"
         "  node --id N --data-dir D [--peer-listen H:P] [--client-listen H:P] [--peers 1=H:P,2=H:P,...]\n"
         "       [--cluster NAME] [--config FILE] [--tick-ms T] [--threads N]   one node; SIGTERM stops it\n"
         "       [--snapshot-entries N (10000)] [--snapshot-bytes B (64 MiB)] [--log-tail-entries N (5000)]\n"
         "       [--snapshot-send-rate B (0: unbounded)]   bytes/s of each InstallSnapshot stream sent\n"
         "       [--metrics-listen H:P]        HTTP /metrics (Prometheus text format) and /health (off by default)\n"
         "       [--log-level error|warn|info|debug (info)] [--log-file F (stderr)]\n"
         "       [--redis-listen H:P [--redis-password-file F]]   the Redis protocol too (docs/REDIS.md)\n"
         "       [--bootstrap | --join HOST:PORT,...]   a missing D is created only with one of them:\n"
         "                                    --bootstrap: a new cluster of --peers (ignored at a restart);\n"
         "                                    --join: a member added with `member add`, via running members\n"
         "  cluster start --dir D [--nodes 3] [--client-port-base 7101] [--peer-port-base 7201]\n"
         "                [--redis-port-base P]   node i also serves Redis on 127.0.0.1:(P + i - 1)\n"
         "                                    a local cluster in the foreground; Ctrl-C stops it\n"
         "  cluster demo [--dir D --keep] [--keys N] [--writers W] [--value-bytes B]\n"
         "                                    start, write, kill the leader, recover, verify, stop\n"
         "  experiment run SCENARIO --out DIR [--seed S] [--keep-data]\n"
         "                                    a restart-cycle or fault-step scenario on real processes\n"
         "                                    (docs/EXPERIMENTS.md)\n"
         "  experiment check HISTORY          a recorded history's linearizability (exit 1: a violation)\n"
         "  put KEY VALUE | get KEY | del KEY  one operation on a running cluster; flags:\n"
         "  cas KEY OLD NEW | cas KEY NEW --expect-absent\n"
         "      [--endpoints HOST:PORT,... in node-id order] [--timeout-ms T] [--request-timeout-ms R]\n"
         "      exit 0 done, 1 get: key absent / cas: no match, 2 usage, 3 cluster did not complete it\n"
         "      [-w json | --json] one JSON object per result; [--hex] keys and values in hex;\n"
         "      put KEY - | put KEY --value-file F (cas NEW too): the value from stdin or a file\n"
         "  get KEY --serializable            read this node's applied state, no ReadIndex (may be stale)\n"
         "  range FROM [TO] | get --prefix P  the pairs with FROM <= key < TO (or starting with P), one\n"
         "      [--limit N] [--keys-only] [--count] [--serializable] [--page-bytes B]\n"
         "                                    \"KEY<TAB>VALUE\" line each; paged (1 MiB answers); summary on stderr\n"
         "  status [--endpoints ...] [--hash] one line per node and a JSON line; exit 0 when a quorum (a\n"
         "                                    majority of the configuration's voters) answered, 3 when none\n"
         "                                    answers, 4 when some answer but no quorum (said on stderr);\n"
         "                                    --hash: each node's state hash and whether the replicas agree\n"
         "                                    (exit 1 when they differ at the same index)\n"
         "  snapshot save FILE [--endpoints ...]   back up the cluster's state into FILE (progress on stderr)\n"
         "  snapshot status FILE              verify a backup; print index, term, keys, bytes; exit 1 when damaged\n"
         "  snapshot restore FILE --data-dir D --id N --peers 1=H:P,... [--cluster NAME]\n"
         "                                    seed an empty D as node N of a new cluster from a backup\n"
         "  bench kv [--endpoints ...] --clients C --ops N --value-bytes B --op put|get [--keys K] [--key-bytes 16]\n"
         "  leader transfer [ID] [--endpoints ...]   hand leadership to node ID (default: the most\n"
         "                                    up-to-date follower); a JSON line; exit 0 done, 2 usage, 3 not done\n"
         "  member list [--endpoints ...]     the configuration in use: voters, learners, addresses, match indexes\n"
         "  member add ID --peer H:P --client H:P [--learner] [--catch-up-timeout-ms T] [--endpoints ...]\n"
         "                                    add node ID as a learner; without --learner, wait until it caught\n"
         "                                    up and promote it (start it with: node ... --join ENDPOINTS)\n"
         "  member promote ID | member remove ID [--endpoints ...]\n"
         "                                    make learner ID a voter / remove member ID (the leader hands\n"
         "                                    over first when it is ID); docs/MEMBERSHIP.md\n"
         "  bench transfer [--nodes 3] [--rounds R] [--writers W] [--dir D --keep]\n"
         "                                    write unavailability across a leadership transfer and a SIGKILL\n"
         "  bench snapshot [--keys 1000000] [--value-bytes 100] [--clients 64] [--window-s 5] [--dir D --keep]\n"
         "                                    snapshot take time and put p99 under it, InstallSnapshot rate, restore\n"
         "  bench size [--puts 2000000] [--keys 10000] [--checkpoints A,B,C] [--dir D --keep] [-- NODE FLAGS]\n"
         "                                    data directory size and memory of each node under puts, restart time\n"
         "  bench replace [--keys 1000000] [--clients 16] [--load-clients 64] [--window-s 5]\n"
         "                [--snapshot-send-rate B] [--dir D --keep]\n"
         "                                    a follower of a loaded cluster replaced: time to voter, throughput\n"
         "  help, --help                      this text\n"
         "  --version                         the version of keyval\n"
         "\n"
         "keyval COMMAND --help (and keyval COMMAND SUBCOMMAND --help): its flags and their defaults\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(std::cerr);
    return keyval::cli::exit_usage;
  }
  std::string command = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "wal") return keyval::commands::wal_main(rest);
  if (command == "bench") return keyval::commands::bench_main(rest);
  if (command == "demo") return keyval::commands::demo_main(rest);
  if (command == "sim") return keyval::commands::sim_main(rest);
  if (command == "cluster") return keyval::commands::cluster_main(rest);
  if (command == "experiment") return keyval::commands::experiment_main(rest);
  if (command == "node") return keyval::commands::node_main(rest);
  if (command == "put") return keyval::commands::put_main(rest);
  if (command == "get") return keyval::commands::get_main(rest);
  if (command == "range") return keyval::commands::range_main(rest);
  if (command == "del") return keyval::commands::del_main(rest);
  if (command == "cas") return keyval::commands::cas_main(rest);
  if (command == "status") return keyval::commands::status_main(rest);
  if (command == "snapshot") return keyval::commands::snapshot_main(rest);
  if (command == "leader") return keyval::commands::leader_main(rest);
  if (command == "member") return keyval::commands::member_main(rest);
  if (command == "--version" || command == "-V") {
    std::cout << "keyval " << keyval::cli::version() << "\nallocator: " << KEYVAL_ALLOCATOR << "\n";
    return keyval::cli::exit_ok;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    print_usage(std::cout);
    return keyval::cli::exit_ok;
  }
  std::cerr << "keyval: unknown command '" << command << "'\n";
  print_usage(std::cerr);
  return keyval::cli::exit_usage;
}
