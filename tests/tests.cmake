# Boost.Test suites, one executable per unit, registered with CTest.
# Labels: `unit` (pure logic), `storage` (real files / LMDB in temporary dirs),
# `actors` (the persistence actors in a real actor system), `crash` (child
# processes killed with SIGKILL). `ctest -L storage` runs one label; the
# sanitizer build in CI runs `unit|storage`.

add_library(keyval_test_support STATIC tests/support/temp_dir.cc tests/support/fault_env.cc
  tests/support/child_process.cc tests/support/crash_ledger.cc tests/support/run_keyval.cc)
target_include_directories(keyval_test_support PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(keyval_test_support PUBLIC keyval_storage Boost::unit_test_framework)
target_compile_definitions(keyval_test_support PUBLIC BOOST_TEST_DYN_LINK)

function(keyval_test name label)
  add_executable(${name} tests/${name}.cc)
  target_link_libraries(${name} PRIVATE keyval_test_support)
  add_test(NAME ${name} COMMAND ${name} --log_level=test_suite --report_level=short)
  set_tests_properties(${name} PROPERTIES LABELS "${label}" TIMEOUT 600
    ENVIRONMENT "KEYVAL_BINARY=$<TARGET_FILE:keyval>")
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
keyval_test(persistence_actors_test actors)
target_link_libraries(persistence_actors_test PRIVATE keyval_actors)
keyval_test(raft_node_test actors)
target_link_libraries(raft_node_test PRIVATE keyval_actors keyval_raft)
add_dependencies(tools_test keyval)
keyval_test(snapshot_tools_test storage)
add_dependencies(snapshot_tools_test keyval)
keyval_test(crash_test crash)
target_link_libraries(crash_test PRIVATE keyval_actors)

keyval_test(linearizability_test unit)
target_link_libraries(linearizability_test PRIVATE keyval_sim)
keyval_test(sim_disk_test unit)
target_link_libraries(sim_disk_test PRIVATE keyval_sim)
keyval_test(node_identity_test unit)
keyval_test(wire_test unit)
target_link_libraries(wire_test PRIVATE keyval_actors)
keyval_test(client_gateway_test actors)
target_link_libraries(client_gateway_test PRIVATE keyval_actors)
keyval_test(tcp_transport_test actors)
target_link_libraries(tcp_transport_test PRIVATE keyval_actors)

# Micro-benchmarks (Google Benchmark); built on demand, never part of ctest.
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(keyval_microbench EXCLUDE_FROM_ALL tests/microbench.cc)
  target_link_libraries(keyval_microbench PRIVATE keyval_storage benchmark::benchmark)
endif()

keyval_test(sim_test sim)
target_link_libraries(sim_test PRIVATE keyval_simulator)
add_dependencies(sim_test keyval)

# A client learning the cluster from answers; a node its peers' client addresses (no sockets).
keyval_test(known_nodes_test unit)
target_link_libraries(known_nodes_test PRIVATE keyval_cluster)

keyval_test(kv_client_test storage)
target_link_libraries(kv_client_test PRIVATE keyval_cluster)
# Run directly (not through CTest), the test still finds the binary it runs.
target_compile_definitions(kv_client_test PRIVATE KEYVAL_BINARY_DEFAULT="$<TARGET_FILE:keyval>")
add_dependencies(kv_client_test keyval)

# Real three-process clusters on 127.0.0.1 (apps/local_cluster.h starts `keyval node`).
keyval_test(cluster_test cluster)
target_link_libraries(cluster_test PRIVATE keyval_cluster)
add_dependencies(cluster_test keyval)

# Clients that find the cluster from one endpoint, in any order, across a leader's SIGKILL.
keyval_test(client_discovery_test cluster)
target_link_libraries(client_discovery_test PRIVATE keyval_cluster)
add_dependencies(client_discovery_test keyval)

# Restart-cycle experiments: the scenario parser, the outputs, a short run on real processes.
keyval_test(experiment_test cluster)
target_link_libraries(experiment_test PRIVATE keyval_sim)
add_dependencies(experiment_test keyval)
