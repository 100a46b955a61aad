# The counting build of the emulated device (preset emu-counters; docs/emulation.md
# "Counting memory traffic"). Included by cxr_sources.cmake when CXR_EMU_COUNTERS is ON,
# after cxr_emu is defined; nothing else of the project is built.
#
# Every emulated .cu translation unit (the kernels, and the self-test kernels) is compiled
# with g++ -fsanitize=thread, without linking the ThreadSanitizer runtime: g++ then calls
# __tsan_read4(address), __tsan_write16(address), ... at every load and store, and
# cuda_emu/counting/tsan_hooks.cpp defines those functions. The other options:
#   --param=tsan-instrument-func-entry-exit=0   no call at every function entry and exit
#   -fno-tree-sra   keeps a float4 load one 16-byte access (scalar replacement would split it
#                   into four 4-byte loads, which the GPU does not do)
#   -g1             line tables: the report names each access site's source line
#   -Wno-tsan       g++ notes that it cannot instrument atomic_thread_fence (not needed here)
set(CXR_EMU_COUNTING_FLAGS -fsanitize=thread --param=tsan-instrument-func-entry-exit=0 -fno-tree-sra -g1 -Wno-tsan)

set_source_files_properties(${CXR_EMU_WRAPPED} PROPERTIES COMPILE_OPTIONS "${CXR_EMU_COUNTING_FLAGS}")
file(GLOB CXR_EMU_COUNTING_SOURCES CONFIGURE_DEPENDS cuda_emu/counting/*.cpp)
target_sources(cxr_emu PRIVATE ${CXR_EMU_COUNTING_SOURCES})
target_compile_definitions(cxr_emu PUBLIC CXR_EMU_COUNTERS=1)
target_link_libraries(cxr_emu PUBLIC ${CMAKE_DL_LIBS})

# Self-tests with known answers (exact sector and wavefront counts).
file(GLOB CXR_EMU_COUNTERS_TEST_CU CONFIGURE_DEPENDS tests/emu_counters/*.cu)
file(GLOB CXR_EMU_COUNTERS_TEST_CPP CONFIGURE_DEPENDS tests/emu_counters/*.cpp)
cxr_emulated_sources(CXR_EMU_COUNTERS_TEST_WRAPPED ${CXR_EMU_COUNTERS_TEST_CU})
set_source_files_properties(${CXR_EMU_COUNTERS_TEST_WRAPPED} PROPERTIES COMPILE_OPTIONS "${CXR_EMU_COUNTING_FLAGS}")
add_executable(cxr_tests_emu_counters ${CXR_EMU_COUNTERS_TEST_CPP} ${CXR_EMU_COUNTERS_TEST_WRAPPED})
target_link_libraries(cxr_tests_emu_counters PRIVATE cxr_emu)
target_include_directories(cxr_tests_emu_counters PRIVATE ${DOCTEST_INCLUDE_DIR})
target_compile_options(cxr_tests_emu_counters PRIVATE ${CXR_WARNINGS})

# The project's kernels on the ResNet-50 and EfficientNet-B0 benchmark shapes, one JSON line
# per launch (CXR_EMU_COUNTERS=<file>); scripts/emu_counters_table makes the table.
add_executable(emu_counters_shapes bench/counters/emu_counters_shapes.cpp)
target_link_libraries(emu_counters_shapes PRIVATE cxr_emu)
target_compile_options(emu_counters_shapes PRIVATE ${CXR_WARNINGS})

enable_testing()
add_test(NAME emu-counters COMMAND cxr_tests_emu_counters)
# The driver at a tiny batch: every op runs and writes its lines (the table's input).
add_test(NAME emu-counters-shapes-smoke COMMAND emu_counters_shapes --smoke)
# The table script on made-up lines and the committed H100 results (< 1 s).
add_test(NAME emu-counters-table-self-test COMMAND ${PROJECT_SOURCE_DIR}/scripts/emu_counters_table --self-test)
