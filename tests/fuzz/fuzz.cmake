# libFuzzer harnesses (KEYVAL_FUZZ=ON, clang only): everything that reads bytes from a disk or a
# socket. scripts/fuzz.sh builds and runs them; their seed corpora are in tests/fuzz/corpus/.
set(KEYVAL_FUZZERS wal_segment wal_record storage_codec wire snapshot_file text_parsers resp)
set(KEYVAL_FUZZ_BINARIES)
foreach(fuzzer IN LISTS KEYVAL_FUZZERS)
  add_executable(fuzz_${fuzzer} tests/fuzz/fuzz_${fuzzer}.cc)
  target_link_options(fuzz_${fuzzer} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${fuzzer} PRIVATE keyval_sim keyval_actors keyval_cluster)
  list(APPEND KEYVAL_FUZZ_BINARIES fuzz_${fuzzer})
endforeach()
# Writes the seed corpora from KeyVal's own encoders (run by hand when a format changes).
add_executable(make_fuzz_seeds tests/fuzz/make_seeds.cc)
target_link_libraries(make_fuzz_seeds PRIVATE keyval_sim keyval_actors)
add_custom_target(fuzzers DEPENDS ${KEYVAL_FUZZ_BINARIES} make_fuzz_seeds)
