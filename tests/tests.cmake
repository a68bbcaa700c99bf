# Boost.Test suites, one executable per unit, registered with CTest.
# Labels: `unit` (pure logic), `storage` (real files / LMDB in temporary dirs),
# `actors` (the persistence actors in a real actor system), `crash` (child
# processes killed with SIGKILL, and power-cut crash states built from a traced
# node). `ctest -L storage` runs one label; the sanitizer build in CI runs
# `unit|storage|actors|cluster`.

add_library(keyval_test_support STATIC tests/support/temp_dir.cc tests/support/fault_env.cc
  tests/support/child_process.cc tests/support/crash_ledger.cc tests/support/run_keyval.cc
  tests/support/crash_states.cc)
target_include_directories(keyval_test_support PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(keyval_test_support PUBLIC keyval_storage Boost::unit_test_framework)
target_compile_definitions(keyval_test_support PUBLIC BOOST_TEST_DYN_LINK)

function(keyval_test name label)
  add_executable(${name} tests/${name}.cc)
  target_link_libraries(${name} PRIVATE keyval_test_support)
  add_test(NAME ${name} COMMAND ${name} --log_level=test_suite --report_level=short)
  set(environment "KEYVAL_BINARY=$<TARGET_FILE:keyval>")
  if(KEYVAL_SANITIZE)
    list(APPEND environment "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/tests/lsan.supp")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${label}" TIMEOUT 600 ENVIRONMENT "${environment}")
endfunction()

keyval_test(status_test unit)
keyval_test(crc32c_test unit)
keyval_test(codec_test unit)
keyval_test(posix_env_test storage)
keyval_test(wal_test storage)
keyval_test(wal_recovery_test storage)
keyval_test(store_test storage)
keyval_test(recovery_test storage)
keyval_test(kv_state_machine_test storage)
keyval_test(snapshot_file_test storage)
target_link_libraries(snapshot_file_test PRIVATE keyval_sim)  # SimDisk, for power cuts
keyval_test(tools_test storage)
keyval_test(raft_test unit)
target_link_libraries(raft_test PRIVATE keyval_raft)
keyval_test(snapshot_send_test unit)
target_link_libraries(snapshot_send_test PRIVATE keyval_raft)
keyval_test(persistence_actors_test actors)
target_link_libraries(persistence_actors_test PRIVATE keyval_actors)
keyval_test(raft_node_test actors)
target_link_libraries(raft_node_test PRIVATE keyval_actors keyval_raft)
keyval_test(node_scheduler_test actors)
target_link_libraries(node_scheduler_test PRIVATE keyval_actors)
add_dependencies(tools_test keyval)
keyval_test(snapshot_tools_test storage)
add_dependencies(snapshot_tools_test keyval)
keyval_test(crash_test crash)
target_link_libraries(crash_test PRIVATE keyval_actors)

# Power-cut crash states (docs/PERSISTENCE.md, "Crash states"): a `keyval node` traced by an
# LD_PRELOAD shim, then a node started on each state its trace allows. The shim is built
# without the sanitizers (it runs inside whatever it is preloaded into).
add_library(keyval_io_trace_shim SHARED tests/support/io_trace_shim.c)
target_link_libraries(keyval_io_trace_shim PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
get_target_property(shim_compile_options keyval_io_trace_shim COMPILE_OPTIONS)
list(FILTER shim_compile_options EXCLUDE REGEX "sanitize")
set_target_properties(keyval_io_trace_shim PROPERTIES COMPILE_OPTIONS "${shim_compile_options}" LINK_OPTIONS "")
keyval_test(crash_state_test crash)
target_link_libraries(crash_state_test PRIVATE keyval_cluster)
target_compile_definitions(crash_state_test PRIVATE KEYVAL_IO_TRACE_SHIM="$<TARGET_FILE:keyval_io_trace_shim>")
add_dependencies(crash_state_test keyval keyval_io_trace_shim)
# Many more states, never part of the default suite: cmake --build build --target crash_state_soak
add_custom_target(crash_state_soak
  COMMAND ${CMAKE_COMMAND} -E env KEYVAL_CRASH_STATES=2000 KEYVAL_BINARY=$<TARGET_FILE:keyval>
          $<TARGET_FILE:crash_state_test> --log_level=test_suite --report_level=short
  DEPENDS crash_state_test keyval keyval_io_trace_shim
  USES_TERMINAL
  COMMENT "crash_state_test with KEYVAL_CRASH_STATES=2000")

keyval_test(linearizability_test unit)
target_link_libraries(linearizability_test PRIVATE keyval_sim)
keyval_test(sim_disk_test unit)
target_link_libraries(sim_disk_test PRIVATE keyval_sim)
keyval_test(node_identity_test unit)
keyval_test(wire_test unit)
target_link_libraries(wire_test PRIVATE keyval_actors)
keyval_test(redis_protocol_test unit)
target_link_libraries(redis_protocol_test PRIVATE keyval_actors)
# The Redis gateway driven by redis-cli, redis-benchmark and python3-redis (docs/REDIS.md).
keyval_test(redis_cluster_test cluster)
target_link_libraries(redis_cluster_test PRIVATE keyval_cluster)
target_compile_definitions(redis_cluster_test PRIVATE KEYVAL_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
add_dependencies(redis_cluster_test keyval)
keyval_test(client_gateway_test actors)
target_link_libraries(client_gateway_test PRIVATE keyval_actors)
keyval_test(state_machine_test actors)
target_link_libraries(state_machine_test PRIVATE keyval_actors)
keyval_test(tcp_transport_test actors)
target_link_libraries(tcp_transport_test PRIVATE keyval_actors)
keyval_test(node_lifecycle_test actors)
target_link_libraries(node_lifecycle_test PRIVATE keyval_simulator)

# Micro-benchmarks (Google Benchmark); built on demand, never part of ctest.
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(keyval_microbench EXCLUDE_FROM_ALL tests/microbench.cc)
  target_link_libraries(keyval_microbench PRIVATE keyval_storage benchmark::benchmark)
endif()

keyval_test(sim_test sim)
target_link_libraries(sim_test PRIVATE keyval_simulator)
add_dependencies(sim_test keyval)
# keyval sim --seeds A..B --jobs N: the same lines as a serial sweep; a dead worker fails it.
keyval_test(sim_jobs_test sim)
add_dependencies(sim_jobs_test keyval)

# A client learning the cluster from answers; a node its peers' client addresses (no sockets).
keyval_test(known_nodes_test unit)
target_link_libraries(known_nodes_test PRIVATE keyval_cluster)
keyval_test(operation_policy_test unit)
target_link_libraries(operation_policy_test PRIVATE keyval_actors)

keyval_test(kv_client_test storage)
target_link_libraries(kv_client_test PRIVATE keyval_cluster nlohmann_json::nlohmann_json)
# Run directly (not through CTest), the test still finds the binary it runs.
target_compile_definitions(kv_client_test PRIVATE KEYVAL_BINARY_DEFAULT="$<TARGET_FILE:keyval>")
add_dependencies(kv_client_test keyval)

# Real three-process clusters on 127.0.0.1 (apps/local_cluster.h starts `keyval node`).
keyval_test(cluster_test cluster)
target_link_libraries(cluster_test PRIVATE keyval_cluster)
add_dependencies(cluster_test keyval)
# Snapshots, InstallSnapshot, backup and restore on real three-process clusters.
keyval_test(snapshot_cluster_test cluster)
target_link_libraries(snapshot_cluster_test PRIVATE keyval_cluster)
add_dependencies(snapshot_cluster_test keyval)

# Who may talk to a node (docs/SECURITY.md): the forged-peer attack on an open cluster and on
# one with a cluster secret, a wrong secret refused, a bad secret file refused by name.
keyval_test(peer_security_test cluster)
target_link_libraries(peer_security_test PRIVATE keyval_cluster)
add_dependencies(peer_security_test keyval)
# TLS on real clusters: certificates from scripts/make-certs.sh, the CLI over TLS, refusals.
keyval_test(tls_cluster_test cluster)
target_link_libraries(tls_cluster_test PRIVATE keyval_cluster)
target_compile_definitions(tls_cluster_test PRIVATE KEYVAL_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
add_dependencies(tls_cluster_test keyval)

# Clients that find the cluster from one endpoint, in any order, across a leader's SIGKILL.
keyval_test(client_discovery_test cluster)
target_link_libraries(client_discovery_test PRIVATE keyval_cluster)
add_dependencies(client_discovery_test keyval)

# Restart-cycle experiments: the scenario parser, the outputs, a short run on real processes.
keyval_test(experiment_test cluster)
target_link_libraries(experiment_test PRIVATE keyval_sim)
target_compile_definitions(experiment_test PRIVATE KEYVAL_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
add_dependencies(experiment_test keyval)
# Fault steps: the step parser, the peer-link fault proxy on real sockets, a real 3-node cluster
# under isolation, a one-way cut and a pause (history checked), a doctored history refused,
# a full tmpfs (root), and the same scenario in the simulator.
keyval_test(fault_steps_test cluster)
target_link_libraries(fault_steps_test PRIVATE keyval_sim keyval_cluster)
target_compile_definitions(fault_steps_test PRIVATE KEYVAL_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
add_dependencies(fault_steps_test keyval)

# Leadership transfer (§3.10) on real processes: on request and on a leader's SIGTERM, under load.
keyval_test(leader_transfer_test cluster)
target_link_libraries(leader_transfer_test PRIVATE keyval_cluster)
add_dependencies(leader_transfer_test keyval)

# Membership changes on real processes: a learner joins under load (--join), is promoted, the
# old leader is removed; refused changes; --bootstrap and --join create data directories.
keyval_test(membership_test cluster)
target_link_libraries(membership_test PRIVATE keyval_cluster)
add_dependencies(membership_test keyval)

# A node repairs a damaged WAL from its peers (docs/PERSISTENCE.md, "Corruption repaired from peers").
keyval_test(repair_cluster_test cluster)
target_link_libraries(repair_cluster_test PRIVATE keyval_cluster)
add_dependencies(repair_cluster_test keyval)

# Metrics and health (docs/OPERATIONS.md): the registry, the /health rule and the HTTP parser
# without sockets; then real clusters with --metrics-listen checked by Debian's promtool and
# scraped by a real prometheus server, and `keyval status` without a quorum.
keyval_test(metrics_test unit)
target_link_libraries(metrics_test PRIVATE keyval_metrics)
keyval_test(metrics_cluster_test cluster)
target_link_libraries(metrics_cluster_test PRIVATE keyval_cluster)
add_dependencies(metrics_cluster_test keyval)
