# Targets of the project. Sources are found by folder, so adding an op is adding files.

# Wraps each .cu file in a .cpp that the host compiler builds for the emulated device. The
# wrapper includes the .cu by its path in the source tree (found through the project's include
# directory), so two checkouts produce identical wrappers and ccache (CCACHE_BASEDIR) shares them.
function(cxr_emulated_sources out_var)
  set(result)
  foreach(cu IN LISTS ARGN)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${cu})
    set(wrapper ${PROJECT_BINARY_DIR}/emu/${rel}.cpp)
    file(CONFIGURE OUTPUT ${wrapper}
         CONTENT "// Generated: ${rel} compiled for the emulated CUDA device.\n#include \"${rel}\"\n")
    set_source_files_properties(${wrapper} PROPERTIES OBJECT_DEPENDS ${cu})
    list(APPEND result ${wrapper})
  endforeach()
  set(${out_var} ${result} PARENT_SCOPE)
endfunction()

function(cxr_host_target_options target)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${STB_INCLUDE_DIR})
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${CXR_WARNINGS}>)
  target_link_libraries(${target} PUBLIC OpenMP::OpenMP_CXX Threads::Threads nlohmann_json::nlohmann_json
                        PkgConfig::TURBOJPEG ${CXR_DCMTK_LIBRARIES})
endfunction()

file(GLOB CXR_CORE_SOURCES CONFIGURE_DEPENDS
  tensor/*.cpp kernels/*.cpp kernels/cpu/*.cpp layers/*.cpp models/*.cpp data/*.cpp
  checkpoint/*.cpp eval/*.cpp train/*.cpp report/*.cpp cli/*.cpp dist/*.cpp)
list(FILTER CXR_CORE_SOURCES EXCLUDE REGEX ".*/cli/train_cxr\\.cpp$")
# dist/: the back ends are picked per build (dist/backends.h): MPI where CMake found it, NCCL in
# the real-GPU library where the CUDA toolkit has it; otherwise a file that says why not.
list(FILTER CXR_CORE_SOURCES EXCLUDE REGEX ".*/dist/(mpi|nccl)_[a-z]+\\.cpp$")
if(CXR_MPI)
  list(APPEND CXR_CORE_SOURCES ${PROJECT_SOURCE_DIR}/dist/mpi_communicator.cpp)
else()
  list(APPEND CXR_CORE_SOURCES ${PROJECT_SOURCE_DIR}/dist/mpi_unavailable.cpp)
endif()
file(GLOB CXR_CUDA_SOURCES CONFIGURE_DEPENDS tensor/cuda/*.cu kernels/cuda/*.cu)
file(GLOB CXR_EMU_RUNTIME_SOURCES CONFIGURE_DEPENDS cuda_emu/*.cpp)

if(CXR_EMU_COUNTERS)  # the counting build needs the tensors and the ops, nothing above them
  list(FILTER CXR_CORE_SOURCES INCLUDE REGEX "/(tensor|kernels)/")
endif()
add_library(cxr_core_obj OBJECT ${CXR_CORE_SOURCES})
cxr_host_target_options(cxr_core_obj)
if(CXR_MPI)
  target_link_libraries(cxr_core_obj PUBLIC MPI::MPI_CXX)
endif()

# --- the emulated CUDA device: always built -------------------------------------------
cxr_emulated_sources(CXR_EMU_WRAPPED ${CXR_CUDA_SOURCES})
# kernels/library/: the library fast path (--kernels library, kernels/library.h). The emulated
# device has none: its entry points say why.
set(CXR_LIBRARY_UNAVAILABLE ${PROJECT_SOURCE_DIR}/kernels/library/library_unavailable.cpp)
add_library(cxr_emu STATIC $<TARGET_OBJECTS:cxr_core_obj> ${CXR_EMU_RUNTIME_SOURCES} ${CXR_EMU_WRAPPED}
            ${PROJECT_SOURCE_DIR}/dist/nccl_unavailable.cpp ${CXR_LIBRARY_UNAVAILABLE})
cxr_host_target_options(cxr_emu)
target_compile_definitions(cxr_emu PUBLIC CXR_CUDA_EMULATION=1)
if(CXR_MPI)
  target_link_libraries(cxr_emu PUBLIC MPI::MPI_CXX)
endif()

# --- the counting build of the emulated device (CXR_EMU_COUNTERS, preset emu-counters) ---
# Only libcxr_emu (counting), its self-test and the benchmark-shape driver: see the file.
if(CXR_EMU_COUNTERS)
  include(cmake/cxr_emu_counters.cmake)
  return()
endif()

# --- the real CUDA device ---------------------------------------------------------------
if(CXR_CUDA)
  find_library(CXR_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  find_path(CXR_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(CXR_NCCL_LIBRARY AND CXR_NCCL_INCLUDE AND CXR_MPI)
    set(CXR_NCCL_SOURCE ${PROJECT_SOURCE_DIR}/dist/nccl_communicator.cpp)
  else()
    message(STATUS "cxr: NCCL (or MPI) not found: the real-GPU build has no NCCL back end")
    set(CXR_NCCL_SOURCE ${PROJECT_SOURCE_DIR}/dist/nccl_unavailable.cpp)
  endif()
  # The library fast path: cuDNN and cuBLASLt headers from the toolkit (the libraries are
  # dlopen'ed at the first use, kernels/library/library_api.h); without them, the file that says why.
  find_path(CXR_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_path(CXR_CUBLASLT_INCLUDE cublasLt.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(CXR_CUDNN_SO cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_DIR}/../lib)
  if(CXR_CUDNN_INCLUDE AND CXR_CUBLASLT_INCLUDE)
    file(GLOB CXR_LIBRARY_SOURCES CONFIGURE_DEPENDS kernels/library/*.cpp)
    list(REMOVE_ITEM CXR_LIBRARY_SOURCES ${CXR_LIBRARY_UNAVAILABLE})
    get_filename_component(CXR_CUDNN_REAL ${CXR_CUDNN_SO} REALPATH)
    set_source_files_properties(${PROJECT_SOURCE_DIR}/kernels/library/library_api.cpp PROPERTIES COMPILE_DEFINITIONS
      "CXR_CUDNN_PATH=\"${CXR_CUDNN_REAL}\";CXR_CUBLASLT_PATH=\"${CUDAToolkit_LIBRARY_DIR}/libcublasLt.so\"")
  else()
    message(STATUS "cxr: cudnn.h or cublasLt.h not found: --kernels library is not built")
    set(CXR_LIBRARY_SOURCES ${CXR_LIBRARY_UNAVAILABLE})
  endif()
  set_source_files_properties(${CXR_LIBRARY_UNAVAILABLE} PROPERTIES COMPILE_DEFINITIONS
    "CXR_LIBRARY_MISSING=\"cudnn.h: ${CXR_CUDNN_INCLUDE}, cublasLt.h: ${CXR_CUBLASLT_INCLUDE}\"")
  add_library(cxr_cuda STATIC $<TARGET_OBJECTS:cxr_core_obj> ${CXR_CUDA_SOURCES} ${CXR_NCCL_SOURCE}
              ${CXR_LIBRARY_SOURCES})
  target_link_libraries(cxr_cuda PUBLIC ${CMAKE_DL_LIBS})
  cxr_host_target_options(cxr_cuda)
  if(CXR_MPI)
    target_link_libraries(cxr_cuda PUBLIC MPI::MPI_CXX)
  endif()
  if(CXR_NCCL_SOURCE MATCHES "nccl_communicator")
    target_include_directories(cxr_cuda PRIVATE ${CXR_NCCL_INCLUDE})
    target_link_libraries(cxr_cuda PUBLIC ${CXR_NCCL_LIBRARY} CUDA::cudart)
  endif()
  target_compile_options(cxr_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
  target_link_libraries(cxr_cuda PUBLIC CUDA::cudart)
  set(CXR_RUNTIME_LIB cxr_cuda)
else()
  set(CXR_RUNTIME_LIB cxr_emu)
endif()

# --- the command line ---------------------------------------------------------------------
if(EXISTS ${PROJECT_SOURCE_DIR}/cli/train_cxr.cpp)
  add_executable(train_cxr cli/train_cxr.cpp)
  target_link_libraries(train_cxr PRIVATE ${CXR_RUNTIME_LIB})
  target_compile_options(train_cxr PRIVATE ${CXR_WARNINGS})
endif()

# --- tests ----------------------------------------------------------------------------------
enable_testing()
file(GLOB CXR_TEST_SOURCES CONFIGURE_DEPENDS tests/*.cpp tests/tensor/*.cpp tests/ops/*.cpp
     tests/data/*.cpp tests/layers/*.cpp tests/models/*.cpp tests/train/*.cpp)
add_library(cxr_test_obj OBJECT ${CXR_TEST_SOURCES})
cxr_host_target_options(cxr_test_obj)
target_include_directories(cxr_test_obj PUBLIC ${DOCTEST_INCLUDE_DIR})
target_compile_definitions(cxr_test_obj PUBLIC
  CXR_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CXR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")

# Emulator self-tests: kernels in tests/emu/*.cu run only on the emulated device.
file(GLOB CXR_EMU_TEST_CU CONFIGURE_DEPENDS tests/emu/*.cu)
file(GLOB CXR_EMU_TEST_CPP CONFIGURE_DEPENDS tests/emu/*.cpp)
cxr_emulated_sources(CXR_EMU_TEST_WRAPPED ${CXR_EMU_TEST_CU})
add_executable(cxr_tests_emu $<TARGET_OBJECTS:cxr_test_obj> ${CXR_EMU_TEST_CPP} ${CXR_EMU_TEST_WRAPPED})
target_link_libraries(cxr_tests_emu PRIVATE cxr_emu)
target_include_directories(cxr_tests_emu PRIVATE ${DOCTEST_INCLUDE_DIR})
target_compile_options(cxr_tests_emu PRIVATE ${CXR_WARNINGS})

# Host tests and the op registry on the CPU.
add_test(NAME host COMMAND cxr_tests_emu --test-suite-exclude=cuda-emu,cuda-emu-slow,emulator)
# Every CUDA kernel, run on the emulated device against the CPU reference.
add_test(NAME cuda-emu COMMAND cxr_tests_emu --test-suite=cuda-emu,emulator)
# Whole models trained on the emulated device (minutes: every kernel runs on the host's cores).
# Label "slow": the sanitizer preset leaves them out; the release run has them.
add_test(NAME cuda-emu-slow COMMAND cxr_tests_emu --test-suite=cuda-emu-slow)
set_tests_properties(host cuda-emu cuda-emu-slow PROPERTIES
  ENVIRONMENT "CXR_SHARED_DATA=${PROJECT_SOURCE_DIR}/../shared/data;OMP_NUM_THREADS=1")
set_tests_properties(cuda-emu-slow PROPERTIES LABELS slow)
# Data-parallel training under Open MPI, 2 ranks on the CPU (issue 16): equivalence with one
# process, bit-reproducibility, gathered evaluation, resume across world sizes, a killed rank.
# Not in the sanitizer build (MPI's own allocations would show as leaks).
if(TARGET train_cxr AND CXR_MPI AND NOT CXR_SANITIZE)
  # The distributed paths on the emulated CUDA device (device tensors staged through the host,
  # gradient buckets over device gradients, NCCL refused), run by the same script.
  add_executable(dist_emu_check tests/dist/dist_emu_check.cpp)
  target_link_libraries(dist_emu_check PRIVATE cxr_emu)
  target_compile_options(dist_emu_check PRIVATE ${CXR_WARNINGS})
  add_test(NAME dist COMMAND ${PROJECT_SOURCE_DIR}/tests/dist/run_dist_tests $<TARGET_FILE:train_cxr>
           ${PROJECT_BINARY_DIR}/dist-test $<TARGET_FILE:dist_emu_check>)
  set_tests_properties(dist PROPERTIES LABELS dist TIMEOUT 600)
endif()
# The HTML report in headless Chromium (scripts/browser-test); Skipped (77) without chromium.
if(TARGET train_cxr)
  add_test(NAME browser COMMAND ${PROJECT_SOURCE_DIR}/scripts/browser-test --self-check $<TARGET_FILE:train_cxr>)
  set_tests_properties(browser PROPERTIES SKIP_RETURN_CODE 77 LABELS browser)
endif()

if(CXR_CUDA)
  file(GLOB CXR_CUDA_TEST_SOURCES CONFIGURE_DEPENDS tests/cuda/*.cpp)
  add_executable(cxr_tests_cuda $<TARGET_OBJECTS:cxr_test_obj> ${CXR_CUDA_TEST_SOURCES})
  target_link_libraries(cxr_tests_cuda PRIVATE cxr_cuda CUDA::cublas)
  find_library(CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(CUDNN_LIBRARY)
    target_link_libraries(cxr_tests_cuda PRIVATE ${CUDNN_LIBRARY})
    target_compile_definitions(cxr_tests_cuda PRIVATE CXR_HAVE_CUDNN=1)
  endif()
  target_include_directories(cxr_tests_cuda PRIVATE ${DOCTEST_INCLUDE_DIR})
  # On the real GPU: exits 77 (ctest "Skipped") when no GPU is present, unless CXR_REQUIRE_GPU=1.
  add_test(NAME cuda COMMAND cxr_tests_cuda --test-suite=cuda)
  set_tests_properties(cuda PROPERTIES SKIP_RETURN_CODE 77)
endif()

# --- benchmarks -----------------------------------------------------------------------------
if(CXR_BENCH)
  find_package(benchmark REQUIRED)
  file(GLOB CXR_BENCH_SOURCES CONFIGURE_DEPENDS bench/*.cpp)
  # bench_allreduce: an MPI program with its own main (below), built only with MPI.
  list(FILTER CXR_BENCH_SOURCES EXCLUDE REGEX ".*/bench_allreduce\\.cpp$")
  foreach(src IN LISTS CXR_BENCH_SOURCES)
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    if(name MATCHES "emu")   # benchmarks of the emulated device itself
      target_link_libraries(${name} PRIVATE cxr_emu benchmark::benchmark)
    else()
      target_link_libraries(${name} PRIVATE ${CXR_RUNTIME_LIB} benchmark::benchmark)
    endif()
    if(CXR_CUDA AND NOT name MATCHES "emu")
      target_link_libraries(${name} PRIVATE CUDA::cublas)
      if(CUDNN_LIBRARY)
        target_link_libraries(${name} PRIVATE ${CUDNN_LIBRARY})
        target_compile_definitions(${name} PRIVATE CXR_HAVE_CUDNN=1)
      endif()
    endif()
  endforeach()
  # The convolution shapes of resnet50 and efficientnet_b0 (no GPU): fails when a model yields none.
  add_test(NAME conv-table-list COMMAND bench_conv_layers --list)
  # scripts/bench_cpu_vs_pytorch's tables, results file and README block on made-up rows (< 1 s;
  # the benchmark itself is never run by ctest).
  add_test(NAME bench-cpu-vs-pytorch-self-test COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench_cpu_vs_pytorch --self-test)
  # scripts/bench_dist_vs_pytorch's parsers (log.txt's all-reduce line, metrics.jsonl) and tables on
  # made-up rows (< 1 s; no training, no MPI).
  add_test(NAME bench-dist-vs-pytorch-self-test COMMAND ${PROJECT_SOURCE_DIR}/scripts/bench_dist_vs_pytorch --self-test)
  # The activation-memory tool counts allocator bytes, which the emulated device gives exactly
  # as a GPU would: with CUDA compiled it is built for the emulated device too (_emu), so that
  # machines without a GPU measure, and the smoke test runs, everywhere.
  set(CXR_ACTIVATION_MEMORY_TOOL bench_activation_memory)
  if(CXR_CUDA)
    add_executable(bench_activation_memory_emu bench/bench_activation_memory.cpp)
    target_link_libraries(bench_activation_memory_emu PRIVATE cxr_emu)
    set(CXR_ACTIVATION_MEMORY_TOOL bench_activation_memory_emu)
  endif()
  # All-reduce bus bandwidth of dist::Communicator (MPI back end) per message size; run it under
  # mpirun (bench/results/*-distributed.md). The smoke test: 2 ranks, 4 KB to 64 KB, sums checked.
  if(CXR_MPI)
    add_executable(bench_allreduce bench/bench_allreduce.cpp)
    target_link_libraries(bench_allreduce PRIVATE ${CXR_RUNTIME_LIB})
    target_compile_options(bench_allreduce PRIVATE ${CXR_WARNINGS})
    add_test(NAME bench-allreduce-smoke
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
                     $<TARGET_FILE:bench_allreduce> --max-bytes 64K --iters 3 --warmup 1 --check)
    # Open MPI as root and on 2 cores (--allow-run-as-root --oversubscribe); other MPIs ignore these.
    set_tests_properties(bench-allreduce-smoke PROPERTIES ENVIRONMENT
      "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endif()
  add_test(NAME activation-memory-smoke COMMAND ${CXR_ACTIVATION_MEMORY_TOOL} --models resnet18 --precisions fp32
                                                --pixels 48 --batches 1,2)
endif()
